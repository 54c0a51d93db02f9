/**
 * Recomputing the aggregates from raw events, through rebuild_all_stats: rebuild_experiment_stats
 * (drizzle/repeatable/rebuild_experiment_stats.sql: the definition of what they mean), then the period and
 * segment statistics (rebuild_segment_stats, drizzle/repeatable/segment_stats.sql). It takes the
 * ingestion locks, so it is safe while events arrive. `npm run db:rebuild-stats`, the seed and the changes
 * that alter what counts (conversion windows, RATIO pairs) use it.
 *
 * An experiment whose raw events retention dropped (experiment_events_dropped, src/events/partitions.ts)
 * is refused: its maintained aggregates hold numbers the raw rows no longer do.
 */
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { RuleViolationError } from '../common/errors';
import { jsonParam, type Db } from '../db/client';
import { parseRows } from '../db/rows';

/** Recomputes the aggregates of some experiments (all that exist when ids is null) from raw events. */
export async function rebuildStats(db: Db, experimentIds: readonly string[] | null = null): Promise<void> {
  const ids =
    experimentIds === null
      ? sql`NULL`
      : sql`ARRAY(SELECT value::uuid FROM json_array_elements_text(${jsonParam(experimentIds)}))`;
  const incomplete = await parseRows(
    db,
    sql`/* experimentsMissingRawEvents */
      SELECT e.key, d.dropped_before::text AS "droppedBefore"
        FROM experiment_events_dropped d JOIN experiments e ON e.id = d.experiment_id
       WHERE ${ids}::uuid[] IS NULL OR d.experiment_id = ANY (${ids}::uuid[])
       ORDER BY e.key`,
    z.object({ key: z.string(), droppedBefore: z.string() }),
  );
  if (incomplete.length > 0) {
    throw new RuleViolationError(
      'RAW_EVENTS_DROPPED',
      `cannot recount ${incomplete.map((r) => `${r.key} (raw events recorded before ${r.droppedBefore} were dropped)`).join(', ')} from raw events: EVENT_RETENTION_DAYS removed some of them, and their maintained aggregates are the only record left`,
    );
  }
  await db.execute(sql`/* rebuildStats */ SELECT rebuild_all_stats(${ids})`);
}
