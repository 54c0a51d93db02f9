/**
 * Seeds the database in one transaction. Conflict-safe: every insert skips rows that already exist, so
 * running it twice leaves exactly the same rows.
 */
import {
  at,
  contentItems,
  experiments,
  playbackProgress,
  type SeedExperiment,
  sid,
  userPreferences,
  users,
} from '../../seed/data';
import { hashV2 } from '../assignments/bucketing';
import { loadConfigFromDb, pickVariant } from '../assignments/service';
import { rebuildStats } from '../aggregates/rebuild';
import { ensureEventPartitions } from '../events/partitions';
import type { Database } from './client';
import * as t from './schema';

/** The units in an experiment: the four users, then synthetic device ids. */
function unitsOf(experiment: SeedExperiment): string[] {
  if (experiment.units === 0) return [];
  return [
    ...users.map((u) => u.id),
    ...Array.from({ length: experiment.units }, (_, i) => `device-${String(i + 1).padStart(4, '0')}`),
  ];
}

/** A deterministic "random" number in [0, 1) per (purpose, unit): seeding never uses Math.random. */
const draw = (purpose: string, unit: string) => hashV2(purpose, unit);

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
      if (e.startAt) {
        // Seeded experiments ran with the weights they have: one phase, from start to completion.
        await tx
          .insert(t.experimentPhases)
          .values({
            experimentId: e.id,
            index: 1,
            startedAt: e.startAt,
            endedAt: e.endAt ?? null,
            trafficAllocation: experiment.trafficAllocation ?? 1,
            weights: variantRows.map((v) => ({ variantId: v.id, weight: v.weight ?? 1 })),
          })
          .onConflictDoNothing();
      }

      const audit: { action: string; minutes: Date; details: Record<string, unknown> }[] = [
        { action: 'experiment.created', minutes: e.createdAt, details: { key: e.key } },
      ];
      if (e.startAt)
        audit.push({
          action: 'experiment.started',
          minutes: e.startAt,
          details: { from: 'draft', to: 'running' },
        });
      if (e.endAt)
        audit.push({
          action: 'experiment.completed',
          minutes: e.endAt,
          details: { from: 'running', to: 'completed' },
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

      // Units are bucketed exactly as assignVariant would (same stored configuration, same choice), so
      // the seed agrees with live assignment.
      // Events happen while the experiment runs (minutes after its start), so a completed experiment's
      // conversions fall inside their attribution windows, before its end.
      const during = (minutes: number) => new Date((e.startAt ?? at(0)).getTime() + minutes * 60_000);
      const config = await loadConfigFromDb(tx, e.key);
      if (!config) throw new Error(`seed experiment ${e.key} was not stored`);
      const assignments: (typeof t.experimentAssignments.$inferInsert)[] = [];
      const exposures: (typeof t.experimentExposures.$inferInsert)[] = [];
      const conversions: (typeof t.experimentConversions.$inferInsert)[] = [];
      unitsOf(e).forEach((unit, u) => {
        const variant = pickVariant(config, unit);
        if (!variant) return;
        const assignedAt = during(5 + u);
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
            occurredAt: during(6 + u + i),
            recordedAt: during(6 + u + i),
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
            occurredAt: during(30 + u),
            recordedAt: during(30 + u),
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
            occurredAt: during(31 + u),
            recordedAt: during(31 + u),
            metadata: {},
          });
        }
      });
      if (assignments.length)
        await tx.insert(t.experimentAssignments).values(assignments).onConflictDoNothing();
      const events = [...exposures, ...conversions];
      if (events.length) {
        // Raw rows bypass insertEvents: claim their ids and make sure their months have partitions.
        const times = events.map((ev) => ev.recordedAt!.getTime());
        await ensureEventPartitions(tx, new Date(Math.min(...times)), new Date(Math.max(...times)));
        await tx
          .insert(t.experimentEventIds)
          .values(events.map((ev) => ({ eventId: ev.eventId! })))
          .onConflictDoNothing();
      }
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
