/**
 * Recomputes the maintained aggregates from raw events (all experiments, or the keys given), after saying
 * which range of raw events is kept. Experiments that lost raw events to retention (EVENT_RETENTION_DAYS)
 * cannot be rebuilt: named explicitly, they make it refuse (nothing rebuilt, exit code 1); with no keys,
 * they are skipped with a warning and keep their maintained aggregates.
 */
import { inArray } from 'drizzle-orm';
import { experiments } from '../db/schema';
import { rebuildStats } from '../aggregates/rebuild';
import { rawEventCoverage } from '../events/partitions';
import { withDatabase } from './common';

const keys = process.argv.slice(2);
await withDatabase(async (handle) => {
  const started = Date.now();
  const coverage = await rawEventCoverage(handle.db);
  console.log(
    coverage.keptSince
      ? `raw events kept: recorded since ${coverage.keptSince.toISOString()} (older partitions were dropped by EVENT_RETENTION_DAYS)`
      : 'raw events kept: all (no partition has been dropped)',
  );
  const skipped = new Set(coverage.incomplete.map((e) => e.id));
  await handle.db.transaction(async (tx) => {
    if (keys.length === 0) {
      for (const e of coverage.incomplete) {
        console.warn(
          `WARNING: skipping ${e.key}: its raw events recorded before ${e.droppedBefore.toISOString()} were dropped; its maintained aggregates are kept as they are`,
        );
      }
      const all = await tx.select({ id: experiments.id }).from(experiments);
      return rebuildStats(
        tx,
        all.map((r) => r.id).filter((id) => !skipped.has(id)),
      );
    }
    const rows = await tx
      .select({ id: experiments.id, key: experiments.key })
      .from(experiments)
      .where(inArray(experiments.key, keys));
    const missing = keys.filter((k) => !rows.some((r) => r.key === k));
    if (missing.length) throw new Error(`unknown experiment key(s): ${missing.join(', ')}`);
    // Refuses (RAW_EVENTS_DROPPED) when one of them lost raw events.
    return rebuildStats(
      tx,
      rows.map((r) => r.id),
    );
  });
  const what = keys.length
    ? keys.join(', ')
    : `all experiments${skipped.size ? ` but ${skipped.size} skipped` : ''}`;
  console.log(`rebuilt aggregates for ${what} in ${Date.now() - started} ms`);
});
