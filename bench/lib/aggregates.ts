/**
 * Independent numbers to check the maintained aggregates against: the raw `experiment_metrics` view
 * (SQL written here, not the project's), and the project's documented rebuild from raw events.
 */
import type { Sql } from './database';
import { closeTo } from './stats';

export interface ViewMetricStats {
  variantId: string;
  /** Exposed units (users with at least one exposure). */
  n: number;
  /** Exposed units with at least one event of the metric (BINOMIAL conversions). */
  unitsWithMetric: number;
  /** Sum and sum of squares of the per-unit totals of the metric, over exposed units (0 when none). */
  sum: number;
  sumSquares: number;
}

/** Per-user totals grouped by variant, then n / sum / sum of squares per variant, exposed users only. */
export async function viewMetricStats(
  sql: Sql,
  experimentId: string,
  metric: string,
): Promise<ViewMetricStats[]> {
  const rows = await sql<
    { variant_id: string; n: number; with_metric: number; sum: number; sum_squares: number }[]
  >`
    WITH per_unit AS (
      SELECT variant_id, user_id,
             bool_or(metric_name = 'exposure') AS exposed,
             sum(metric_value) FILTER (WHERE metric_name = ${metric}) AS total
        FROM experiment_metrics
       WHERE experiment_id = ${experimentId}
       GROUP BY variant_id, user_id
    )
    SELECT variant_id::text AS variant_id,
           count(*)::float8 AS n,
           count(total)::float8 AS with_metric,
           coalesce(sum(total), 0)::float8 AS sum,
           coalesce(sum(total * total), 0)::float8 AS sum_squares
      FROM per_unit
     WHERE exposed
     GROUP BY variant_id
     ORDER BY variant_id`;
  return rows.map((r) => ({
    variantId: r.variant_id,
    n: r.n,
    unitsWithMetric: r.with_metric,
    sum: r.sum,
    sumSquares: r.sum_squares,
  }));
}

export interface ViewCounts {
  variantId: string;
  exposures: number;
  uniqueUsers: number;
  conversions: number;
  convertedExposedUsers: number;
  conversionValue: number;
}

/**
 * The numbers of `metrics { variantMetrics }` from the raw view. Conversions count for exposed users only:
 * nothing is attributed before a unit's first exposure (the scenario dates every conversion after every
 * exposure, so an exposed user's conversions all count).
 */
export async function viewCounts(sql: Sql, experimentId: string): Promise<ViewCounts[]> {
  const rows = await sql<
    {
      variant_id: string;
      exposures: number;
      unique_users: number;
      conversions: number;
      converted: number;
      value: number;
    }[]
  >`
    WITH per_unit AS (
      SELECT variant_id, user_id,
             count(*) FILTER (WHERE metric_name = 'exposure') AS exposures,
             count(*) FILTER (WHERE metric_name <> 'exposure') AS conversions,
             sum(metric_value) FILTER (WHERE metric_name <> 'exposure') AS conversion_value
        FROM experiment_metrics
       WHERE experiment_id = ${experimentId}
       GROUP BY variant_id, user_id
    )
    SELECT variant_id::text AS variant_id,
           sum(exposures)::float8 AS exposures,
           (count(*) FILTER (WHERE exposures > 0))::float8 AS unique_users,
           coalesce(sum(conversions) FILTER (WHERE exposures > 0), 0)::float8 AS conversions,
           (count(*) FILTER (WHERE exposures > 0 AND conversions > 0))::float8 AS converted,
           coalesce(sum(conversion_value) FILTER (WHERE exposures > 0), 0)::float8 AS value
      FROM per_unit
     GROUP BY variant_id
     ORDER BY variant_id`;
  return rows.map((r) => ({
    variantId: r.variant_id,
    exposures: r.exposures,
    uniqueUsers: r.unique_users,
    conversions: r.conversions,
    convertedExposedUsers: r.converted,
    conversionValue: r.value,
  }));
}

export interface StatsRow {
  variant_id: string;
  metric_name: string;
  events: number;
  units: number;
  sum: number;
  sum_squares: number;
  exposed_units: number;
  exposed_sum: number;
  exposed_sum_squares: number;
}

export async function maintainedStats(sql: Sql, experimentId: string): Promise<StatsRow[]> {
  return sql<StatsRow[]>`
    SELECT variant_id::text AS variant_id, metric_name, events::float8 AS events, units::float8 AS units,
           sum, sum_squares, exposed_units::float8 AS exposed_units, exposed_sum, exposed_sum_squares
      FROM experiment_variant_stats WHERE experiment_id = ${experimentId}
     ORDER BY variant_id, metric_name`;
}

class Rollback extends Error {}

/** What `read` gives after rebuild_experiment_stats recomputed the experiment from raw events, rolled back. */
async function rebuilt<T>(sql: Sql, experimentId: string, read: (tx: Sql) => Promise<T[]>): Promise<T[]> {
  let rows: T[] = [];
  try {
    await sql.begin(async (tx) => {
      await tx`SELECT rebuild_experiment_stats(ARRAY[${experimentId}]::uuid[])`;
      rows = await read(tx as unknown as Sql);
      throw new Rollback();
    });
  } catch (error) {
    if (!(error instanceof Rollback)) throw error;
  }
  return rows;
}

/** Differences between two sets of rows matched by `key`: `exact` fields equal, `close` ones to 1e-9 relative. */
function diffRows<T extends object>(
  actual: T[],
  expected: T[],
  key: (r: T) => string,
  exact: readonly (keyof T & string)[],
  close: readonly (keyof T & string)[],
): string[] {
  const want = new Map(expected.map((r) => [key(r), r]));
  const problems: string[] = [];
  if (actual.length !== expected.length) problems.push(`${actual.length} rows, expected ${expected.length}`);
  for (const row of actual) {
    const other = want.get(key(row));
    if (!other) {
      problems.push(`unexpected row ${key(row)}`);
      continue;
    }
    for (const field of exact) {
      if (row[field] !== other[field]) problems.push(`${key(row)}.${field} ${row[field]} ≠ ${other[field]}`);
    }
    for (const field of close) {
      if (!closeTo(row[field] as number, other[field] as number))
        problems.push(`${key(row)}.${field} ${row[field]} ≠ ${other[field]}`);
    }
  }
  return problems;
}

/** What rebuild_experiment_stats would compute now from raw events, without keeping it (rolled back). */
export const rebuiltStats = (sql: Sql, experimentId: string) =>
  rebuilt(sql, experimentId, (tx) => maintainedStats(tx, experimentId));

/** Differences between two sets of variant stats: counts exactly, sums to 1e-9 relative. */
export const diffStats = (actual: StatsRow[], expected: StatsRow[]) =>
  diffRows(
    actual,
    expected,
    (r) => `${r.variant_id}/${r.metric_name}`,
    ['events', 'units', 'exposed_units'],
    ['sum', 'sum_squares', 'exposed_sum', 'exposed_sum_squares'],
  );

export interface CovariateRow {
  variant_id: string;
  covariate: string;
  units: number;
  sum: number;
  sum_squares: number;
  sum_products: number;
  converted_sum: number;
}

/** The maintained CUPED statistics of an experiment (experiment_covariate_stats). */
export async function maintainedCovariates(sql: Sql, experimentId: string): Promise<CovariateRow[]> {
  return sql<CovariateRow[]>`
    SELECT variant_id::text AS variant_id, covariate, units::float8 AS units, sum, sum_squares, sum_products,
           converted_sum
      FROM experiment_covariate_stats WHERE experiment_id = ${experimentId}
     ORDER BY variant_id, covariate`;
}

/** What rebuild_experiment_stats would compute for the CUPED statistics, rolled back. */
export const rebuiltCovariates = (sql: Sql, experimentId: string) =>
  rebuilt(sql, experimentId, (tx) => maintainedCovariates(tx, experimentId));

/** Differences between two sets of CUPED statistics: units exactly, sums to 1e-9 relative. */
export const diffCovariates = (actual: CovariateRow[], expected: CovariateRow[]) =>
  diffRows(
    actual,
    expected,
    (r) => `${r.variant_id}/${r.covariate}`,
    ['units'],
    ['sum', 'sum_squares', 'sum_products', 'converted_sum'],
  );
