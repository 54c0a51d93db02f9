/**
 * Segments and periods of units: which dimension levels an experiment admits (at most LIMITS.maxDimensions
 * keys, LIMITS.maxDimensionLevels levels per key, later levels stored as OTHER_LEVEL), and each exposed unit's
 * key (its first exposure: time and dimensions), which places its per-unit totals in experiment_period_stats
 * and experiment_segment_stats. The fold (./fold.ts) maintains the keys and both statistics tables with the
 * per-unit totals; rebuild_segment_stats (drizzle/repeatable/segment_stats.sql) is the definition of what they mean.
 */
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { jsonParam, type Db } from '../db/client';
import { parseRows } from '../db/rows';
import { LIMITS } from '../config';
import { OTHER_LEVEL } from './constants';

/** Prefix of the per-experiment advisory lock that serialises admitting new dimension levels. */
const DIMENSIONS_LOCK_PREFIX = 'sona.dimensions:';

export interface DimensionRequest {
  experimentId: string;
  dimensions: Readonly<Record<string, string>>;
}

/** What admitDimensions made of one request: the dimensions to store, or the key the experiment has no room for. */
export type AdmittedDimensions =
  | { ok: true; dimensions: Record<string, string> }
  | { ok: false; key: string; keys: string[] };

const levelRow = z.object({ experimentId: z.string(), dimension: z.string(), level: z.string() });

/**
 * Admits the requests' keys and levels in request order: a key the experiment already uses, or one that fits
 * under LIMITS.maxDimensions, is kept; a level the key already has, or one that fits under
 * LIMITS.maxDimensionLevels, is kept, any other becomes OTHER_LEVEL. A request naming a key past the limit is
 * refused whole (nothing of it admitted). Reads the experiments' levels in one statement; only when a request
 * brings something new does it take the experiments' dimension locks (before any ingestion lock: the order
 * every caller uses), read again and insert, so concurrent batches never admit more than the limits.
 */
export async function admitDimensions(
  db: Db,
  requests: readonly DimensionRequest[],
): Promise<AdmittedDimensions[]> {
  const experimentIds = [...new Set(requests.map((r) => r.experimentId))].sort();
  if (experimentIds.length === 0) return [];
  let known = await readLevels(db, experimentIds);
  const isNew = requests.some((r) =>
    Object.entries(r.dimensions).some(([k, v]) => !known.get(r.experimentId)?.get(k)?.has(v)),
  );
  if (!isNew) return requests.map((r) => ({ ok: true, dimensions: { ...r.dimensions } }));

  await db.execute(sql`/* lockDimensions */
    SELECT pg_advisory_xact_lock(hashtextextended(${DIMENSIONS_LOCK_PREFIX} || id, 0))
      FROM json_array_elements_text(${jsonParam(experimentIds)}) AS t(id) ORDER BY id`);
  known = await readLevels(db, experimentIds);
  const added: { experimentId: string; dimension: string; level: string }[] = [];
  const results = requests.map((r): AdmittedDimensions => {
    const levels = known.get(r.experimentId) ?? new Map<string, Set<string>>();
    known.set(r.experimentId, levels);
    const newKeys = Object.keys(r.dimensions).filter((k) => !levels.has(k));
    if (levels.size + newKeys.length > LIMITS.maxDimensions) {
      const key = newKeys[LIMITS.maxDimensions - levels.size] ?? newKeys[0];
      return { ok: false, key, keys: [...levels.keys()] };
    }
    const dimensions: Record<string, string> = {};
    for (const [key, value] of Object.entries(r.dimensions)) {
      const set = levels.get(key) ?? new Set<string>();
      levels.set(key, set);
      if (!set.has(value) && set.size < LIMITS.maxDimensionLevels) {
        set.add(value);
        added.push({ experimentId: r.experimentId, dimension: key, level: value });
      }
      dimensions[key] = set.has(value) ? value : OTHER_LEVEL;
    }
    return { ok: true, dimensions };
  });
  if (added.length > 0) {
    await db.execute(sql`/* admitDimensionLevels */
      INSERT INTO experiment_dimension_levels (experiment_id, dimension, level)
      SELECT "experimentId", dimension, level
        FROM json_to_recordset(${jsonParam(added)}) AS t("experimentId" uuid, dimension text, level text)
      ON CONFLICT DO NOTHING`);
  }
  return results;
}

async function readLevels(db: Db, experimentIds: readonly string[]) {
  const rows = await parseRows(
    db,
    sql`/* getDimensionLevels */
      SELECT experiment_id::text AS "experimentId", dimension, level FROM experiment_dimension_levels
       WHERE experiment_id IN (SELECT value::uuid FROM json_array_elements_text(${jsonParam(experimentIds)}))`,
    levelRow,
  );
  const known = new Map<string, Map<string, Set<string>>>();
  for (const r of rows) {
    const levels = known.get(r.experimentId) ?? new Map<string, Set<string>>();
    known.set(r.experimentId, levels);
    const set = levels.get(r.dimension) ?? new Set<string>();
    levels.set(r.dimension, set);
    set.add(r.level);
  }
  return known;
}
