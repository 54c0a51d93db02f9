import { bayesianTest } from './bayesian';
import { adjustPValues } from './corrections';
import { covariateBalance, regressionAdjust } from './cuped';
import { DEFAULT_MINIMUM_UNITS, decide } from './decision';
import { difference } from './difference';
import { welchTTest } from './frequentist';
import { DEFAULT_SEQUENTIAL_TUNING, sequentialTest } from './sequential';
import { sampleRatioMismatch, sampleRatioMismatchByPhase, type SrmPhase, type SrmResult } from './srm';
import { describeArm, isValidStats, summarize } from './summary';
import {
  type Correction,
  type DifferenceType,
  type EffectResult,
  fail,
  type GaussianPrior,
  type MetricGoal,
  type MetricType,
  type Outcome,
  ok,
  type StatsMethod,
  type StatsReason,
  type SufficientStats,
} from './types';

export const DEFAULT_CONFIDENCE_LEVEL = 0.95;

export interface CompareOptions {
  metricType: MetricType;
  method: StatsMethod;
  /** Default 0.95; alpha = 1 − confidenceLevel. */
  confidenceLevel?: number;
  /** N*, the total sample size at which the sequential interval is tightest; default 5000. */
  sequentialTuning?: number;
  /** Bayesian only: normal prior on the relative effect; flat when absent. */
  prior?: GaussianPrior | null;
}

export interface Comparison {
  absoluteEffect: EffectResult | null;
  relativeEffect: EffectResult | null;
  /** Why an effect is null (the absolute effect's reason first, then the relative one's). */
  reason: StatsReason | null;
}

function validOptions(options: CompareOptions): boolean {
  const { confidenceLevel = DEFAULT_CONFIDENCE_LEVEL, sequentialTuning = DEFAULT_SEQUENTIAL_TUNING } =
    options;
  return (
    Number.isFinite(confidenceLevel) &&
    confidenceLevel > 0 &&
    confidenceLevel < 1 &&
    Number.isFinite(sequentialTuning) &&
    sequentialTuning > 0
  );
}

const isFiniteEffect = (effect: EffectResult): boolean =>
  [effect.estimate, effect.lower, effect.upper, effect.standardError, effect.pValue, effect.chanceToWin]
    .concat(effect.risk ?? [])
    .every((x) => x === null || Number.isFinite(x));

function effectOn(
  control: SufficientStats,
  treatment: SufficientStats,
  differenceType: DifferenceType,
  options: CompareOptions,
): Outcome<EffectResult> {
  const b = summarize(treatment, options.metricType);
  if (b.value === null) return fail(b.reason);
  const a = summarize(control, options.metricType);
  if (a.value === null) return fail(a.reason);
  let diff = difference(a.value, b.value, differenceType);
  if (diff.value === null) return fail(diff.reason);
  // CUPED (both arms carry covariate sums): gbstats' regression-adjusted effect on this scale.
  const unadjusted = difference(a.value, b.value, 'ABSOLUTE');
  const adjusted = regressionAdjust(control, treatment, options.metricType, unadjusted.value?.variance ?? 0);
  if (adjusted?.value)
    diff = differenceType === 'ABSOLUTE' ? ok(adjusted.value.absolute) : adjusted.value.relative;
  if (diff.value === null) return fail(diff.reason);
  const level = options.confidenceLevel ?? DEFAULT_CONFIDENCE_LEVEL;
  let result: Outcome<EffectResult>;
  switch (options.method) {
    case 'FREQUENTIST':
      result = ok(welchTTest(diff.value, level));
      break;
    case 'SEQUENTIAL':
      result = ok(sequentialTest(diff.value, level, options.sequentialTuning ?? DEFAULT_SEQUENTIAL_TUNING));
      break;
    case 'BAYESIAN':
      result = bayesianTest(diff.value, level, options.prior);
      break;
  }
  if (result.value !== null && !isFiniteEffect(result.value)) return fail('NON_FINITE_RESULT');
  return result;
}

/**
 * One treatment against the control on both scales, each with its own test, exactly as GrowthBook's gbstats
 * computes them (the published reference vectors check this function). The relative scale's delta-method
 * test is anti-conservative at low counts: analyze() decides with `decide()` instead.
 */
export function compare(
  control: SufficientStats,
  treatment: SufficientStats,
  options: CompareOptions,
): Comparison {
  if (!validOptions(options)) return { absoluteEffect: null, relativeEffect: null, reason: 'INVALID_INPUT' };
  const absolute = effectOn(control, treatment, 'ABSOLUTE', options);
  const relative = effectOn(control, treatment, 'RELATIVE', options);
  return {
    absoluteEffect: absolute.value,
    relativeEffect: relative.value,
    reason: absolute.reason ?? relative.reason,
  };
}

export interface VariantInput extends SufficientStats {
  id: string;
  /** Configured traffic weight; weights are normalised for the SRM check. */
  weight: number;
  isControl: boolean;
}

export interface AnalyzeInput extends CompareOptions {
  variants: readonly VariantInput[];
  /**
   * Adjusts the treatments' p-values over this call's comparisons; default NONE. Ignored by BAYESIAN analyses,
   * which have no p-values. To correct over variants × metrics, pass the raw pValues of all analyses to
   * `adjustPValues`.
   */
  correction?: Correction;
  /** Which way is better; default INCREASE. Sets the direction of chanceToWin, risk and Bayesian significance. */
  goal?: MetricGoal;
  /**
   * Units each arm needs before its comparison is shown (TOO_FEW_UNITS below); default 2, the least a
   * variance needs. The API passes LIMITS.minUnitsPerVariant.
   */
  minimumUnits?: number;
  /**
   * The weight history, for the sample-ratio check: each phase's units per variant (in `variants` order)
   * and the weights in force then. Without it, every unit is expected to split by the variants' `weight`.
   */
  srmPhases?: readonly SrmPhase[] | null;
}

export interface VariantResult {
  id: string;
  isControl: boolean;
  units: number | null;
  mean: number | null;
  standardDeviation: number | null;
  /** Binomial metrics only. */
  conversions: number | null;
  /** Treatment − control with the decision's interval (Newcombe's when a BINOMIAL arm is constant). */
  absoluteEffect: EffectResult | null;
  /**
   * Delta-method lift (treatment − control)/|control| with its standard error; FREQUENTIST and SEQUENTIAL
   * intervals are Fieller's for the decision's test (MOVER-R when a BINOMIAL arm is constant), BAYESIAN ones
   * GrowthBook's relative posterior.
   */
  relativeEffect: EffectResult | null;
  /** Scale of pValue, chanceToWin and risk: ABSOLUTE (the difference of means); null when there are none. */
  differenceType: DifferenceType | null;
  /**
   * Two-sided p-value of equal means: Welch's t-test, the always-valid p-value (SEQUENTIAL), or Fisher's
   * exact test when a BINOMIAL arm is constant; null for Bayesian analyses and for the control.
   */
  pValue: number | null;
  /** pValue after the requested correction over this analysis's treatments. */
  adjustedPValue: number | null;
  /**
   * Frequentist/sequential: adjustedPValue < 1 − confidenceLevel (either direction). Bayesian: chanceToWin >
   * confidenceLevel, i.e. the treatment wins for the goal (one-sided). Null for the control and when nothing
   * could be computed.
   */
  significant: boolean | null;
  /** Bayesian: posterior probability that the treatment is better for the goal. */
  chanceToWin: number | null;
  /** Bayesian: expected loss of choosing [control, treatment], absolute scale (metric units), for the goal. */
  risk: [number, number] | null;
  /** CUPED: the adjustment's regression coefficient θ (pooled over this arm and the control); null unadjusted. */
  cupedTheta: number | null;
  /** CUPED: 1 − adjusted/unadjusted variance of the absolute effect; null when not adjusted. */
  varianceReduction: number | null;
  /**
   * CUPED: two-sided p-value (Welch) that this arm's and the control's pre-period covariate means are equal.
   * Randomised arms differ before the experiment only by chance: a tiny value flags broken assignment or
   * covariates measured after exposure. Null without covariates and for the control.
   */
  covariateBalancePValue: number | null;
  reason: StatsReason | null;
}

/** A variant's comparison figures when there is none to make (set by the reason beside them). */
export const NO_COMPARISON = {
  absoluteEffect: null,
  relativeEffect: null,
  differenceType: null,
  pValue: null,
  adjustedPValue: null,
  significant: null,
  chanceToWin: null,
  risk: null,
  cupedTheta: null,
  varianceReduction: null,
} as const satisfies Partial<VariantResult>;

export interface AnalyzeResult {
  srm: SrmResult;
  variants: VariantResult[];
  /** Set when no comparison was possible at all (no control, single variant, invalid options). */
  reason: StatsReason | null;
}

function controlOf(variants: readonly VariantInput[]): Outcome<VariantInput> {
  const controls = variants.filter((v) => v.isControl);
  if (variants.length === 1) return fail('SINGLE_VARIANT');
  if (controls.length === 0) return fail('NO_CONTROL');
  if (controls.length > 1) return fail('MULTIPLE_CONTROLS');
  return ok(controls[0]);
}

/**
 * Compares every treatment variant with the control. Pure: takes sufficient statistics, returns numbers or
 * null-plus-reason, never NaN, Infinity or an exception for data-dependent edge cases.
 */
export function analyze(input: AnalyzeInput): AnalyzeResult {
  const { variants, metricType, method, correction = 'NONE', minimumUnits = DEFAULT_MINIMUM_UNITS } = input;
  const confidenceLevel = input.confidenceLevel ?? DEFAULT_CONFIDENCE_LEVEL;
  // An invalid count (NaN, negative, fractional, conversions > n) must not leak into the SRM numbers.
  const srm = input.srmPhases
    ? sampleRatioMismatchByPhase(variants.length, input.srmPhases)
    : sampleRatioMismatch(
        variants.map((v) => (isValidStats(v, metricType) ? v.n : -1)),
        variants.map((v) => v.weight),
      );

  const control = controlOf(variants);
  const globalReason =
    validOptions(input) && Number.isFinite(minimumUnits) ? control.reason : 'INVALID_INPUT';

  const rows: VariantResult[] = variants.map((v) => {
    const valid = isValidStats(v, metricType);
    const { mean, standardDeviation } = describeArm(v, metricType);
    const base: VariantResult = {
      id: v.id,
      isControl: v.isControl,
      units: valid ? v.n : null,
      mean,
      standardDeviation,
      conversions: metricType === 'BINOMIAL' && valid ? v.sum : null,
      ...NO_COMPARISON,
      covariateBalancePValue: null,
      reason: null,
    };
    if (globalReason !== null) return { ...base, reason: globalReason };
    if (v.isControl) {
      const own = summarize(v, metricType);
      return { ...base, reason: own.reason ?? (v.n < minimumUnits ? 'TOO_FEW_UNITS' : null) };
    }
    const decision = decide(control.value!, v, { ...input, confidenceLevel, minimumUnits });
    const c = control.value!;
    const balance =
      c.covariate && v.covariate
        ? covariateBalance({ n: c.n, covariate: c.covariate }, { n: v.n, covariate: v.covariate })
        : null;
    return { ...base, ...decision, covariateBalancePValue: balance?.value?.pValue ?? null };
  });

  const adjusted = adjustPValues(
    rows.map((r) => r.pValue),
    method === 'BAYESIAN' ? 'NONE' : correction,
  );
  const alpha = 1 - confidenceLevel;
  for (const [i, row] of rows.entries()) {
    row.adjustedPValue = adjusted[i];
    if (row.adjustedPValue !== null) row.significant = row.adjustedPValue < alpha;
    else if (row.chanceToWin !== null) row.significant = row.chanceToWin > confidenceLevel;
  }
  return { srm, variants: rows, reason: globalReason };
}
