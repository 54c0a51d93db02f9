/**
 * CUPED (Deng, Xu, Kohavi & Walker, "Improving the Sensitivity of Online Controlled Experiments by Utilizing
 * Pre-Experiment Data", WSDM 2013), exactly as GrowthBook's gbstats computes it (RegressionAdjustedStatistic,
 * compute_theta, frequentist_variance_relative_cuped): each unit's metric x is adjusted by its pre-period
 * covariate c, x − θ·c, with one θ for both arms from their pooled covariance, θ = Cov(x, c)/Var(c). The
 * absolute effect is (x̄B − θ·c̄B) − (x̄A − θ·c̄A) with per-arm variances s²x + θ²s²c − 2θ·sxc; the relative one
 * divides by the control's unadjusted mean. Randomisation makes E[c̄B − c̄A] = 0, so the estimate stays unbiased
 * while the variance shrinks by the share of it c explains (ρ² for one covariate).
 *
 * Pure: sufficient statistics in, numbers or a reason out. tests/fixtures/cuped-gbstats.json holds the vectors.
 */
import { type DifferenceEstimate, welchDf } from './difference';
import { tTwoSidedPValue } from './distributions';
import { type ArmSummary, fail, type MetricType, type Outcome, ok, type SufficientStats } from './types';

/** Over an arm's units (c = 0 for a unit without the covariate): Σc, Σc² and Σx·c with the metric x. */
export interface CovariateSums {
  sum: number;
  sumSquares: number;
  sumProducts: number;
}

/** A gbstats statistic of one variable over n units: a sample mean (n − 1 variance) or a proportion. */
interface Moments {
  n: number;
  sum: number;
  sumSquares: number;
  proportion: boolean;
}

const mean = (m: Moments) => (m.n === 0 ? 0 : m.sum / m.n);

function variance(m: Moments): number {
  if (m.proportion) {
    const p = mean(m);
    return p * (1 - p);
  }
  return m.n <= 1 ? 0 : (m.sumSquares - (m.sum * m.sum) / m.n) / (m.n - 1);
}

/** gbstats compute_covariance: population form for two proportions, else the n − 1 sample form. */
function covariance(n: number, x: Moments, c: Moments, sumProducts: number): number {
  if (n <= 1) return 0;
  if (x.proportion && c.proportion) return sumProducts / n - (x.sum * c.sum) / n ** 2;
  return (sumProducts - (x.sum * c.sum) / n) / (n - 1);
}

interface Arm {
  n: number;
  post: Moments;
  pre: Moments;
  sumProducts: number;
}

/**
 * The arm as gbstats sees it. A BINOMIAL metric's x is a proportion; its covariate is one too when it is 0/1
 * (Σc² = Σc ≤ n: a pre-period conversion), as gbstats pairs a proportion with a proportion; otherwise a mean.
 */
function arm(s: SufficientStats, metricType: MetricType, covariate: CovariateSums): Arm {
  const binomial = metricType === 'BINOMIAL';
  const preIsProportion =
    binomial && covariate.sumSquares === covariate.sum && covariate.sum >= 0 && covariate.sum <= s.n;
  return {
    n: s.n,
    post: { n: s.n, sum: s.sum, sumSquares: binomial ? s.sum : s.sumSquares, proportion: binomial },
    pre: { n: s.n, sum: covariate.sum, sumSquares: covariate.sumSquares, proportion: preIsProportion },
    sumProducts: covariate.sumProducts,
  };
}

/** gbstats compute_theta: the regression coefficient of x on c over both arms pooled (0 without spread). */
function pooledTheta(a: Arm, b: Arm): number {
  const n = a.n + b.n;
  const join = (x: Moments, y: Moments): Moments => ({
    n,
    sum: x.sum + y.sum,
    sumSquares: x.sumSquares + y.sumSquares,
    proportion: x.proportion && y.proportion,
  });
  const post = join(a.post, b.post);
  const pre = join(a.pre, b.pre);
  const preVariance = variance(pre);
  if (preVariance === 0 || variance(post) === 0) return 0;
  return covariance(n, post, pre, a.sumProducts + b.sumProducts) / preVariance;
}

/** s²x + θ²s²c − 2θ·sxc: the per-unit variance of x − θc. */
function adjustedVariance(s: Arm, theta: number): number {
  if (s.n <= 1) return 0;
  return (
    variance(s.post) +
    theta ** 2 * variance(s.pre) -
    2 * theta * covariance(s.n, s.post, s.pre, s.sumProducts)
  );
}

export interface RegressionAdjustment {
  theta: number;
  /**
   * The arms adjusted: mean x̄ − θ·(c̄ − c̄ pooled), so it stays on the metric's scale and the difference of
   * means is gbstats' adjusted difference; variance s²x + θ²s²c − 2θ·sxc.
   */
  control: ArmSummary;
  treatment: ArmSummary;
  /** The adjusted absolute difference (gbstats' point estimate and variance, Welch df on adjusted variances). */
  absolute: DifferenceEstimate;
  /** gbstats' relative effect: the adjusted difference over |unadjusted control mean|, its delta-method variance. */
  relative: Outcome<DifferenceEstimate>;
  /** 1 − adjusted / unadjusted variance of the absolute difference: the share CUPED took off (≤ 1). */
  varianceReduction: number;
}

/**
 * Regression-adjusts one treatment against the control. Null when there is nothing to adjust by: an arm
 * without covariate sums, or θ = 0 (no spread in x or c pooled), where gbstats falls back to the unadjusted
 * analysis too. A reason when the adjusted numbers cannot be computed.
 */
export function regressionAdjust(
  control: SufficientStats,
  treatment: SufficientStats,
  metricType: MetricType,
  unadjustedVariance: number,
): Outcome<RegressionAdjustment> | null {
  if (!control.covariate || !treatment.covariate || metricType === 'RATIO') return null;
  const sums = [control.covariate, treatment.covariate].flatMap((c) => [c.sum, c.sumSquares, c.sumProducts]);
  if (!sums.every(Number.isFinite)) return fail('INVALID_INPUT');
  const a = arm(control, metricType, control.covariate);
  const b = arm(treatment, metricType, treatment.covariate);
  if (a.n < 2 || b.n < 2) return null;
  const theta = pooledTheta(a, b);
  if (theta === 0 || !Number.isFinite(theta)) return null;
  const varA = adjustedVariance(a, theta);
  const varB = adjustedVariance(b, theta);
  // Rounding can leave a tiny negative variance when x is (almost) a linear function of c.
  if (!(varA > 0) || !(varB > 0)) return fail('ZERO_VARIANCE');
  const preMean = (a.pre.sum + b.pre.sum) / (a.n + b.n);
  const summary = (s: Arm, v: number): ArmSummary => ({
    n: s.n,
    mean: mean(s.post) - theta * (mean(s.pre) - preMean),
    variance: v,
  });
  const controlArm = summary(a, varA);
  const treatmentArm = summary(b, varB);
  const estimate = mean(b.post) - theta * mean(b.pre) - (mean(a.post) - theta * mean(a.pre));
  const absVariance = varB / b.n + varA / a.n;
  const df = welchDf(controlArm, treatmentArm);
  const totalUnits = a.n + b.n;
  const controlMean = mean(a.post);
  const absolute: DifferenceEstimate = {
    differenceType: 'ABSOLUTE',
    estimate,
    variance: absVariance,
    standardError: Math.sqrt(absVariance),
    df,
    controlMean,
    totalUnits,
  };
  if (![estimate, absVariance, df].every(Number.isFinite)) return fail('NON_FINITE_RESULT');
  return ok({
    theta,
    control: controlArm,
    treatment: treatmentArm,
    absolute,
    relative: relativeEffect(a, b, theta, estimate, df),
    varianceReduction: unadjustedVariance > 0 ? 1 - absVariance / unadjustedVariance : 0,
  });
}

/** gbstats frequentist_variance_relative_cuped: the lift over the unadjusted control mean. */
function relativeEffect(
  a: Arm,
  b: Arm,
  theta: number,
  absolute: number,
  df: number,
): Outcome<DifferenceEstimate> {
  const meanA = mean(a.post);
  if (meanA === 0) return fail('CONTROL_MEAN_ZERO');
  const vTreatment = adjustedVariance(b, theta) / (b.n * meanA ** 2);
  const k = -mean(b.post);
  const covA = covariance(a.n, a.post, a.pre, a.sumProducts);
  const vControl =
    ((variance(a.post) * k ** 2) / meanA ** 2 +
      (2 * theta * covA * k) / meanA +
      theta ** 2 * variance(a.pre)) /
    (a.n * meanA ** 2);
  const variance_ = vTreatment + vControl;
  if (!(variance_ > 0)) return fail('ZERO_VARIANCE');
  const estimate = absolute / Math.abs(meanA);
  if (!Number.isFinite(estimate) || !Number.isFinite(variance_)) return fail('NON_FINITE_RESULT');
  return ok({
    differenceType: 'RELATIVE',
    estimate,
    variance: variance_,
    standardError: Math.sqrt(variance_),
    df,
    controlMean: meanA,
    totalUnits: a.n + b.n,
  });
}

/**
 * A covariate-balance p-value below this flags a pre-period imbalance between arms: strict, because with
 * many metrics and arms a 5% threshold would fire on chance imbalances that CUPED itself corrects.
 */
export const COVARIATE_IMBALANCE_P_VALUE = 0.001;

/** One arm's covariate against another's: Welch's t-test of equal pre-period means (two-sided p-value). */
export interface CovariateBalance {
  /** Difference of covariate means, treatment − control. */
  difference: number;
  pValue: number;
}

/**
 * Whether randomisation balanced the covariate: the arms' pre-period means compared by Welch's t-test. Before
 * the experiment the arms are exchangeable, so a small p-value means broken assignment or covariates recorded
 * after exposure (they then carry the treatment's effect, and CUPED would remove part of it).
 */
export function covariateBalance(
  control: { n: number; covariate: CovariateSums },
  treatment: { n: number; covariate: CovariateSums },
): Outcome<CovariateBalance> {
  const moments = (n: number, c: CovariateSums): ArmSummary | null => {
    if (n < 2) return null;
    const m = c.sum / n;
    return { n, mean: m, variance: Math.max(0, (c.sumSquares - c.sum * m) / (n - 1)) };
  };
  const a = moments(control.n, control.covariate);
  const b = moments(treatment.n, treatment.covariate);
  if (!a || !b) return fail('TOO_FEW_UNITS');
  const se2 = a.variance / a.n + b.variance / b.n;
  const difference = b.mean - a.mean;
  if (!(se2 > 0)) return fail('ZERO_VARIANCE');
  const pValue = tTwoSidedPValue(difference / Math.sqrt(se2), welchDf(a, b));
  return Number.isFinite(pValue) ? ok({ difference, pValue }) : fail('NON_FINITE_RESULT');
}
