/**
 * Experiment results: per-unit aggregation → per-variant sufficient statistics (one statement, from the
 * maintained aggregates) → the pure statistics engine.
 *
 * A unit's value for a metric is the sum of its conversion values inside its attribution window (from its
 * first exposure until the experiment completed, or the metric's conversion window; see
 * drizzle/repeatable/attribution.sql); BINOMIAL metrics: converted (a total > 0) or not. By default only
 * exposed units count, and exposed units without conversions count as 0; with includeUnexposed every
 * assigned unit counts (never-exposed units as 0: nothing is attributed before an exposure).
 */
import { z } from 'zod';
import { finiteNumber, parse, sci, slug } from '../common/validation';
import { LIMITS } from '../config';
import type { Db } from '../db/client';
import {
  getCapCovariateExcess,
  getCapExcess,
  getRatioProducts,
  getVariantStats,
  ratioPairKey,
  type VariantStatsRow,
} from '../aggregates/read';
import { addForcedCapExcess, addForcedProducts, addForcedStats, getForcedUnits } from '../aggregates/forced';
import { ValidationError } from '../common/errors';
import type { MetricRole } from '../metrics/definitions';
import { getListedMetricKeys, getMetricsWithRoleByKeys, type MetricRow } from '../metrics/repository';
import { getPhasesWithUnits, type PhaseWithUnits } from '../experiments/phases';
import { periodWeightedStats } from '../bandits/results';
import type { ExperimentRow } from '../experiments/repository';
import {
  CORRECTIONS,
  COVARIATE_IMBALANCE_P_VALUE,
  DEFAULT_CONFIDENCE_LEVEL,
  DEFAULT_SEQUENTIAL_TUNING,
  adjustPValues,
  analyze,
  type AnalyzeResult,
  type Correction,
  METRIC_GOALS,
  METRIC_TYPES,
  type MetricGoal,
  type MetricType,
  minimumDetectableEffect,
  NO_COMPARISON,
  power,
  sampleSize,
  STATS_METHODS,
  type StatsMethod,
  type SrmPhase,
  type StatsReason,
  type VariantResult,
} from './stats';

/** The metric that defaults to BINOMIAL; every other metric defaults to MEAN. */
export const CONVERSION_METRIC = 'conversion';

/** Things a reader must know before trusting the numbers, with the code a dashboard can key on. */
export const RESULTS_WARNINGS = ['PREPERIOD_IMBALANCE', 'CUPED_UNAVAILABLE'] as const;
export type ResultsWarningCode = (typeof RESULTS_WARNINGS)[number];
export interface ResultsWarning {
  code: ResultsWarningCode;
  message: string;
}

export interface VariantOutcome extends VariantResult {
  variantId: string;
  variantName: string;
  isControl: boolean;
  /** Events of the metric recorded for the variant but outside their unit's attribution window. */
  excludedConversions: number;
}

export interface ExperimentResults {
  experimentId: string;
  metric: string;
  /** The definition when `metric` is a defined metric's key (its kind, direction, cap and events apply). */
  definition: MetricRow | null;
  /** The metric's role in the experiment when the experiment lists it. */
  role: MetricRole | null;
  /** GUARDRAIL: the relative change in the bad direction tolerated. */
  toleratedHarm: number | null;
  type: MetricType;
  method: StatsMethod;
  confidenceLevel: number;
  /** NONE for BAYESIAN analyses, whatever was asked: they have no p-values to correct. */
  correction: Correction;
  goal: MetricGoal;
  /** Units each arm needs before its comparison is shown (TOO_FEW_UNITS below). */
  minUnitsPerVariant: number;
  includeUnexposed: boolean;
  /** Forced units (QA overrides) were added to every arm's numbers (never to the sample-ratio check). */
  includeForced: boolean;
  controlVariantId: string | null;
  srm: AnalyzeResult['srm'];
  /**
   * The variants' normalised weights differed between phases: each arm's units then mix periods in other
   * proportions, so pooled means can mislead (Simpson's paradox) when the metric drifts over time.
   */
  weightsChanged: boolean;
  /** Events of the metric recorded but outside their unit's attribution window, over all variants. */
  excludedConversions: number;
  /**
   * A BANDIT: its weights followed the data, so intervals and p-values are not fixed-horizon inference, and
   * each arm's mean is weighted by period (src/bandits/results.ts).
   */
  adaptiveAllocation: boolean;
  /** CUPED: whether the comparisons were regression-adjusted by the metric's covariate. */
  cuped: boolean;
  /** CUPED: exposed units whose first exposure carried the metric's covariate, over all variants. */
  covariateUnits: number;
  warnings: ResultsWarning[];
  variants: VariantOutcome[];
  reason: AnalyzeResult['reason'];
}

/** The analysis options of `results` and `scorecard`; their GraphQL arguments are checked against this. */
export const resultsOptions = z.object({
  type: z.enum(METRIC_TYPES).nullish(),
  method: z.enum(STATS_METHODS).nullish(),
  confidenceLevel: finiteNumber('confidenceLevel')
    .refine((v) => v > 0.5 && v < 1, 'confidenceLevel must be between 0.5 and 1 (exclusive), e.g. 0.95')
    .nullish(),
  correction: z.enum(CORRECTIONS).nullish(),
  goal: z.enum(METRIC_GOALS).nullish(),
  includeUnexposed: z.boolean().nullish(),
  includeForced: z.boolean().nullish(),
  cuped: z.boolean().nullish(),
  sequentialTuning: z
    .number()
    .int()
    .min(1, 'sequentialTuning must be a positive integer')
    .max(LIMITS.maxSequentialTuning, `sequentialTuning must be at most ${sci(LIMITS.maxSequentialTuning)}`)
    .nullish(),
  priorMean: finiteNumber('priorMean').nullish(),
  priorVariance: finiteNumber('priorVariance')
    .refine((v) => v > 0, 'priorVariance must be a positive number')
    .nullish(),
  minUnitsPerVariant: z
    .number()
    .int()
    .min(2, 'minUnitsPerVariant must be at least 2 (a variance needs two units)')
    .max(1e9)
    .nullish(),
});
export type ResultsOptions = z.input<typeof resultsOptions>;

export const defaultMetricType = (metric: string): MetricType =>
  metric === CONVERSION_METRIC ? 'BINOMIAL' : 'MEAN';

type CovariateStatsRow = VariantStatsRow['covariate'];

/** What a definition adds to a metric's per-variant statistics. */
interface InputExtras {
  /** RATIO: the denominator event's rows and Σ numerator·denominator per variant. */
  denominator?: { rows: VariantStatsRow[]; products: Map<string, number> } | null;
  /** capValue: per variant, Σ(total − cap) and Σ(total² − cap²) over units above the cap. */
  capExcess?: Map<string, { sum: number; sumSquares: number }> | null;
  /** CUPED: per variant, the sums of the metric's covariate (absent: no adjustment). */
  covariates?: Map<string, CovariateStatsRow> | null;
  /** CUPED with capValue: per variant, Σ(total − cap)·c over units above the cap. */
  capCovariateExcess?: Map<string, number> | null;
}

export function toInputs(
  rows: VariantStatsRow[],
  type: MetricType,
  includeUnexposed: boolean,
  extras: InputExtras = {},
) {
  // The control is the flagged variant, else the first in position order (as GrowthBook's variation 0).
  const flagged = rows.some((r) => r.isControl);
  const denominators = new Map(extras.denominator?.rows.map((r) => [r.variantId, r]));
  return rows.map((r, i) => {
    const n = includeUnexposed ? (r.assignedUnits ?? 0) : r.exposedUnits;
    // A BINOMIAL conversion is a unit whose attributed total is > 0: the share of units a MEAN analysis
    // of the same metric sees above 0. Units never exposed have no attributed events (they count as 0).
    // (Every unit with a counted total is exposed, so exposed and all-unit sums are the same numbers.)
    let sum = type === 'BINOMIAL' ? r.convertedUnits : includeUnexposed ? r.sum : r.exposedSum;
    let sumSquares =
      type === 'BINOMIAL' ? r.convertedUnits : includeUnexposed ? r.sumSquares : r.exposedSumSquares;
    const excess = type === 'MEAN' ? extras.capExcess?.get(r.variantId) : undefined;
    if (excess) {
      sum -= excess.sum;
      sumSquares -= excess.sumSquares;
    }
    const d = denominators.get(r.variantId);
    const ratio =
      type === 'RATIO' && extras.denominator
        ? {
            sumDenominator: d?.exposedSum ?? 0,
            sumDenominatorSquares: d?.exposedSumSquares ?? 0,
            sumProducts: extras.denominator.products.get(r.variantId) ?? 0,
          }
        : null;
    // A unit without the covariate counts as c = 0 (as do unexposed units, which carry none).
    const c = extras.covariates?.get(r.variantId);
    const covariate = extras.covariates
      ? {
          sum: c?.sum ?? 0,
          sumSquares: c?.sumSquares ?? 0,
          sumProducts:
            ((type === 'BINOMIAL' ? c?.convertedSum : c?.sumProducts) ?? 0) -
            (extras.capCovariateExcess?.get(r.variantId) ?? 0),
        }
      : null;
    return {
      id: r.variantId,
      weight: r.weight,
      n,
      sum,
      sumSquares,
      ratio,
      covariate,
      isControl: flagged ? r.isControl : i === 0,
    };
  });
}

/** How one requested metric is analysed: its definition (if any) and what follows from it. */
interface MetricPlan {
  metric: string;
  definition: MetricRow | null;
  role: MetricRole | null;
  toleratedHarm: number | null;
  type: MetricType;
  goal: MetricGoal;
  /** The conversion metricName counted (a RATIO metric's numerator). */
  eventName: string;
  denominator: string | null;
  cap: number | null;
}

/** Looks up the definitions and roles of the requested metrics (two statements) and plans each analysis. */
async function planMetrics(
  db: Db,
  experiment: ExperimentRow,
  metrics: readonly string[],
  raw: ResultsOptions,
  path: (i: number) => string[],
): Promise<MetricPlan[]> {
  const found = await getMetricsWithRoleByKeys(db, experiment.id, metrics);
  const byKey = new Map(found.map((d) => [d.key, d]));
  return metrics.map((metric, i) => {
    const row = byKey.get(metric);
    const { role = null, toleratedHarm = null, ...definition } = row ?? {};
    const listed = role !== null;
    const type = raw.type ?? row?.kind ?? defaultMetricType(metric);
    if (type === 'RATIO') {
      if (row?.kind !== 'RATIO')
        throw ValidationError.field(
          raw.type === 'RATIO' ? ['type'] : path(i),
          `RATIO needs a defined RATIO metric (createMetric with a denominatorEventName); "${metric}" is not one`,
        );
      if (!listed)
        throw ValidationError.field(
          path(i),
          `list the RATIO metric "${metric}" in the experiment's metricRoles to analyse it: its cross products are maintained only for the metrics an experiment lists`,
        );
    }
    return {
      metric,
      definition: row ? (definition as MetricRow) : null,
      role,
      toleratedHarm,
      type,
      goal: raw.goal ?? row?.direction ?? 'INCREASE',
      eventName: row?.eventName ?? metric,
      denominator: type === 'RATIO' ? row!.denominatorEventName : null,
      cap: type === 'MEAN' ? (row?.capValue ?? null) : null,
    };
  });
}

/** The metrics `scorecard` analyses by default: those the experiment lists, else every metric with data. */
export async function defaultScorecardMetrics(
  db: Db,
  experimentId: string,
  metricNames: () => Promise<string[]>,
) {
  const listed = await getListedMetricKeys(db, experimentId);
  return listed.length > 0 ? listed : metricNames();
}

/**
 * A variant's row for a metric nobody recorded: its units are real, but a mean of 0 would be read as a
 * measured metric with no effect, so every number about the metric is null.
 */
export function unknownMetric(v: VariantResult): VariantResult {
  return {
    ...v,
    mean: null,
    standardDeviation: null,
    conversions: null,
    ...NO_COMPARISON,
    reason: 'UNKNOWN_METRIC',
  };
}

/** Each phase's weights and units in the order of the variant rows (a variant a phase does not list: 0). */
function alignPhases(phases: readonly PhaseWithUnits[], rows: readonly VariantStatsRow[]): SrmPhase[] {
  return phases.map((p) => {
    const weights = new Map(p.weights.map((w) => [w.variantId, w.weight]));
    return {
      index: p.index,
      weights: rows.map((r) => weights.get(r.variantId) ?? 0),
      observed: rows.map((r) => p.units[r.variantId] ?? 0),
    };
  });
}

/** The sample-ratio check's one "phase" of an experiment that never started: its weights now, randomised units. */
function neverStarted(rows: readonly VariantStatsRow[], includeUnexposed: boolean): SrmPhase {
  return {
    index: 1,
    weights: rows.map((r) => r.weight),
    observed: rows.map((r) => (includeUnexposed ? (r.assignedUnits ?? 0) : r.exposedUnits)),
  };
}

/** Whether the normalised weights of any two phases differ (a traffic change alone scales every arm alike). */
function weightsChanged(phases: readonly PhaseWithUnits[]): boolean {
  const shares = phases.map((p) => {
    const total = p.weights.reduce((acc, w) => acc + w.weight, 0);
    return new Map(p.weights.map((w) => [w.variantId, total > 0 ? w.weight / total : 0]));
  });
  return shares.some((s) => [...s].some(([id, share]) => Math.abs(share - (shares[0].get(id) ?? 0)) > 1e-12));
}

/**
 * Whether a metric's comparisons are regression-adjusted: by default when any unit's first exposure carried
 * its covariate; `cuped: false` turns it off, `cuped: true` asks for it (a warning says when it cannot be).
 */
function planCuped(
  plan: MetricPlan,
  requested: boolean | null,
  sums: Map<string, CovariateStatsRow> | null,
): { covariates: Map<string, CovariateStatsRow> | null; units: number; warnings: ResultsWarning[] } {
  const units = [...(sums?.values() ?? [])].reduce((acc, s) => acc + s.units, 0);
  const unavailable = (why: string) => ({
    covariates: null,
    units,
    warnings:
      requested === true
        ? [{ code: 'CUPED_UNAVAILABLE' as const, message: `CUPED was not applied: ${why}` }]
        : [],
  });
  if (requested === false) return { covariates: null, units, warnings: [] };
  if (units === 0)
    return unavailable(
      `no exposure carried a covariate for "${plan.metric}" (covariates: { "${plan.metric}": <pre-period value> })`,
    );
  if (plan.type === 'RATIO') return unavailable('RATIO metrics are analysed without regression adjustment');
  return { covariates: sums, units, warnings: [] };
}

/** A covariate's statistics by variant id, from the rows read for its key (none when no unit carries it). */
function covariateSums(rows: readonly VariantStatsRow[] | undefined): Map<string, CovariateStatsRow> | null {
  if (!rows?.some((r) => r.covariate.units > 0)) return null;
  return new Map(rows.map((r) => [r.variantId, r.covariate]));
}

/** PREPERIOD_IMBALANCE for every treatment whose covariate mean differs from the control's (p < 0.001). */
function imbalanceWarnings(
  variants: readonly VariantResult[],
  rows: readonly VariantStatsRow[],
): ResultsWarning[] {
  return variants.flatMap((v, i) =>
    v.covariateBalancePValue !== null && v.covariateBalancePValue < COVARIATE_IMBALANCE_P_VALUE
      ? [
          {
            code: 'PREPERIOD_IMBALANCE' as const,
            message: `The pre-period covariate of "${rows[i].variantName}" differs from the control's (p = ${v.covariateBalancePValue.toPrecision(2)} < ${COVARIATE_IMBALANCE_P_VALUE}): check the assignment and that covariates were measured before exposure; adjusted effects assume balanced arms.`,
          },
        ]
      : [],
  );
}

/** Results for several metrics, with the correction applied over all treatments × metrics. */
export async function getResults(
  db: Db,
  experiment: ExperimentRow,
  /** One metric (`results(metric)`) or several (`scorecard(metrics)`): bad names are reported by that path. */
  metricArgument: string | readonly string[],
  raw: ResultsOptions = {},
): Promise<ExperimentResults[]> {
  const metrics = typeof metricArgument === 'string' ? [metricArgument] : metricArgument;
  metrics.forEach((m, i) => {
    parse(
      slug('metric', LIMITS.metricNameMaxLength),
      m,
      typeof metricArgument === 'string' ? ['metric'] : ['metrics', String(i)],
    );
  });
  parse(resultsOptions, raw);
  const method = raw.method ?? 'FREQUENTIST';
  const confidenceLevel = raw.confidenceLevel ?? DEFAULT_CONFIDENCE_LEVEL;
  const correction = method === 'BAYESIAN' ? 'NONE' : (raw.correction ?? 'NONE');
  const minUnitsPerVariant = raw.minUnitsPerVariant ?? LIMITS.minUnitsPerVariant;
  const includeUnexposed = raw.includeUnexposed ?? false;
  const includeForced = raw.includeForced ?? false;
  const prior =
    raw.priorMean != null || raw.priorVariance != null
      ? { mean: raw.priorMean ?? 0, variance: raw.priorVariance ?? 1 }
      : null;

  const plans = await planMetrics(db, experiment, metrics, raw, (i) =>
    typeof metricArgument === 'string' ? ['metric'] : ['metrics', String(i)],
  );
  // Every counted event, and each metric's key: CUPED covariates are keyed by metric (read with the stats).
  const eventNames = [
    ...new Set(plans.flatMap((p) => [p.eventName, ...(p.denominator ? [p.denominator] : []), p.metric])),
  ];
  const ratioPairs = plans.flatMap((p) =>
    p.denominator ? [{ numerator: p.eventName, denominator: p.denominator }] : [],
  );
  const [stats, phases, products, capExcess, forced] = await Promise.all([
    getVariantStats(db, experiment.id, eventNames, { countAssigned: includeUnexposed }),
    // The weight history with each phase's units, for the sample-ratio check. An experiment that never
    // started has none: its current weights apply.
    getPhasesWithUnits(db, experiment.id, { assigned: includeUnexposed }),
    getRatioProducts(db, experiment.id, ratioPairs),
    Promise.all(
      plans.map((p) => (p.cap === null ? null : getCapExcess(db, experiment.id, p.eventName, p.cap))),
    ),
    includeForced ? getForcedUnits(db, experiment.id, eventNames) : null,
  ]);
  // Forced units join every arm's numbers on request, but never the sample-ratio check: they were not
  // randomised. An experiment that never started (a previewed DRAFT) has no phases: its check then reads
  // the randomised units alone too.
  const withForced = (eventName: string, rows: VariantStatsRow[]) =>
    forced ? addForcedStats(rows, forced, eventName) : rows;
  // A bandit's arms are compared by period-weighted means (its weights changed with the data).
  const bandit = experiment.kind === 'bandit';
  const weighted = bandit
    ? await Promise.all(
        plans.map((p) =>
          periodWeightedStats(
            db,
            experiment.id,
            (stats.get(p.eventName) ?? []).map((r) => r.variantId),
            { eventName: p.eventName, type: p.type, cap: p.cap, includeUnexposed },
          ),
        ),
      )
    : null;
  const cupedPlans = plans.map((p) => planCuped(p, raw.cuped ?? null, covariateSums(stats.get(p.metric))));
  // A capped metric's x is the capped total: its covariate products above the cap come off (one statement each).
  const capCovariateExcess = await Promise.all(
    plans.map((p, i) =>
      p.cap !== null && cupedPlans[i].covariates
        ? getCapCovariateExcess(db, experiment.id, p.eventName, p.cap, p.metric)
        : null,
    ),
  );
  const results = plans.map((plan, planIndex) => {
    const { metric, type, goal } = plan;
    const randomised = stats.get(plan.eventName) ?? [];
    const rows = withForced(plan.eventName, randomised);
    const denominatorRows = plan.denominator
      ? withForced(plan.denominator, stats.get(plan.denominator) ?? [])
      : [];
    const pairProducts = plan.denominator
      ? (products.get(ratioPairKey({ numerator: plan.eventName, denominator: plan.denominator })) ??
        new Map())
      : null;
    const excess = capExcess[planIndex];
    const cuped = cupedPlans[planIndex];
    const inputs = toInputs(rows, type, includeUnexposed, {
      covariates: cuped.covariates,
      capCovariateExcess: capCovariateExcess[planIndex],
      denominator:
        plan.denominator && pairProducts
          ? {
              rows: denominatorRows,
              products: forced
                ? addForcedProducts(pairProducts, forced, plan.eventName, plan.denominator)
                : pairProducts,
            }
          : null,
      capExcess:
        excess && forced && plan.cap !== null
          ? addForcedCapExcess(excess, forced, plan.eventName, plan.cap)
          : excess,
    });
    const adjusted = weighted?.[planIndex];
    const analysis = analyze({
      variants: adjusted ? inputs.map((v) => ({ ...v, ...adjusted.get(v.id) })) : inputs,
      metricType: adjusted ? 'MEAN' : type,
      method,
      confidenceLevel,
      correction: 'NONE',
      sequentialTuning: raw.sequentialTuning ?? DEFAULT_SEQUENTIAL_TUNING,
      prior,
      goal,
      minimumUnits: minUnitsPerVariant,
      srmPhases:
        phases.length > 0
          ? alignPhases(phases, rows)
          : forced
            ? [neverStarted(randomised, includeUnexposed)]
            : null,
    });
    const control = inputs.find((v) => v.isControl) ?? null;
    // With no units at all the engine already says NO_UNITS; with units, a metric without a single event
    // would come out as exact zeros. (Events recorded outside every window make a known metric: zeros.)
    const unknown =
      [...rows, ...denominatorRows].every((r) => r.recordedEvents === 0) && inputs.some((v) => v.n > 0);
    // Counted events are attributed to the variant of the unit's earliest one, recorded ones to their own
    // variant: the same variant unless a unit's events disagree, which ingestion refuses. RATIO: numerator
    // and denominator events.
    const excluded = rows.map(
      (r, i) =>
        Math.max(0, r.recordedEvents - r.metricEvents) +
        (denominatorRows[i]
          ? Math.max(0, denominatorRows[i].recordedEvents - denominatorRows[i].metricEvents)
          : 0),
    );
    return {
      experimentId: experiment.id,
      metric,
      definition: plan.definition,
      role: plan.role,
      toleratedHarm: plan.toleratedHarm,
      type,
      method,
      confidenceLevel,
      correction,
      goal,
      minUnitsPerVariant,
      includeUnexposed,
      includeForced,
      controlVariantId: control?.id ?? null,
      srm: analysis.srm,
      weightsChanged: weightsChanged(phases),
      adaptiveAllocation: bandit,
      excludedConversions: excluded.reduce((acc, x) => acc + x, 0),
      cuped: analysis.variants.some((v) => v.cupedTheta !== null),
      covariateUnits: cuped.units,
      warnings: [...cuped.warnings, ...imbalanceWarnings(analysis.variants, rows)],
      reason: unknown ? ('UNKNOWN_METRIC' as const) : analysis.reason,
      variants: analysis.variants.map((v, i) => ({
        ...(unknown
          ? unknownMetric(v)
          : adjusted && type === 'BINOMIAL'
            ? { ...v, conversions: inputs[i].sum }
            : v),
        variantId: rows[i].variantId,
        variantName: rows[i].variantName,
        isControl: inputs[i].isControl,
        excludedConversions: excluded[i],
      })),
    };
  });

  // Multiple comparisons: adjust every treatment's p-value across the variants × metrics of this request, in
  // two families: the decision metrics (PRIMARY, SECONDARY and metrics the experiment does not list) and the
  // GUARDRAIL metrics, which answer another question ("did anything break?") and are corrected among themselves.
  if (correction !== 'NONE' && method !== 'BAYESIAN') {
    for (const guardrails of [false, true]) {
      const family = results
        .filter((r) => (r.role === 'GUARDRAIL') === guardrails)
        .flatMap((r) => r.variants.filter((v) => !v.isControl));
      const adjusted = adjustPValues(
        family.map((v) => v.pValue),
        correction,
      );
      family.forEach((v, i) => {
        v.adjustedPValue = adjusted[i];
        v.significant = adjusted[i] === null ? null : adjusted[i]! < 1 - confidenceLevel;
      });
    }
  }
  return results;
}

/** `sampleSize(…)`; the planning engine answers impossible inputs with a reason, not an error. */
export const sampleSizeArgs = z.object({
  baselineMean: finiteNumber('baselineMean').nullish(),
  baselineStdDev: finiteNumber('baselineStdDev').nullish(),
  baselineRate: finiteNumber('baselineRate').nullish(),
  minimumDetectableEffect: finiteNumber('minimumDetectableEffect'),
  variants: z.number().int().nullish(),
  alpha: finiteNumber('alpha').nullish(),
  power: finiteNumber('power').nullish(),
  method: z.enum(STATS_METHODS).nullish(),
  correction: z.enum(CORRECTIONS).nullish(),
  sequentialTuning: z
    .number()
    .int()
    .min(1, 'sequentialTuning must be a positive integer')
    .max(1e9, 'sequentialTuning must be at most 1e9')
    .nullish(),
  currentUnitsPerVariant: z.number().int().nullish(),
});
export type SampleSizeArgs = z.input<typeof sampleSizeArgs>;

export interface SampleSizePlan {
  unitsPerVariant: number | null;
  totalUnits: number | null;
  powerAtUnits: number | null;
  minimumDetectableEffectAtUnits: number | null;
  alphaPerComparison: number | null;
  reason: StatsReason | null;
}

/**
 * A plan for the test `results` runs (method, correction, minimum sample). Unit counts beyond LIMITS.maxPlannedUnits (the API's integers) are null with
 * TOO_MANY_UNITS rather than an error: a tiny effect, or very many variants, is a question with that answer.
 */
export function planSampleSize(raw: SampleSizeArgs): SampleSizePlan {
  const a = parse(sampleSizeArgs, raw);
  const baseline =
    a.baselineRate != null
      ? ({ metricType: 'BINOMIAL', mean: a.baselineRate } as const)
      : ({
          metricType: 'MEAN',
          mean: a.baselineMean ?? Number.NaN,
          variance: (a.baselineStdDev ?? Number.NaN) ** 2,
        } as const);
  const opts = {
    alpha: a.alpha ?? 0.05,
    power: a.power ?? 0.8,
    variants: a.variants ?? 2,
    method: a.method ?? 'FREQUENTIST',
    correction: a.correction ?? 'NONE',
    sequentialTuning: a.sequentialTuning ?? DEFAULT_SEQUENTIAL_TUNING,
  };
  const size = sampleSize(baseline, a.minimumDetectableEffect, {
    ...opts,
    minimumUnits: LIMITS.minUnitsPerVariant,
  });
  const current = a.currentUnitsPerVariant;
  const pw = current != null ? power(baseline, a.minimumDetectableEffect, current, opts) : null;
  const mde = current != null ? minimumDetectableEffect(baseline, current, opts) : null;
  const units = size.value;
  const fits = units === null || units.totalUnits <= LIMITS.maxPlannedUnits;
  return {
    unitsPerVariant: fits ? (units?.unitsPerVariant ?? null) : null,
    totalUnits: fits ? (units?.totalUnits ?? null) : null,
    powerAtUnits: pw?.value ?? null,
    minimumDetectableEffectAtUnits: mde?.value ?? null,
    alphaPerComparison: units?.alpha ?? null,
    reason: (fits ? size.reason : 'TOO_MANY_UNITS') ?? pw?.reason ?? mde?.reason ?? null,
  };
}
