/**
 * Reads of the maintained aggregates: per-variant sufficient statistics for results, the dashboard's
 * per-variant metrics (through get_experiment_summary), and the metric names an experiment has data for.
 * Each costs O(variants × metrics), whatever the number of events.
 */
import { and, inArray, notInArray, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import { jsonParam, tableAs, type Db } from '../db/client';
import { dbNumber, parseRows } from '../db/rows';
import {
  experimentAssignments,
  experimentCovariateStats,
  experimentVariants,
  experimentVariantStats,
} from '../db/schema';
import { ANY_CONVERSION_METRIC, EXPOSURE_METRIC } from './constants';

const variantStatsRow = z.object({
  metricName: z.string(),
  variantId: z.string(),
  variantName: z.string(),
  weight: dbNumber,
  isControl: z.boolean(),
  position: dbNumber,
  /** Exposed units and exposure events of the variant. */
  exposedUnits: dbNumber,
  exposures: dbNumber,
  /** The metric over exposed units. */
  exposedMetricUnits: dbNumber,
  exposedSum: dbNumber,
  exposedSumSquares: dbNumber,
  /** The metric over all units with counted events (every such unit is exposed: attribution starts there). */
  metricUnits: dbNumber,
  sum: dbNumber,
  sumSquares: dbNumber,
  metricEvents: dbNumber,
  /** Units whose total of the metric is > 0 (a BINOMIAL metric's conversions). */
  convertedUnits: dbNumber,
  /** Events of the metric recorded for the variant, counted or outside their attribution window. */
  recordedEvents: dbNumber,
  /** Assigned units; only counted when asked (it reads the assignments, not the aggregates). */
  assignedUnits: dbNumber.nullable(),
  /**
   * CUPED: the variant's statistics of the covariate keyed by this name (experiment_covariate_stats; zeros
   * when none), read here so results cost no extra statement. Covariates are keyed by metric key.
   */
  covariate: z.object({
    units: dbNumber,
    sum: dbNumber,
    sumSquares: dbNumber,
    sumProducts: dbNumber,
    convertedSum: dbNumber,
  }),
});

export type VariantStatsRow = Omit<z.output<typeof variantStatsRow>, 'metricName'>;

const v = alias(experimentVariants, 'v');
const exposed = alias(experimentVariantStats, 'x');
const metric = alias(experimentVariantStats, 'm');
const cov = alias(experimentCovariateStats, 'cov');

/**
 * Per-variant statistics of some metrics in one statement, in bucketing order per metric, with the CUPED
 * statistics of the covariate of the same name (ask for a metric key to get its covariate's).
 */
export async function getVariantStats(
  db: Db,
  experimentId: string,
  metricNames: readonly string[],
  options: { countAssigned: boolean },
): Promise<Map<string, VariantStatsRow[]>> {
  const a = experimentAssignments;
  const assigned = options.countAssigned
    ? sql`(SELECT count(*) FROM ${a} WHERE ${a.experimentId} = ${v.experimentId} AND ${a.variantId} = ${v.id})`
    : sql`NULL`;
  const rows = await parseRows(
    db,
    sql`/* getVariantStats */
      SELECT mn.metric_name AS "metricName", ${v.id} AS "variantId", ${v.name} AS "variantName",
             ${v.weight} AS "weight", ${v.isControl} AS "isControl", ${v.position} AS "position",
             coalesce(${exposed.units}, 0) AS "exposedUnits", coalesce(${exposed.events}, 0) AS "exposures",
             coalesce(${metric.exposedUnits}, 0) AS "exposedMetricUnits",
             coalesce(${metric.exposedSum}, 0) AS "exposedSum",
             coalesce(${metric.exposedSumSquares}, 0) AS "exposedSumSquares",
             coalesce(${metric.units}, 0) AS "metricUnits", coalesce(${metric.sum}, 0) AS "sum",
             coalesce(${metric.sumSquares}, 0) AS "sumSquares", coalesce(${metric.events}, 0) AS "metricEvents",
             coalesce(${metric.convertedUnits}, 0) AS "convertedUnits",
             coalesce(${metric.recordedEvents}, 0) AS "recordedEvents",
             ${assigned} AS "assignedUnits",
             json_build_object('units', coalesce(${cov.units}, 0), 'sum', coalesce(${cov.sum}, 0),
                               'sumSquares', coalesce(${cov.sumSquares}, 0),
                               'sumProducts', coalesce(${cov.sumProducts}, 0),
                               'convertedSum', coalesce(${cov.convertedSum}, 0)) AS "covariate"
        FROM ${tableAs(experimentVariants, v)}
       CROSS JOIN (SELECT value AS metric_name FROM json_array_elements_text(${jsonParam(metricNames)})) mn
        LEFT JOIN ${tableAs(experimentVariantStats, exposed)}
          ON ${exposed.experimentId} = ${v.experimentId} AND ${exposed.variantId} = ${v.id}
         AND ${exposed.metricName} = ${EXPOSURE_METRIC}
        LEFT JOIN ${tableAs(experimentVariantStats, metric)}
          ON ${metric.experimentId} = ${v.experimentId} AND ${metric.variantId} = ${v.id}
         AND ${metric.metricName} = mn.metric_name
        LEFT JOIN ${tableAs(experimentCovariateStats, cov)}
          ON ${cov.experimentId} = ${v.experimentId} AND ${cov.variantId} = ${v.id}
         AND ${cov.covariate} = mn.metric_name
       WHERE ${v.experimentId} = ${experimentId}
       ORDER BY mn.metric_name, ${v.position}, ${v.id}`,
    variantStatsRow,
  );
  const result = new Map<string, VariantStatsRow[]>(metricNames.map((m) => [m, []]));
  for (const { metricName, ...row } of rows) result.get(metricName)?.push(row);
  return result;
}

const variantMetricsRow = z.object({
  experimentId: z.string(),
  variantId: z.string(),
  variantName: z.string(),
  exposures: dbNumber,
  uniqueUsers: dbNumber,
  conversions: dbNumber,
  conversionRate: dbNumber,
  avgMetricValue: dbNumber.nullable(),
});

/** A variant's counts for the dashboard (`Variant.metrics`, `Experiment.metrics`). */
export type VariantMetricsRow = z.output<typeof variantMetricsRow>;

/** Per-variant metrics of many experiments in one statement, through get_experiment_summary. */
export async function getExperimentMetrics(
  db: Db,
  experimentIds: readonly string[],
): Promise<VariantMetricsRow[]> {
  if (experimentIds.length === 0) return [];
  return parseRows(
    db,
    sql`/* getExperimentMetrics */
      SELECT e.id AS "experimentId", s.variant_id AS "variantId", s.variant_name AS "variantName",
             s.exposures AS "exposures", s.unique_users AS "uniqueUsers", s.conversions AS "conversions",
             s.conversion_rate AS "conversionRate", s.avg_metric_value AS "avgMetricValue"
        FROM (SELECT value::uuid AS id FROM json_array_elements_text(${jsonParam(experimentIds)})) AS e
       CROSS JOIN LATERAL get_experiment_summary(e.id) AS s`,
    variantMetricsRow,
  );
}

/** Metric names with data in some experiments, for `Experiment.metricNames` (one statement). */
export async function getMetricNames(
  db: Db,
  experimentIds: readonly string[],
): Promise<Map<string, string[]>> {
  const result = new Map<string, string[]>();
  if (experimentIds.length === 0) return result;
  const s = experimentVariantStats;
  const rows = await db
    .selectDistinct({ experimentId: s.experimentId, metricName: s.metricName })
    .from(s)
    .where(
      and(
        inArray(s.experimentId, [...experimentIds]),
        notInArray(s.metricName, [EXPOSURE_METRIC, ANY_CONVERSION_METRIC]),
      ),
    )
    .orderBy(s.experimentId, s.metricName);
  for (const row of rows) {
    const list = result.get(row.experimentId) ?? [];
    list.push(row.metricName);
    result.set(row.experimentId, list);
  }
  return result;
}

/** Σ numerator total × denominator total over units, per variant, of RATIO pairs (experiment_ratio_stats). */
export async function getRatioProducts(
  db: Db,
  experimentId: string,
  pairs: readonly { numerator: string; denominator: string }[],
): Promise<Map<string, Map<string, number>>> {
  const result = new Map<string, Map<string, number>>();
  if (pairs.length === 0) return result;
  const rows = await parseRows(
    db,
    sql`/* getRatioProducts */
      SELECT r.numerator, r.denominator, r.variant_id::text AS "variantId", r.sum_products AS "sumProducts"
        FROM experiment_ratio_stats r
       WHERE r.experiment_id = ${experimentId}
         AND (r.numerator, r.denominator) IN (SELECT p->>0, p->>1 FROM json_array_elements(${jsonParam(
           pairs.map((p) => [p.numerator, p.denominator]),
         )}) p)`,
    z.object({
      numerator: z.string(),
      denominator: z.string(),
      variantId: z.string(),
      sumProducts: dbNumber,
    }),
  );
  for (const r of rows) {
    const key = ratioPairKey(r);
    const byVariant = result.get(key) ?? new Map<string, number>();
    byVariant.set(r.variantId, r.sumProducts);
    result.set(key, byVariant);
  }
  return result;
}

export const ratioPairKey = (p: { numerator: string; denominator: string }) =>
  `${p.numerator}/${p.denominator}`;

/**
 * Winsorisation at a fixed cap, exactly: per variant, Σ(total − cap) and Σ(total² − cap²) over the units whose
 * total of the event exceeds the cap, which the caller takes off the maintained Σ and Σ². Reads the per-unit
 * rows of the experiment (cost O(units with rows in the experiment), only for capped metrics): a cap is a
 * property of the definition, which can change at any time, so it is not folded into the aggregates.
 */
export async function getCapExcess(
  db: Db,
  experimentId: string,
  eventName: string,
  cap: number,
): Promise<Map<string, { sum: number; sumSquares: number }>> {
  const rows = await parseRows(
    db,
    sql`/* getCapExcess */
      SELECT variant_id::text AS "variantId", sum(total - ${cap}::float8) AS "sum",
             sum(total * total - ${cap}::float8 * ${cap}::float8) AS "sumSquares"
        FROM experiment_user_metrics
       WHERE experiment_id = ${experimentId} AND metric_name = ${eventName} AND total > ${cap}::float8
       GROUP BY variant_id`,
    z.object({ variantId: z.string(), sum: dbNumber, sumSquares: dbNumber }),
  );
  return new Map(rows.map((r) => [r.variantId, { sum: r.sum, sumSquares: r.sumSquares }]));
}

/**
 * Experiments with CUPED statistics for a covariate key: their products pair the covariate with its metric's
 * event (covariate_event_name), so defining the metric or changing its event must rebuild them.
 */
export async function getExperimentIdsWithCovariate(db: Db, covariate: string): Promise<string[]> {
  const rows = await parseRows(
    db,
    sql`/* getExperimentIdsWithCovariate */
      SELECT DISTINCT experiment_id::text AS id FROM experiment_covariate_stats WHERE covariate = ${covariate}`,
    z.object({ id: z.string() }),
  );
  return rows.map((r) => r.id);
}

/**
 * CUPED for a capped metric: per variant, Σ(total − cap)·c over the units whose total of the event exceeds the
 * cap, c being the unit's covariate (0 without), which the caller takes off the maintained Σx·c (so x is the
 * capped total). Reads those units' rows, as getCapExcess does.
 */
export async function getCapCovariateExcess(
  db: Db,
  experimentId: string,
  eventName: string,
  cap: number,
  covariate: string,
): Promise<Map<string, number>> {
  const rows = await parseRows(
    db,
    sql`/* getCapCovariateExcess */
      SELECT m.variant_id::text AS "variantId",
             sum((m.total - ${cap}::float8) * coalesce((x.covariates ->> ${covariate})::float8, 0)) AS "sumProducts"
        FROM experiment_user_metrics m
        JOIN experiment_user_metrics x
          ON x.experiment_id = m.experiment_id AND x.user_id = m.user_id AND x.metric_name = ${EXPOSURE_METRIC}
       WHERE m.experiment_id = ${experimentId} AND m.metric_name = ${eventName} AND m.total > ${cap}::float8
       GROUP BY m.variant_id`,
    z.object({ variantId: z.string(), sumProducts: dbNumber }),
  );
  return new Map(rows.map((r) => [r.variantId, r.sumProducts]));
}
