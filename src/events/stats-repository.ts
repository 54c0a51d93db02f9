/** The maintained aggregates: rebuild from raw events, and read per-variant sufficient statistics. */
import { sql } from 'drizzle-orm';
import { jsonParam, queryRows, type Db } from '../db/client';

/** Pseudo-metric names inside the aggregates; real metric names are slugs and cannot collide with `$`. */
export const EXPOSURE_METRIC = 'exposure';
export const ANY_CONVERSION_METRIC = '$any';

/** Recomputes the aggregates of some experiments (all when ids is null) from raw events. */
export async function rebuildStats(db: Db, experimentIds: readonly string[] | null = null): Promise<void> {
  if (experimentIds === null) {
    await db.execute(sql`/* rebuildStats */ SELECT rebuild_experiment_stats(NULL)`);
    return;
  }
  await db.execute(
    sql`/* rebuildStats */ SELECT rebuild_experiment_stats(ARRAY(SELECT value::uuid FROM json_array_elements_text(${jsonParam(experimentIds)})))`,
  );
}

export interface VariantStatsRow {
  variantId: string;
  variantName: string;
  weight: number;
  isControl: boolean;
  position: number;
  /** Exposed units and exposure events of the variant. */
  exposedUnits: number;
  exposures: number;
  /** The metric over exposed units. */
  exposedMetricUnits: number;
  exposedSum: number;
  exposedSumSquares: number;
  /** The metric over all units with events (assigned, exposed or not). */
  metricUnits: number;
  sum: number;
  sumSquares: number;
  metricEvents: number;
  /** Assigned units; only counted when asked (it reads the assignments, not the aggregates). */
  assignedUnits: number | null;
}

/** Per-variant statistics of some metrics in one statement, in bucketing order per metric. */
export async function getVariantStats(
  db: Db,
  experimentId: string,
  metricNames: readonly string[],
  options: { countAssigned: boolean },
): Promise<Map<string, VariantStatsRow[]>> {
  const assigned = options.countAssigned
    ? sql`(SELECT count(*) FROM experiment_assignments a WHERE a.experiment_id = v.experiment_id AND a.variant_id = v.id)::float8`
    : sql`NULL::float8`;
  const rows = await queryRows<Record<string, unknown>>(
    db,
    sql`/* getVariantStats */
      SELECT mn.metric_name, v.id, v.name, v.weight, v.is_control, v.position,
             coalesce(x.units, 0)::float8 AS exposed_units, coalesce(x.events, 0)::float8 AS exposures,
             coalesce(m.exposed_units, 0)::float8 AS m_exposed_units, coalesce(m.exposed_sum, 0) AS m_exposed_sum,
             coalesce(m.exposed_sum_squares, 0) AS m_exposed_sum_squares,
             coalesce(m.units, 0)::float8 AS m_units, coalesce(m.sum, 0) AS m_sum,
             coalesce(m.sum_squares, 0) AS m_sum_squares, coalesce(m.events, 0)::float8 AS m_events,
             ${assigned} AS assigned
        FROM experiment_variants v
       CROSS JOIN (SELECT value AS metric_name FROM json_array_elements_text(${jsonParam(metricNames)})) mn
        LEFT JOIN experiment_variant_stats x
          ON x.experiment_id = v.experiment_id AND x.variant_id = v.id AND x.metric_name = ${EXPOSURE_METRIC}
        LEFT JOIN experiment_variant_stats m
          ON m.experiment_id = v.experiment_id AND m.variant_id = v.id AND m.metric_name = mn.metric_name
       WHERE v.experiment_id = ${experimentId}
       ORDER BY mn.metric_name, v.position, v.id`,
  );
  const result = new Map<string, VariantStatsRow[]>(metricNames.map((m) => [m, []]));
  for (const r of rows) {
    result.get(String(r.metric_name))!.push({
      variantId: String(r.id),
      variantName: String(r.name),
      weight: Number(r.weight),
      isControl: Boolean(r.is_control),
      position: Number(r.position),
      exposedUnits: Number(r.exposed_units),
      exposures: Number(r.exposures),
      exposedMetricUnits: Number(r.m_exposed_units),
      exposedSum: Number(r.m_exposed_sum),
      exposedSumSquares: Number(r.m_exposed_sum_squares),
      metricUnits: Number(r.m_units),
      sum: Number(r.m_sum),
      sumSquares: Number(r.m_sum_squares),
      metricEvents: Number(r.m_events),
      assignedUnits: r.assigned === null ? null : Number(r.assigned),
    });
  }
  return result;
}

/** Metric names with data in some experiments, for `Experiment.metricNames` (one statement). */
export async function getMetricNames(
  db: Db,
  experimentIds: readonly string[],
): Promise<Map<string, string[]>> {
  const result = new Map<string, string[]>();
  if (experimentIds.length === 0) return result;
  const rows = await queryRows<{ experiment_id: string; metric_name: string }>(
    db,
    sql`/* getMetricNames */
      SELECT DISTINCT experiment_id, metric_name FROM experiment_variant_stats
       WHERE experiment_id IN (SELECT value::uuid FROM json_array_elements_text(${jsonParam(experimentIds)}))
         AND metric_name <> ${EXPOSURE_METRIC} AND metric_name <> ${ANY_CONVERSION_METRIC}
       ORDER BY experiment_id, metric_name`,
  );
  for (const row of rows) {
    const list = result.get(row.experiment_id) ?? [];
    list.push(row.metric_name);
    result.set(row.experiment_id, list);
  }
  return result;
}
