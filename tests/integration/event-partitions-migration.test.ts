/**
 * Migration 0020 (partitioned raw events) on a database holding events of the previous schema: no row is
 * lost or changed, the aggregates stay identical (and a rebuild from the migrated rows gives them again),
 * and every id recorded before still makes its retry a duplicate, under either kind.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { rebuildStats } from '../../src/aggregates/rebuild';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { listEventPartitions } from '../../src/events/partitions';
import { recordEvents } from '../../src/events/service';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { assignUnit, createRunningWithVariants } from '../support/factories';
import { ROOT } from '../support/paths';

const PARTITIONING = '0020_partitioned_events';
const DAY_MS = 86_400_000;

let scratch: ScratchDatabase;
let handle: DatabaseHandle;
const folder = mkdtempSync(path.join(os.tmpdir(), 'sona-before-partitions-'));

beforeAll(async () => {
  // The migrations folder as it was before partitioning: the journal up to the migration before it.
  cpSync(path.join(ROOT, 'drizzle'), folder, { recursive: true });
  const journalFile = path.join(folder, 'meta/_journal.json');
  const journal = JSON.parse(readFileSync(journalFile, 'utf8')) as { entries: { tag: string }[] };
  const at = journal.entries.findIndex((e) => e.tag === PARTITIONING);
  expect(at).toBeGreaterThan(0);
  journal.entries = journal.entries.slice(0, at);
  writeFileSync(journalFile, JSON.stringify(journal));
  scratch = await createScratchDatabase();
  handle = scratch.handle;
  await migrateDatabase(handle, { migrationsFolder: folder, partitions: false });
});
afterAll(async () => {
  rmSync(folder, { recursive: true, force: true });
  await scratch?.drop();
});

async function snapshot(experimentId: string) {
  const [row] = await queryRows<Record<string, unknown>>(
    handle.db,
    sql`SELECT (SELECT count(*) FROM experiment_exposures WHERE experiment_id = ${experimentId})::int AS exposures,
               (SELECT count(*) FROM experiment_conversions WHERE experiment_id = ${experimentId})::int AS conversions,
               (SELECT md5(string_agg(x::text, ',' ORDER BY x.id)) FROM experiment_exposures x WHERE experiment_id = ${experimentId}) AS exposure_rows,
               (SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM experiment_conversions c WHERE experiment_id = ${experimentId}) AS conversion_rows,
               (SELECT json_agg(s ORDER BY s.variant_id, s.metric_name) FROM experiment_variant_stats s WHERE s.experiment_id = ${experimentId}) AS variant_stats,
               (SELECT json_agg(u ORDER BY u.user_id, u.metric_name) FROM experiment_user_metrics u WHERE u.experiment_id = ${experimentId}) AS user_metrics,
               (SELECT json_agg(p ORDER BY p.variant_id, p.phase) FROM experiment_phase_stats p WHERE p.experiment_id = ${experimentId}) AS phase_stats`,
  );
  return row;
}

describe('migrating unpartitioned events to partitioned tables', () => {
  it('keeps every row, aggregate and event id', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    // Events as the previous schema stored them: raw rows (last month's and this month's), then the aggregates.
    const units = Array.from({ length: 40 }, (_, i) => `unit-${i}`);
    const exposureIds: string[] = [];
    for (const [i, userId] of units.entries()) {
      const variantId = variants[i % 2].id;
      await assignUnit(handle.db, { experimentId: experiment.id, userId, variantId });
      const when = new Date(Date.now() - (i % 3 === 0 ? 40 : 0) * DAY_MS - i * 60_000).toISOString();
      const exposureId = randomUUID();
      exposureIds.push(exposureId);
      await handle.db.execute(sql`INSERT INTO experiment_exposures
        (experiment_id, variant_id, user_id, event_id, occurred_at, recorded_at)
        VALUES (${experiment.id}, ${variantId}, ${userId}, ${exposureId}, ${when}, ${when})`);
      if (i % 2 === 0) {
        await handle.db.execute(sql`INSERT INTO experiment_conversions
          (experiment_id, variant_id, user_id, event_id, metric_name, value, occurred_at, recorded_at)
          VALUES (${experiment.id}, ${variantId}, ${userId}, ${randomUUID()}, 'conversion', ${1 + i}, ${when}, ${when})`);
      }
    }
    await handle.db.execute(sql`SELECT rebuild_experiment_stats(ARRAY[${experiment.id}::uuid])`);
    const before = await snapshot(experiment.id);
    expect(before).toMatchObject({ exposures: 40, conversions: 20 });

    await migrateDatabase(handle);

    const partitions = await listEventPartitions(handle.db);
    const [exposureTable] = await queryRows<{ kind: string }>(
      handle.db,
      sql`SELECT relkind::text AS kind FROM pg_class WHERE relname = 'experiment_exposures'`,
    );
    expect(exposureTable.kind).toBe('p');
    // The old tables became the legacy partitions, holding everything recorded up to this month.
    const now = new Date();
    const nextMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    for (const parent of ['experiment_exposures', 'experiment_conversions']) {
      expect(partitions.find((p) => p.parent === parent && p.fromAt === null)).toEqual({
        parent,
        name: `${parent}_legacy`,
        fromAt: null,
        toAt: nextMonth,
      });
      expect(
        partitions.filter((p) => p.parent === parent && p.fromAt !== null).length,
      ).toBeGreaterThanOrEqual(3);
    }
    expect(await snapshot(experiment.id)).toEqual(before);
    await rebuildStats(handle.db, [experiment.id]);
    expect(await snapshot(experiment.id)).toEqual(before);

    // Every id recorded before is remembered: a retry is a duplicate, as the same kind or the other one.
    const retries = await recordEvents(handle.db, [
      { kind: 'EXPOSURE', experimentKey: experiment.key, userId: 'unit-1', eventId: exposureIds[1] },
      {
        kind: 'CONVERSION',
        experimentKey: experiment.key,
        userId: 'unit-2',
        metricName: 'conversion',
        eventId: exposureIds[2],
      },
      { kind: 'EXPOSURE', experimentKey: experiment.key, userId: 'unit-3', eventId: randomUUID() },
    ]);
    expect(retries).toMatchObject({ accepted: 1, duplicates: 2, rejected: [] });
    const after = await snapshot(experiment.id);
    expect(after).toMatchObject({ exposures: 41, conversions: 20 });
    const [ids] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM experiment_event_ids`,
    );
    expect(ids.n).toBe(61);
    // The raw view reads the partitioned tables (recreated by its repeatable file), not the legacy ones.
    const [view] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM experiment_metrics WHERE experiment_id = ${experiment.id}`,
    );
    expect(view.n).toBe(61);
    const [triggers] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM pg_trigger
           WHERE tgrelid IN ('experiment_exposures'::regclass, 'experiment_conversions'::regclass)
             AND tgname LIKE '%variant_fk%'`,
    );
    expect(triggers.n).toBe(4);
  });
});
