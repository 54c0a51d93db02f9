/**
 * Partitioned raw events and EVENT_RETENTION_DAYS (src/events/partitions.ts): partitions are created ahead,
 * an expired one is dropped with its ids, and nothing a user reads changes: the maintained aggregates and
 * the results are identical after the raw rows are gone, late events still fold correctly, rebuilds refuse
 * what they could no longer recount. A database of its own: dropping partitions is global.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { at } from '../../seed/data';
import { rebuildStats } from '../../src/aggregates/rebuild';
import { RuleViolationError } from '../../src/common/errors';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { experimentConversions, experimentEventIds } from '../../src/db/schema';
import {
  listEventPartitions,
  PARTITION_JOB,
  partitionJob,
  rawEventCoverage,
} from '../../src/events/partitions';
import { recordEvents } from '../../src/events/service';
import { getExperimentsByKeys, getVariants } from '../../src/experiments/repository';
import { getJobRecord, JobRunner } from '../../src/jobs/runner';
import { getResults } from '../../src/results/service';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { assignUnit, experimentService } from '../support/factories';

const RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;
const RUNNING = 'homepage-recs-collaborative';
const deps = { eventRetentionDays: RETENTION_DAYS };

let scratch: ScratchDatabase;
let handle: DatabaseHandle;
beforeAll(async () => {
  scratch = await createScratchDatabase({ migrated: true });
  handle = scratch.handle;
});
afterAll(async () => scratch.drop());

/** Everything the maintained aggregates hold for some experiments, in a stable order. */
async function aggregates(ids: string[]) {
  const list = sql.join(
    ids.map((id) => sql`${id}::uuid`),
    sql`, `,
  );
  return queryRows(
    handle.db,
    sql`SELECT (SELECT json_agg(s ORDER BY s.experiment_id, s.variant_id, s.metric_name) FROM experiment_variant_stats s WHERE s.experiment_id IN (${list})) AS variant_stats,
               (SELECT json_agg(u ORDER BY u.experiment_id, u.user_id, u.metric_name) FROM experiment_user_metrics u WHERE u.experiment_id IN (${list})) AS user_metrics,
               (SELECT json_agg(p ORDER BY p.experiment_id, p.variant_id, p.phase) FROM experiment_phase_stats p WHERE p.experiment_id IN (${list})) AS phase_stats,
               (SELECT json_agg(r ORDER BY r.experiment_id, r.variant_id, r.numerator) FROM experiment_ratio_stats r WHERE r.experiment_id IN (${list})) AS ratio_stats`,
  );
}

async function rawCount(experimentId: string) {
  const [row] = await queryRows<{ n: number }>(
    handle.db,
    sql`SELECT ((SELECT count(*) FROM experiment_exposures WHERE experiment_id = ${experimentId})
              + (SELECT count(*) FROM experiment_conversions WHERE experiment_id = ${experimentId}))::int AS n`,
  );
  return row.n;
}

describe('event partitions and retention', () => {
  it('creates this month and the months ahead at migration, beside the legacy partition of older rows', async () => {
    const partitions = await listEventPartitions(handle.db);
    for (const parent of ['experiment_exposures', 'experiment_conversions']) {
      const own = partitions.filter((p) => p.parent === parent);
      expect(own[0]).toMatchObject({ name: `${parent}_legacy`, fromAt: null });
      const now = new Date();
      const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
      expect(own.some((p) => p.fromAt?.getTime() === monthStart)).toBe(true);
      // Contiguous months, the last one at least three months ahead.
      for (let i = 1; i < own.length; i++) expect(own[i].fromAt).toEqual(own[i - 1].toAt);
      expect(own.at(-1)!.toAt.getTime()).toBeGreaterThan(
        Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 3, 1),
      );
    }
  });

  it('drops expired partitions without changing aggregates or results, and refuses what it can no longer recount', async () => {
    const seeded = (
      await queryRows<{ id: string; key: string }>(handle.db, sql`SELECT id, key FROM experiments`)
    ).map((r) => r.id);
    const [running] = await getExperimentsByKeys(handle.db, [RUNNING]);
    const variants = await getVariants(handle.db, running.id);
    // A unit whose only event is a conversion recorded long ago (in the legacy partition): not counted, as
    // it has no exposure yet.
    await assignUnit(handle.db, { experimentId: running.id, userId: 'late-unit', variantId: variants[1].id });
    const lateConversion = randomUUID();
    await handle.db.insert(experimentEventIds).values({ eventId: lateConversion });
    await handle.db.insert(experimentConversions).values({
      experimentId: running.id,
      variantId: variants[1].id,
      userId: 'late-unit',
      eventId: lateConversion,
      metricName: 'conversion',
      occurredAt: at(60),
      recordedAt: at(60),
    });
    await rebuildStats(handle.db, [running.id]);
    // A recent event, in this month's partition: it stays.
    const recent = randomUUID();
    const seededUnit = (
      await queryRows<{ user_id: string; variant_id: string }>(
        handle.db,
        sql`SELECT user_id, variant_id::text FROM experiment_assignments WHERE experiment_id = ${running.id} AND user_id LIKE 'device-%' ORDER BY user_id LIMIT 1`,
      )
    )[0];
    const recorded = await recordEvents(
      handle.db,
      [{ kind: 'EXPOSURE', experimentKey: RUNNING, userId: seededUnit.user_id, eventId: recent }],
      deps,
    );
    expect(recorded).toMatchObject({ accepted: 1, rejected: [] });

    const before = await aggregates(seeded);
    const results = async () => getResults(handle.db, running, ['conversion', 'watch_minutes']);
    const resultsBefore = await results();
    const rawBefore = await rawCount(running.id);
    expect(rawBefore).toBeGreaterThan(1);
    expect((await rawEventCoverage(handle.db)).keptSince).toBeNull();

    // RETENTION_DAYS later, the legacy partition (everything before this month) has expired.
    const later = new Date(Date.now() + RETENTION_DAYS * DAY_MS);
    const runner = new JobRunner({
      db: handle.db,
      intervalMs: 0,
      now: () => later,
      jobs: [partitionJob({ retentionDays: RETENTION_DAYS })],
    });
    expect(await runner.tick()).toEqual({ [PARTITION_JOB]: 'ran' });
    expect((await getJobRecord(handle.db, PARTITION_JOB))?.lastError).toBeNull();

    const partitions = await listEventPartitions(handle.db);
    expect(partitions.filter((p) => p.fromAt === null)).toEqual([]);
    const monthStart = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1));
    expect(partitions.map((p) => p.fromAt!.getTime()).sort()[0]).toBe(monthStart.getTime());
    // Only the recent exposure is left as a raw row; the ids of the dropped events are forgotten.
    expect(await rawCount(running.id)).toBe(1);
    const [ids] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM experiment_event_ids WHERE event_id <> ${recent}`,
    );
    expect(ids.n).toBe(0);

    // What users read is unchanged.
    expect(await aggregates(seeded)).toEqual(before);
    expect(await results()).toEqual(resultsBefore);

    // Which experiments lost raw events, and the range a rebuild covers.
    const coverage = await rawEventCoverage(handle.db);
    expect(coverage.keptSince).toEqual(monthStart);
    expect(coverage.incomplete.map((e) => e.key)).toEqual(expect.arrayContaining([RUNNING]));
    expect(coverage.incomplete.every((e) => e.droppedBefore.getTime() === monthStart.getTime())).toBe(true);
    const refused = await rebuildStats(handle.db, [running.id]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RuleViolationError);
    expect(refused).toMatchObject({ rule: 'RAW_EVENTS_DROPPED' });
    // A change that would recount from raw rows is refused too, and changes nothing.
    const settings = await experimentService(handle.db)
      .update(running.id, { metricSettings: [{ metric: 'conversion', conversionWindowHours: 1 }] })
      .catch((e: unknown) => e);
    expect(settings).toMatchObject({ rule: 'RAW_EVENTS_DROPPED' });
    expect(await aggregates(seeded)).toEqual(before);

    // Late events still fold correctly. late-unit's first exposure opens its window now: its dropped
    // conversion is earlier than that, so it would not count with every raw row kept either.
    const late = await recordEvents(
      handle.db,
      [
        { kind: 'EXPOSURE', experimentKey: RUNNING, userId: 'late-unit', eventId: randomUUID() },
        // A retry of the kept event is still a duplicate.
        { kind: 'EXPOSURE', experimentKey: RUNNING, userId: seededUnit.user_id, eventId: recent },
        // An event older than the retention is refused: its id may be forgotten already.
        {
          kind: 'CONVERSION',
          experimentKey: RUNNING,
          userId: seededUnit.user_id,
          metricName: 'conversion',
          eventId: randomUUID(),
          occurredAt: new Date(Date.now() - (RETENTION_DAYS + 1) * DAY_MS),
        },
      ],
      deps,
    );
    expect(late).toMatchObject({ accepted: 1, duplicates: 1 });
    expect(late.rejected).toEqual([
      expect.objectContaining({
        index: 2,
        code: 'VALIDATION_FAILED',
        message: expect.stringContaining('EVENT_RETENTION_DAYS'),
      }),
    ]);
    const lateRows = await queryRows<{ metric_name: string; events: number }>(
      handle.db,
      sql`SELECT metric_name, events::int FROM experiment_user_metrics
           WHERE experiment_id = ${running.id} AND user_id = 'late-unit' ORDER BY metric_name`,
    );
    expect(lateRows).toEqual([{ metric_name: 'exposure', events: 1 }]);
  });
});
