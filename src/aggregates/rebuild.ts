/**
 * Recomputing the aggregates from raw events, through rebuild_all_stats: rebuild_experiment_stats
 * (drizzle/repeatable/rebuild_experiment_stats.sql: the definition of what they mean), then the period and
 * segment statistics (rebuild_segment_stats, drizzle/repeatable/segment_stats.sql). It takes the
 * ingestion locks, so it is safe while events arrive. `npm run db:rebuild-stats` and the seed use it.
 */
import { sql } from 'drizzle-orm';
import { jsonParam, type Db } from '../db/client';

/** Recomputes the aggregates of some experiments (all that exist when ids is null) from raw events. */
export async function rebuildStats(db: Db, experimentIds: readonly string[] | null = null): Promise<void> {
  const ids =
    experimentIds === null
      ? sql`NULL`
      : sql`ARRAY(SELECT value::uuid FROM json_array_elements_text(${jsonParam(experimentIds)}))`;
  await db.execute(sql`/* rebuildStats */ SELECT rebuild_all_stats(${ids})`);
}
