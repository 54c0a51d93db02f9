// Single source of truth for the engine's enums: the GraphQL layer derives its enum types from these tuples.
import type { CovariateSums } from './cuped';

/**
 * BINOMIAL: converted or not per unit; MEAN: the mean per-unit total; RATIO: Σ numerator / Σ denominator over
 * units (delta method; its statistics carry `ratio`).
 */
export const METRIC_TYPES = ['BINOMIAL', 'MEAN', 'RATIO'] as const;
export type MetricType = (typeof METRIC_TYPES)[number];

export const STATS_METHODS = ['FREQUENTIST', 'BAYESIAN', 'SEQUENTIAL'] as const;
export type StatsMethod = (typeof STATS_METHODS)[number];

export const CORRECTIONS = ['NONE', 'HOLM', 'BENJAMINI_HOCHBERG'] as const;
export type Correction = (typeof CORRECTIONS)[number];

export const DIFFERENCE_TYPES = ['RELATIVE', 'ABSOLUTE'] as const;
export type DifferenceType = (typeof DIFFERENCE_TYPES)[number];

/** Which way is better for a metric: decides what "win" means for chanceToWin, risk and Bayesian significance. */
export const METRIC_GOALS = ['INCREASE', 'DECREASE'] as const;
export type MetricGoal = (typeof METRIC_GOALS)[number];

/**
 * Why a number is missing. Results never carry NaN or Infinity: a value that cannot be computed is null and
 * one of these explains it.
 */
export const STATS_REASONS = [
  /** A variant (or the control it is compared with) has no units. */
  'NO_UNITS',
  /**
   * An arm has fewer units than the analysis needs: two for a variance, and `minimumUnits` (the API's
   * LIMITS.minUnitsPerVariant) before any effect or decision is shown.
   */
  'TOO_FEW_UNITS',
  /**
   * No spread to test against: every unit in both arms has the same value, or (MEAN metrics and BAYESIAN
   * analyses) in one arm, whose uncertainty a normal approximation would then ignore. BINOMIAL comparisons
   * with one constant arm use exact methods instead.
   */
  'ZERO_VARIANCE',
  /** The relative effect divides by the control mean, which is zero. */
  'CONTROL_MEAN_ZERO',
  /** RATIO metrics: an arm's denominator sums to 0, so its ratio is undefined. */
  'DENOMINATOR_ZERO',
  /**
   * The control mean is not distinguishable from 0 at the confidence level, so the relative effect's interval
   * (Fieller's) is unbounded: the relative effect is omitted, the absolute one is given.
   */
  'CONTROL_MEAN_UNCERTAIN',
  /** Only one variant: there is nothing to compare and SRM does not apply. */
  'SINGLE_VARIANT',
  /** No variant is flagged as the control. */
  'NO_CONTROL',
  /** More than one variant is flagged as the control. */
  'MULTIPLE_CONTROLS',
  /** Impossible statistics (negative, non-finite, fractional units, conversions > units) or options. */
  'INVALID_INPUT',
  /** Weights are negative, non-finite or sum to zero. */
  'INVALID_WEIGHTS',
  /** A variant with weight 0 received units, so Pearson's statistic is unbounded; always a mismatch. */
  'ZERO_WEIGHT_WITH_UNITS',
  /** Inputs were valid but too extreme for double precision. */
  'NON_FINITE_RESULT',
  /**
   * Units were counted but no event of the metric was recorded in the experiment (a misspelt name, or
   * none yet). Set by the results service, not the engine: the engine would read zeros as real values.
   */
  'UNKNOWN_METRIC',
  /** A planned number of units does not fit the API's integers (the effect is too small to plan for). */
  'TOO_MANY_UNITS',
] as const;
export type StatsReason = (typeof STATS_REASONS)[number];

/** Either a value or the reason there is none. */
export type Outcome<T> = { value: T; reason: null } | { value: null; reason: StatsReason };

export const ok = <T>(value: T): Outcome<T> => ({ value, reason: null });
export const fail = <T>(reason: StatsReason): Outcome<T> => ({ value: null, reason });

/**
 * Sufficient statistics over units. For binomial metrics `sum` is the number of converted units and
 * `sumSquares` is ignored (it equals `sum` for 0/1 values).
 */
export interface SufficientStats {
  n: number;
  sum: number;
  sumSquares: number;
  /** RATIO metrics: the denominator's sums; `sum`/`sumSquares` are then the numerator's. */
  ratio?: RatioSums | null;
  /**
   * CUPED: the pre-period covariate's sums over the same n units (0 for a unit without one). Given for both
   * arms, comparisons are regression-adjusted (src/results/stats/cuped.ts).
   */
  covariate?: CovariateSums | null;
}

/** Over units: Σy, Σy² of the per-unit denominator totals y and Σx·y with the numerator totals x. */
export interface RatioSums {
  sumDenominator: number;
  sumDenominatorSquares: number;
  sumProducts: number;
}

/** Mean and per-unit variance of one arm (n − 1 sample variance for means, p(1 − p) for proportions). */
export interface ArmSummary {
  n: number;
  mean: number;
  variance: number;
}

export interface Interval {
  estimate: number;
  lower: number;
  upper: number;
}

/** Normal prior on the relative effect, as in GrowthBook's gbstats. */
export interface GaussianPrior {
  mean: number;
  variance: number;
}

/** An effect on one scale with the inference the chosen method provides (others are null). */
export interface EffectResult extends Interval {
  /** Standard error of the estimate; for Bayesian results, the posterior standard deviation. */
  standardError: number;
  /** Frequentist and sequential methods only. */
  pValue: number | null;
  /** Bayesian only: posterior probability that the effect is above 0 (or better for the goal, in analyze). */
  chanceToWin: number | null;
  /** Bayesian only: expected loss of choosing [control, treatment], on the effect's scale. */
  risk: [number, number] | null;
}
