/**
 * Seeds the database in one transaction. Conflict-safe: every insert skips rows that already exist, so
 * running it twice leaves exactly the same rows.
 */
import { pickVariant } from '../src/assignments/service';
import type { Database } from '../src/db/client';
import { rebuildStats } from '../src/aggregates/rebuild';
import * as t from '../src/db/schema';
import {
  at,
  draw,
  experiments,
  contentItems,
  playbackProgress,
  sid,
  unitsOf,
  userPreferences,
  users,
} from './data';

export interface SeedReport {
  experiments: number;
  assignments: number;
  exposures: number;
  conversions: number;
}

export async function seedDatabase(db: Database): Promise<SeedReport> {
  return db.transaction(async (tx) => {
    await tx.insert(t.users).values(users).onConflictDoNothing();
    await tx
      .insert(t.contentItems)
      .values(contentItems.map((c) => ({ ...c, genres: [...c.genres], createdAt: at(-50_000) })))
      .onConflictDoNothing();
    await tx
      .insert(t.userPreferences)
      .values(userPreferences.map((p) => ({ ...p, updatedAt: at(-100) })))
      .onConflictDoNothing();
    await tx.insert(t.playbackProgress).values(playbackProgress).onConflictDoNothing();

    const report: SeedReport = {
      experiments: experiments.length,
      assignments: 0,
      exposures: 0,
      conversions: 0,
    };
    let serial = 0;
    for (const e of experiments) {
      const { variants, units: _units, conversionRates, watchMinutes, ...experiment } = e;
      await tx
        .insert(t.experiments)
        .values({ ...experiment, hashSeed: null, updatedAt: e.endAt ?? e.startAt ?? e.createdAt })
        .onConflictDoNothing();
      const variantRows = variants.map((v, position) => ({
        ...v,
        experimentId: e.id,
        position,
        createdAt: e.createdAt,
      }));
      await tx.insert(t.experimentVariants).values(variantRows).onConflictDoNothing();

      const audit = [{ action: 'experiment.created', minutes: e.createdAt, details: { key: e.key } }];
      if (e.startAt)
        audit.push({
          action: 'experiment.started',
          minutes: e.startAt,
          details: { from: 'draft', to: 'running' } as never,
        });
      if (e.endAt)
        audit.push({
          action: 'experiment.completed',
          minutes: e.endAt,
          details: { from: 'running', to: 'completed' } as never,
        });
      await tx
        .insert(t.auditLog)
        .values(
          audit.map((a, i) => ({
            id: sid(8, ++serial),
            actor: 'seed',
            action: a.action,
            entityType: 'experiment',
            entityId: e.id,
            details: { ...a.details, index: i },
            createdAt: a.minutes,
          })),
        )
        .onConflictDoNothing();

      // Units are bucketed exactly as assignVariant would, so the seed agrees with live assignment.
      const config = {
        experiment: { ...experiment, hashSeed: null, updatedAt: e.createdAt, status: e.status } as never,
        variants: variantRows as never,
      };
      const assignments: (typeof t.experimentAssignments.$inferInsert)[] = [];
      const exposures: (typeof t.experimentExposures.$inferInsert)[] = [];
      const conversions: (typeof t.experimentConversions.$inferInsert)[] = [];
      unitsOf(e).forEach((unit, u) => {
        const variant = pickVariant(config, unit) as unknown as (typeof variantRows)[number] | null;
        if (!variant) return;
        const assignedAt = at(5 + u);
        const k = variant.position;
        assignments.push({
          id: sid(5, 100_000 * Number(e.id.slice(-1)) + u),
          experimentId: e.id,
          userId: unit,
          variantId: variant.id,
          assignedAt,
        });
        const views = 1 + Math.floor(draw(`${e.key}:views`, unit) * 3);
        for (let i = 0; i < views; i++) {
          const id = sid(6, 100_000 * Number(e.id.slice(-1)) + 10 * u + i);
          exposures.push({
            id,
            eventId: id,
            experimentId: e.id,
            variantId: variant.id,
            userId: unit,
            occurredAt: at(6 + u + i),
            recordedAt: at(6 + u + i),
            metadata: { surface: 'home', view: i + 1 },
          });
        }
        if (draw(`${e.key}:converted`, unit) < conversionRates[k]) {
          const id = sid(7, 100_000 * Number(e.id.slice(-1)) + 10 * u);
          conversions.push({
            id,
            eventId: id,
            experimentId: e.id,
            variantId: variant.id,
            userId: unit,
            metricName: 'conversion',
            value: 1,
            occurredAt: at(30 + u),
            recordedAt: at(30 + u),
            metadata: { source: 'rail' },
          });
          const minutes = Math.round(watchMinutes[k] * (0.5 + draw(`${e.key}:minutes`, unit)) * 10) / 10;
          const wid = sid(7, 100_000 * Number(e.id.slice(-1)) + 10 * u + 1);
          conversions.push({
            id: wid,
            eventId: wid,
            experimentId: e.id,
            variantId: variant.id,
            userId: unit,
            metricName: 'watch_minutes',
            value: minutes,
            occurredAt: at(31 + u),
            recordedAt: at(31 + u),
            metadata: {},
          });
        }
      });
      if (assignments.length)
        await tx.insert(t.experimentAssignments).values(assignments).onConflictDoNothing();
      if (exposures.length) await tx.insert(t.experimentExposures).values(exposures).onConflictDoNothing();
      if (conversions.length)
        await tx.insert(t.experimentConversions).values(conversions).onConflictDoNothing();
      report.assignments += assignments.length;
      report.exposures += exposures.length;
      report.conversions += conversions.length;
    }
    // Events went in as raw rows: fold them into the maintained aggregates.
    await rebuildStats(
      tx,
      experiments.map((e) => e.id),
    );
    return report;
  });
}
