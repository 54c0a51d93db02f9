/**
 * Results over time and per segment, from statistics maintained at ingestion (src/aggregates/segments.ts,
 * drizzle/repeatable/segment_stats.sql): each costs O(variants × metrics × periods or levels), never O(events).
 *
 * Over time: a unit belongs to the period (UTC hour or day) of its first exposure, with its totals as they
 * are now (GrowthBook's date dimension); the point at `at` analyses the units first exposed before `at`, so
 * the series is cumulative and its last point is `results` itself. Per segment: a unit belongs to the level
 * its first exposure carried; units without the dimension form NONE_LEVEL (the total minus every level), so
 * units over the levels sum to the total.
 */
import { type SQL, sql } from 'drizzle-orm';
import { z } from 'zod';
import { EXPOSURE_METRIC, NONE_LEVEL } from '../aggregates/constants';
import { getVariantStats, type VariantStatsRow } from '../aggregates/read';
import { ValidationError } from '../common/errors';
import { parse, slug } from '../common/validation';
import { LIMITS } from '../config';
import type { Db } from '../db/client';
import { dbNumber, parseRows } from '../db/rows';
import type { ExperimentRow } from '../experiments/repository';
import {
  type ExperimentResults,
  getResults,
  type ResultsOptions,
  resultsOptions,
  toInputs,
  unknownMetric,
  type VariantOutcome,
} from './service';
import { adjustPValues, analyze, DEFAULT_SEQUENTIAL_TUNING } from './stats';

export const TIME_GRANULARITIES = ['DAY', 'HOUR'] as const;
export type TimeGranularity = (typeof TIME_GRANULARITIES)[number];
const GRANULARITY_MS: Record<TimeGranularity, number> = { HOUR: 3_600_000, DAY: 86_400_000 };

/**
 * The granularity a caller that did not choose gets: HOUR while the experiment has run (since its start, else
 * its creation) under `LIMITS.hourlyTimeSeriesDays`, when a day per point would draw one or two points; DAY
 * after, when an hour per point would be hundreds of points for a chart a few hundred pixels wide.
 */
export function defaultGranularity(
  experiment: Pick<ExperimentRow, 'startAt' | 'createdAt'>,
  now: Date = new Date(),
): TimeGranularity {
  const since = (experiment.startAt ?? experiment.createdAt).getTime();
  return now.getTime() - since < LIMITS.hourlyTimeSeriesDays * GRANULARITY_MS.DAY ? 'HOUR' : 'DAY';
}

/** The options of `timeSeries`: those of `results` but includeUnexposed (a never-exposed unit has no period). */
export const timeSeriesOptions = resultsOptions.omit({ includeUnexposed: true });
export type TimeSeriesOptions = z.input<typeof timeSeriesOptions>;

export interface TimeSeriesPoint {
  /** The end of the period: the point covers units first exposed before it. */
  at: Date;
  variants: VariantOutcome[];
}

export interface Breakdown {
  dimension: string;
  levels: { level: string; results: ExperimentResults }[];
  warning: string;
}

export const SEGMENTS_WARNING =
  'Segments are exploratory: many levels mean many comparisons, so some will look significant by chance (the correction across levels limits that, it does not remove it), and levels were not randomised separately. Confirm a segment effect with an experiment targeted at it.';

/** Numeric statistics of one variant in one period or level (every unit with a row is exposed). */
interface Cell {
  units: number;
  sum: number;
  sumSquares: number;
  convertedUnits: number;
}
const ZERO: Cell = { units: 0, sum: 0, sumSquares: 0, convertedUnits: 0 };
const add = (a: Cell, b: Cell): Cell => ({
  units: a.units + b.units,
  sum: a.sum + b.sum,
  sumSquares: a.sumSquares + b.sumSquares,
  convertedUnits: a.convertedUnits + b.convertedUnits,
});
const subtract = (a: Cell, b: Cell): Cell => ({
  units: a.units - b.units,
  sum: a.sum - b.sum,
  sumSquares: a.sumSquares - b.sumSquares,
  convertedUnits: a.convertedUnits - b.convertedUnits,
});

/** Per key (period or level) → metric → variant. */
type Cells = Map<string, Map<string, Map<string, Cell>>>;
/** Per key → variant: capped excess (Σ, Σ²) or RATIO cross products (sum only). */
type Extras = Map<string, Map<string, { sum: number; sumSquares: number }>>;

const cellRow = z.object({
  key: z.string(),
  metricName: z.string(),
  variantId: z.string(),
  units: dbNumber,
  sum: dbNumber,
  sumSquares: dbNumber,
  convertedUnits: dbNumber,
});

/** What a metric's analysis reads: its event, a RATIO denominator, a cap (as `results` planned them). */
function planOf(overall: ExperimentResults) {
  const d = overall.definition;
  return {
    eventName: d?.eventName ?? overall.metric,
    denominator: overall.type === 'RATIO' ? (d?.denominatorEventName ?? null) : null,
    cap: overall.type === 'MEAN' ? (d?.capValue ?? null) : null,
  };
}
type Plan = ReturnType<typeof planOf>;

/** Where a unit's key comes from: its first exposure's hour, or its level of a dimension. */
type KeyOf = { period: TimeGranularity } | { dimension: string };

/** The start of a timestamp's period in UTC as its key (ISO 8601): hours summed into days in SQL. */
const periodKey = (at: SQL, granularity: TimeGranularity) =>
  sql`to_char(date_bin(${granularity === 'DAY' ? '1 day' : '1 hour'}::interval, ${at}, timestamptz '2000-01-01 00:00:00+00')
              AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`;

const keyExpression = (by: KeyOf) =>
  'period' in by
    ? periodKey(sql`k.first_at`, by.period)
    : sql`coalesce(k.dimensions->>${by.dimension}, ${NONE_LEVEL}::text)`;

/** The key of the per-variant totals readCells adds for a breakdown (no level starts with `__t`). */
const TOTAL_KEY = '__total__';

/**
 * The statistics of a metric per key, and for a breakdown its totals (TOTAL_KEY, from
 * experiment_variant_stats). The metric's event names are resolved in the statement (the name, a definition's
 * event and RATIO denominator, and the exposures), so it runs beside `results` rather than after it.
 */
async function readCells(db: Db, experimentId: string, by: KeyOf, metric: string): Promise<Cells> {
  const names = sql`(SELECT ${EXPOSURE_METRIC}::text UNION SELECT ${metric}::text
                     UNION SELECT event_name FROM metrics WHERE key = ${metric}
                     UNION SELECT denominator_event_name FROM metrics WHERE key = ${metric}
                                                                        AND denominator_event_name IS NOT NULL)`;
  const rows =
    'period' in by
      ? await parseRows(
          db,
          sql`/* getPeriodStats */
            SELECT ${periodKey(sql`period_start`, by.period)} AS "key", metric_name AS "metricName",
                   variant_id::text AS "variantId", sum(units) AS units, sum(sum) AS sum,
                   sum(sum_squares) AS "sumSquares", sum(converted_units) AS "convertedUnits"
              FROM experiment_period_stats
             WHERE experiment_id = ${experimentId} AND metric_name IN ${names}
             GROUP BY 1, 2, 3`,
          cellRow,
        )
      : await parseRows(
          db,
          sql`/* getSegmentStats */
            SELECT level AS "key", metric_name AS "metricName", variant_id::text AS "variantId", units, sum,
                   sum_squares AS "sumSquares", converted_units AS "convertedUnits"
              FROM experiment_segment_stats
             WHERE experiment_id = ${experimentId} AND dimension = ${by.dimension} AND metric_name IN ${names}
            UNION ALL
            SELECT ${TOTAL_KEY}, metric_name, variant_id::text, units, sum, sum_squares, converted_units
              FROM experiment_variant_stats
             WHERE experiment_id = ${experimentId} AND metric_name IN ${names}`,
          cellRow,
        );
  const cells: Cells = new Map();
  for (const { key, metricName, variantId, ...cell } of rows) {
    const byMetric = cells.get(key) ?? new Map<string, Map<string, Cell>>();
    cells.set(key, byMetric);
    const byVariant = byMetric.get(metricName) ?? new Map<string, Cell>();
    byMetric.set(metricName, byVariant);
    byVariant.set(variantId, cell);
  }
  return cells;
}

const extraRow = z.object({ key: z.string(), variantId: z.string(), sum: dbNumber, sumSquares: dbNumber });

function toExtras(rows: z.output<typeof extraRow>[]): Extras {
  const extras: Extras = new Map();
  for (const { key, variantId, sum, sumSquares } of rows) {
    const byVariant = extras.get(key) ?? new Map();
    extras.set(key, byVariant);
    byVariant.set(variantId, { sum, sumSquares });
  }
  return extras;
}

/**
 * Capped excess and RATIO cross products per key, from the per-unit rows: a cap belongs to the definition
 * (it can change at any time) and products need both totals of a unit, so neither is maintained per key.
 * Cost O(units with rows of the metric), only for capped and RATIO metrics (as `results` for caps).
 */
async function readExtras(db: Db, experimentId: string, by: KeyOf, plan: Plan) {
  const key = keyExpression(by);
  const [capExcess, products] = await Promise.all([
    plan.cap === null
      ? null
      : parseRows(
          db,
          sql`/* getCapExcessByKey */
            SELECT ${key} AS "key", um.variant_id::text AS "variantId", sum(um.total - ${plan.cap}::float8) AS "sum",
                   sum(um.total * um.total - ${plan.cap}::float8 * ${plan.cap}::float8) AS "sumSquares"
              FROM experiment_user_metrics um
              JOIN experiment_unit_segments k ON k.experiment_id = um.experiment_id AND k.user_id = um.user_id
             WHERE um.experiment_id = ${experimentId} AND um.metric_name = ${plan.eventName}
               AND um.total > ${plan.cap}::float8
             GROUP BY 1, 2`,
          extraRow,
        ).then(toExtras),
    plan.denominator === null
      ? null
      : parseRows(
          db,
          sql`/* getRatioProductsByKey */
            SELECT ${key} AS "key", n.variant_id::text AS "variantId", sum(n.total * d.total) AS "sum",
                   0::float8 AS "sumSquares"
              FROM experiment_user_metrics n
              JOIN experiment_user_metrics d
                ON d.experiment_id = n.experiment_id AND d.user_id = n.user_id AND d.metric_name = ${plan.denominator}
              JOIN experiment_unit_segments k ON k.experiment_id = n.experiment_id AND k.user_id = n.user_id
             WHERE n.experiment_id = ${experimentId} AND n.metric_name = ${plan.eventName}
             GROUP BY 1, 2`,
          extraRow,
        ).then(toExtras),
  ]);
  return { capExcess, products };
}

/** Rows shaped as getVariantStats' for toInputs: the variants' identity from `base`, numbers from `cells`. */
function rowsFrom(base: readonly VariantStatsRow[], exposure: Map<string, Cell>, metric: Map<string, Cell>) {
  return base.map((b): VariantStatsRow => {
    const x = exposure.get(b.variantId) ?? ZERO;
    const m = metric.get(b.variantId) ?? ZERO;
    return {
      ...b,
      exposedUnits: x.units,
      exposures: x.sum,
      exposedMetricUnits: m.units,
      exposedSum: m.sum,
      exposedSumSquares: m.sumSquares,
      metricUnits: m.units,
      sum: m.sum,
      sumSquares: m.sumSquares,
      convertedUnits: m.convertedUnits,
      assignedUnits: null,
    };
  });
}

interface Slice {
  exposure: Map<string, Cell>;
  metric: Map<string, Cell>;
  denominator: Map<string, Cell>;
  capExcess: Map<string, { sum: number; sumSquares: number }> | null;
  products: Map<string, number> | null;
}

/** Analyses one period's cumulative slice or one level with the options of `overall`. */
function analyzeSlice(
  overall: ExperimentResults,
  base: readonly VariantStatsRow[],
  slice: Slice,
  raw: ResultsOptions,
  correction: ExperimentResults['correction'],
) {
  const rows = rowsFrom(base, slice.exposure, slice.metric);
  const inputs = toInputs(rows, overall.type, false, {
    denominator:
      overall.type === 'RATIO'
        ? { rows: rowsFrom(base, slice.exposure, slice.denominator), products: slice.products ?? new Map() }
        : null,
    capExcess: slice.capExcess,
  });
  const analysis = analyze({
    variants: inputs,
    metricType: overall.type,
    method: overall.method,
    confidenceLevel: overall.confidenceLevel,
    correction,
    sequentialTuning: raw.sequentialTuning ?? DEFAULT_SEQUENTIAL_TUNING,
    prior:
      raw.priorMean != null || raw.priorVariance != null
        ? { mean: raw.priorMean ?? 0, variance: raw.priorVariance ?? 1 }
        : null,
    goal: overall.goal,
    minimumUnits: overall.minUnitsPerVariant,
    srmPhases: null,
  });
  const unknown = overall.reason === 'UNKNOWN_METRIC';
  const variants = analysis.variants.map(
    (v, i): VariantOutcome => ({
      ...(unknown ? unknownMetric(v) : v),
      variantId: rows[i].variantId,
      variantName: rows[i].variantName,
      isControl: inputs[i].isControl,
      excludedConversions: 0,
    }),
  );
  return { analysis, variants, reason: unknown ? ('UNKNOWN_METRIC' as const) : analysis.reason };
}

const cellsOf = (cells: Map<string, Map<string, Cell>> | undefined, metric: string | null) =>
  (metric === null ? undefined : cells?.get(metric)) ?? new Map<string, Cell>();

function accumulate(into: Map<string, Cell>, from: Map<string, Cell>) {
  for (const [id, c] of from) into.set(id, add(into.get(id) ?? ZERO, c));
}
function accumulateExtras(
  into: Map<string, { sum: number; sumSquares: number }>,
  from: Map<string, { sum: number; sumSquares: number }> | undefined,
) {
  for (const [id, c] of from ?? [])
    into.set(id, {
      sum: (into.get(id)?.sum ?? 0) + c.sum,
      sumSquares: (into.get(id)?.sumSquares ?? 0) + c.sumSquares,
    });
}

/**
 * Cumulative results per period: two statements beside those of `results` (one more for a capped or RATIO
 * metric). The last point is the variants of `results` with the same options, so the two never disagree;
 * earlier points sum the periods before them.
 */
export async function getTimeSeries(
  db: Db,
  experiment: ExperimentRow,
  metric: string,
  granularity: TimeGranularity,
  raw: TimeSeriesOptions = {},
): Promise<TimeSeriesPoint[]> {
  parse(timeSeriesOptions, raw);
  // One round trip beside those of `results`; capped and RATIO metrics read their per-unit rows after it.
  const [[overall], cells, base] = await Promise.all([
    getResults(db, experiment, metric, raw),
    readCells(db, experiment.id, { period: granularity }, metric),
    getVariantStats(db, experiment.id, [EXPOSURE_METRIC], { countAssigned: false }),
  ]);
  const plan = planOf(overall);
  const extras = await readExtras(db, experiment.id, { period: granularity }, plan);
  const baseRows = base.get(EXPOSURE_METRIC) ?? [];
  const step = GRANULARITY_MS[granularity];
  const periods = [...cells.keys()].sort();
  const running: Slice = {
    exposure: new Map(),
    metric: new Map(),
    denominator: new Map(),
    capExcess: extras.capExcess ? new Map() : null,
    products: extras.products ? new Map() : null,
  };
  const productSums = new Map<string, { sum: number; sumSquares: number }>();
  return periods.map((period, i): TimeSeriesPoint => {
    const c = cells.get(period);
    accumulate(running.exposure, cellsOf(c, EXPOSURE_METRIC));
    accumulate(running.metric, cellsOf(c, plan.eventName));
    accumulate(running.denominator, cellsOf(c, plan.denominator));
    if (running.capExcess) accumulateExtras(running.capExcess, extras.capExcess?.get(period));
    if (running.products) {
      accumulateExtras(productSums, extras.products?.get(period));
      running.products = new Map([...productSums].map(([id, p]) => [id, p.sum]));
    }
    const start = Date.parse(period);
    const at = new Date(start + step);
    if (i === periods.length - 1) return { at, variants: overall.variants };
    const { variants } = analyzeSlice(overall, baseRows, running, raw, overall.correction);
    return {
      at,
      variants: variants.map((v) => ({
        ...v,
        excludedConversions:
          overall.variants.find((o) => o.variantId === v.variantId)?.excludedConversions ?? 0,
      })),
    };
  });
}

/** `breakdown`'s options: those of `results`, with a correction that defaults to HOLM across the levels. */
export async function getBreakdown(
  db: Db,
  experiment: ExperimentRow,
  metric: string,
  groupBy: string,
  raw: ResultsOptions = {},
): Promise<Breakdown> {
  parse(slug('groupBy', LIMITS.dimensionKeyMaxLength), groupBy, ['groupBy']);
  parse(resultsOptions, raw);
  if (raw.includeUnexposed)
    throw ValidationError.field(
      ['includeUnexposed'],
      'breakdown counts exposed units only: a unit gets its levels from its first exposure',
    );
  const by = { dimension: groupBy };
  const [[overall], cells, base] = await Promise.all([
    getResults(db, experiment, metric, { ...raw, correction: 'NONE' }),
    readCells(db, experiment.id, by, metric),
    getVariantStats(db, experiment.id, [EXPOSURE_METRIC], { countAssigned: false }),
  ]);
  const correction = overall.method === 'BAYESIAN' ? 'NONE' : (raw.correction ?? 'HOLM');
  const plan = planOf(overall);
  const extras = await readExtras(db, experiment.id, by, plan);
  const baseRows = base.get(EXPOSURE_METRIC) ?? [];
  const totals = cells.get(TOTAL_KEY);
  cells.delete(TOTAL_KEY);
  // Units without the dimension: the total minus every stored level.
  const none = new Map<string, Map<string, Cell>>();
  for (const name of [EXPOSURE_METRIC, plan.eventName, ...(plan.denominator ? [plan.denominator] : [])]) {
    const rest = new Map(cellsOf(totals, name));
    for (const byMetric of cells.values())
      for (const [id, c] of byMetric.get(name) ?? []) rest.set(id, subtract(rest.get(id) ?? ZERO, c));
    none.set(name, rest);
  }
  const levels = [...cells.keys()].sort();
  if ([...(none.get(EXPOSURE_METRIC)?.values() ?? [])].some((c) => c.units > 0) && !cells.has(NONE_LEVEL)) {
    cells.set(NONE_LEVEL, none);
    levels.push(NONE_LEVEL);
  }
  const results = levels.map((level) => {
    const c = cells.get(level);
    const { analysis, variants, reason } = analyzeSlice(
      overall,
      baseRows,
      {
        exposure: cellsOf(c, EXPOSURE_METRIC),
        metric: cellsOf(c, plan.eventName),
        denominator: cellsOf(c, plan.denominator),
        capExcess: extras.capExcess?.get(level) ?? (extras.capExcess ? new Map() : null),
        products: extras.products
          ? new Map([...(extras.products.get(level) ?? [])].map(([id, p]) => [id, p.sum]))
          : null,
      },
      raw,
      'NONE',
    );
    const control = variants.find((v) => v.isControl) ?? null;
    const levelResults: ExperimentResults = {
      ...overall,
      correction,
      controlVariantId: control?.variantId ?? null,
      srm: analysis.srm,
      excludedConversions: 0,
      reason,
      variants,
    };
    return { level, results: levelResults };
  });
  // The correction spans every level's treatments: a breakdown is one family of comparisons.
  if (correction !== 'NONE') {
    const family = results.flatMap((r) => r.results.variants.filter((v) => !v.isControl));
    const adjusted = adjustPValues(
      family.map((v) => v.pValue),
      correction,
    );
    family.forEach((v, i) => {
      v.adjustedPValue = adjusted[i];
      v.significant = adjusted[i] === null ? null : adjusted[i]! < 1 - overall.confidenceLevel;
    });
  }
  return { dimension: groupBy, levels: results, warning: SEGMENTS_WARNING };
}
