/**
 * The headline comparison of one treatment with the control: the figures analyze() reports and decides on.
 *
 * Why the absolute scale: the test of equal means is the same hypothesis on either scale, but the relative
 * effect's delta-method variance shrinks with the treatment mean and divides by a noisy control mean, so a
 * test on it rejects too often and mostly in one direction ("treatment lower") when counts are small or
 * values skewed. The Welch test (or confidence sequence) on the difference of means keeps its error rate, and
 * the relative interval is Fieller's for the same test: it excludes 0 exactly when the test rejects. The
 * delta-method lift stays as the relative point estimate (and its standard error), as GrowthBook reports it.
 */
import { bayesianTest, effectPosterior, expectedLoss } from './bayesian';
import { type Bounds, type DifferenceEstimate, difference, fiellerRatio } from './difference';
import { normalCdf, normalQuantile, tQuantile, tTwoSidedPValue } from './distributions';
import { moverRatio, newcombeDifference, newcombeNullCritical } from './exact';
import {
  DEFAULT_SEQUENTIAL_TUNING,
  sequentialMultiplier,
  sequentialPValue,
  sequentialPValueOfStatistic,
  sequentialRho,
} from './sequential';
import { regressionAdjust } from './cuped';
import { summarize } from './summary';
import type {
  Outcome,
  ArmSummary,
  DifferenceType,
  EffectResult,
  GaussianPrior,
  MetricGoal,
  MetricType,
  StatsMethod,
  StatsReason,
  SufficientStats,
} from './types';

export interface DecisionOptions {
  metricType: MetricType;
  method: StatsMethod;
  confidenceLevel: number;
  sequentialTuning?: number;
  prior?: GaussianPrior | null;
  /** Default INCREASE: a higher mean is better. */
  goal?: MetricGoal;
  /** Fewer units than this in either arm: no effects, no decision (TOO_FEW_UNITS). Default 2. */
  minimumUnits?: number;
}

export interface Decision {
  absoluteEffect: EffectResult | null;
  relativeEffect: EffectResult | null;
  /** Scale of pValue, chanceToWin and risk (always ABSOLUTE); null when none of them could be computed. */
  differenceType: DifferenceType | null;
  /** FREQUENTIST and SEQUENTIAL: two-sided p-value of equal means. */
  pValue: number | null;
  /** BAYESIAN: posterior probability that the treatment is better for the goal. */
  chanceToWin: number | null;
  /** BAYESIAN: expected loss of choosing [control, treatment], in the metric's units, for the goal. */
  risk: [number, number] | null;
  /** CUPED: the regression coefficient θ of the adjustment; null when the comparison is not adjusted. */
  cupedTheta: number | null;
  /** CUPED: 1 − adjusted/unadjusted variance of the absolute effect; null when not adjusted. */
  varianceReduction: number | null;
  /** Why a figure is null: the decision's reason first, then the relative effect's. */
  reason: StatsReason | null;
}

export const DEFAULT_MINIMUM_UNITS = 2;

const empty = (reason: StatsReason): Decision => ({
  absoluteEffect: null,
  relativeEffect: null,
  differenceType: null,
  pValue: null,
  chanceToWin: null,
  risk: null,
  cupedTheta: null,
  varianceReduction: null,
  reason,
});

const isFiniteEffect = (effect: EffectResult | null): boolean =>
  effect === null ||
  [effect.estimate, effect.lower, effect.upper, effect.standardError, effect.pValue, effect.chanceToWin]
    .concat(effect.risk ?? [])
    .every((x) => x === null || Number.isFinite(x));

function finite(decision: Decision): Decision {
  const numbers = [decision.pValue, decision.chanceToWin, ...(decision.risk ?? [])];
  const ok =
    isFiniteEffect(decision.absoluteEffect) &&
    isFiniteEffect(decision.relativeEffect) &&
    numbers.every((x) => x === null || Number.isFinite(x));
  return ok ? decision : empty('NON_FINITE_RESULT');
}

/** The relative lift (meanB − meanA)/|meanA| for bounds on the ratio θ = meanB/meanA. */
function liftBounds(ratio: Bounds, controlMean: number): Bounds {
  return controlMean > 0
    ? { lower: ratio.lower - 1, upper: ratio.upper - 1 }
    : { lower: 1 - ratio.upper, upper: 1 - ratio.lower };
}

interface Relative {
  effect: EffectResult | null;
  reason: StatsReason | null;
}

/** Frequentist or sequential comparison; `c` is the method's critical value in standard errors. */
function testDecision(
  control: SufficientStats,
  treatment: SufficientStats,
  a: ArmSummary,
  b: ArmSummary,
  abs: DifferenceEstimate,
  options: DecisionOptions,
  relativeOverride: RelativeOverride | null,
): Decision {
  const { method, confidenceLevel: level, metricType } = options;
  const alpha = 1 - level;
  const tuning = options.sequentialTuning ?? DEFAULT_SEQUENTIAL_TUNING;
  const oneArmConstant = a.variance === 0 || b.variance === 0;
  // A Wald test on a constant arm treats its mean as known exactly. Proportions have score intervals that
  // stay honest there (Wilson's); a general mean has nothing comparable, so no decision.
  if (oneArmConstant && metricType !== 'BINOMIAL') return empty('ZERO_VARIANCE');
  const rho = sequentialRho(alpha, tuning);
  // Welch's t-test (gbstats TwoSidedTTest) or the asymptotic confidence sequence, from one critical value.
  const c =
    method === 'SEQUENTIAL'
      ? sequentialMultiplier(abs.totalUnits, alpha, rho)
      : tQuantile(1 - alpha / 2, abs.df);
  const test = {
    lower: abs.estimate - c * abs.standardError,
    upper: abs.estimate + c * abs.standardError,
    pValue:
      method === 'SEQUENTIAL'
        ? sequentialPValue(abs, rho)
        : tTwoSidedPValue(abs.estimate / abs.standardError, abs.df),
  };
  const lift = relativeOverride
    ? relativeOverride.estimate
    : a.mean === 0
      ? null
      : (b.mean - a.mean) / Math.abs(a.mean);

  let pValue = test.pValue;
  let absoluteBounds: Bounds = test;
  let ratio: Bounds | null;
  let relativeSe: number | null = null;
  if (oneArmConstant) {
    // Score methods: Newcombe's interval from the arms' Wilson intervals, and the test it inverts (its
    // p-value is the method's tail beyond the critical value at which the interval reaches 0), so the
    // interval excludes 0 exactly when the test rejects. MOVER-R gives the ratio from the same intervals.
    const statistic = newcombeNullCritical(control.sum, control.n, treatment.sum, treatment.n);
    pValue =
      method === 'SEQUENTIAL'
        ? sequentialPValueOfStatistic(statistic, abs.totalUnits, rho)
        : tTwoSidedPValue(statistic, abs.df);
    absoluteBounds = newcombeDifference(control.sum, control.n, treatment.sum, treatment.n, c);
    ratio = a.mean === 0 ? null : moverRatio(control.sum, control.n, treatment.sum, treatment.n, c);
  } else {
    ratio = a.mean === 0 ? null : fiellerRatio(a.mean, a.variance / a.n, b.mean, b.variance / b.n, c);
    // Rates are never negative: the part of Fieller's set below a ratio of 0 is outside the parameter space.
    if (ratio !== null && metricType === 'BINOMIAL') ratio = { ...ratio, lower: Math.max(0, ratio.lower) };
    const rel = relativeOverride?.difference ?? difference(a, b, 'RELATIVE');
    relativeSe = rel.value?.standardError ?? null;
  }
  const absoluteEffect: EffectResult = {
    estimate: abs.estimate,
    lower: absoluteBounds.lower,
    upper: absoluteBounds.upper,
    // With a constant arm the Welch standard error ignores that arm: report the interval's own width instead.
    standardError: oneArmConstant
      ? (absoluteBounds.upper - absoluteBounds.lower) / (2 * c)
      : abs.standardError,
    pValue,
    chanceToWin: null,
    risk: null,
  };
  const relative: Relative =
    lift === null
      ? { effect: null, reason: 'CONTROL_MEAN_ZERO' }
      : ratio === null
        ? { effect: null, reason: 'CONTROL_MEAN_UNCERTAIN' }
        : {
            effect: {
              estimate: lift,
              ...liftBounds(ratio, a.mean),
              standardError: relativeSe ?? (ratio.upper - ratio.lower) / (2 * c),
              pValue,
              chanceToWin: null,
              risk: null,
            },
            reason: null,
          };
  return finite({
    absoluteEffect,
    relativeEffect: relative.effect,
    differenceType: 'ABSOLUTE',
    pValue,
    chanceToWin: null,
    risk: null,
    cupedTheta: null,
    varianceReduction: null,
    reason: relative.reason,
  });
}

/** CUPED's relative effect (gbstats): the adjusted difference over the unadjusted control mean. */
interface RelativeOverride {
  estimate: number | null;
  difference: Outcome<DifferenceEstimate>;
}

function bayesianDecision(
  a: ArmSummary,
  b: ArmSummary,
  abs: DifferenceEstimate,
  options: DecisionOptions,
  relativeOverride: RelativeOverride | null,
) {
  const { confidenceLevel: level, prior, goal = 'INCREASE' } = options;
  // A normal posterior built on a constant arm is certain about that arm's mean: no honest chance to win.
  if (a.variance === 0 || b.variance === 0) return empty('ZERO_VARIANCE');
  const absolute = bayesianTest(abs, level, prior);
  const posterior = effectPosterior(abs, prior);
  if (absolute.value === null || posterior.value === null) return empty(absolute.reason ?? posterior.reason!);
  const { mean, sd } = posterior.value;
  const [lossOfControl, lossOfTreatment] = expectedLoss(posterior.value);
  const chanceToWin = normalCdf(goal === 'INCREASE' ? mean / sd : -mean / sd);
  const risk: [number, number] =
    goal === 'INCREASE' ? [lossOfControl, lossOfTreatment] : [lossOfTreatment, lossOfControl];
  // The relative effect is GrowthBook's: a normal posterior of the delta-method lift with the prior as given.
  // Omitted, as Fieller's interval would be unbounded, while the control mean is indistinguishable from 0:
  // the lift's normal approximation is meaningless there.
  let relative: { value: EffectResult | null; reason: StatsReason | null };
  if (a.mean === 0) relative = { value: null, reason: 'CONTROL_MEAN_ZERO' };
  else if (a.mean ** 2 <= normalQuantile(1 - (1 - level) / 2) ** 2 * (a.variance / a.n)) {
    relative = { value: null, reason: 'CONTROL_MEAN_UNCERTAIN' };
  } else {
    const rel = relativeOverride?.difference ?? difference(a, b, 'RELATIVE');
    relative = rel.value === null ? rel : bayesianTest(rel.value, level, prior);
  }
  return finite({
    absoluteEffect: { ...absolute.value, chanceToWin, risk },
    relativeEffect: relative.value,
    differenceType: 'ABSOLUTE',
    pValue: null,
    chanceToWin,
    risk,
    cupedTheta: null,
    varianceReduction: null,
    reason: relative.reason,
  });
}

/**
 * Compares one treatment with the control and decides, as analyze() reports it. Pure; returns figures or a
 * reason, never NaN. Assumes valid options (analyze checks them).
 */
export function decide(
  control: SufficientStats,
  treatment: SufficientStats,
  options: DecisionOptions,
): Decision {
  const b = summarize(treatment, options.metricType);
  if (b.value === null) return empty(b.reason);
  const a = summarize(control, options.metricType);
  if (a.value === null) return empty(a.reason);
  if (Math.min(a.value.n, b.value.n) < (options.minimumUnits ?? DEFAULT_MINIMUM_UNITS)) {
    return empty('TOO_FEW_UNITS');
  }
  const abs = difference(a.value, b.value, 'ABSOLUTE');
  if (abs.value === null) return empty(abs.reason);
  // CUPED when both arms carry covariate sums; where the adjustment has nothing to work with (θ = 0) or
  // cannot be computed, the unadjusted comparison stands (as gbstats falls back), reported without θ.
  const adjusted =
    regressionAdjust(control, treatment, options.metricType, abs.value.variance)?.value ?? null;
  if (adjusted) {
    const override: RelativeOverride = {
      estimate: adjusted.relative.value?.estimate ?? null,
      difference: adjusted.relative,
    };
    const decision =
      options.method === 'BAYESIAN'
        ? bayesianDecision(adjusted.control, adjusted.treatment, adjusted.absolute, options, override)
        : testDecision(
            control,
            treatment,
            adjusted.control,
            adjusted.treatment,
            adjusted.absolute,
            options,
            override,
          );
    if (decision.absoluteEffect === null) return decision;
    return { ...decision, cupedTheta: adjusted.theta, varianceReduction: adjusted.varianceReduction };
  }
  return options.method === 'BAYESIAN'
    ? bayesianDecision(a.value, b.value, abs.value, options, null)
    : testDecision(control, treatment, a.value, b.value, abs.value, options, null);
}
