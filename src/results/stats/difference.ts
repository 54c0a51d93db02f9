import { type ArmSummary, type DifferenceType, fail, type Outcome, ok } from './types';

export interface Bounds {
  lower: number;
  upper: number;
}

/** Point estimate of treatment vs control on one scale, with the variance of that estimate. */
export interface DifferenceEstimate {
  differenceType: DifferenceType;
  estimate: number;
  /** Variance of the estimate (not per unit). */
  variance: number;
  standardError: number;
  /** Welch–Satterthwaite degrees of freedom of the underlying arms; gbstats uses it on both scales. */
  df: number;
  /** Control mean, kept so a relative prior can be rescaled to the absolute scale. */
  controlMean: number;
  /** Total units in both arms; the sequential test scales by it. */
  totalUnits: number;
}

export function welchDf(control: ArmSummary, treatment: ArmSummary): number {
  const a = control.variance / control.n;
  const b = treatment.variance / treatment.n;
  return (a + b) ** 2 / (a ** 2 / (control.n - 1) + b ** 2 / (treatment.n - 1));
}

/**
 * Absolute difference of means, or relative lift (meanB − meanA)/|meanA| with its delta-method variance
 * varB/nB/meanA² + varA/nA·meanB²/meanA⁴ (gbstats `frequentist_diff` / `frequentist_variance`).
 */
export function difference(
  control: ArmSummary,
  treatment: ArmSummary,
  differenceType: DifferenceType,
): Outcome<DifferenceEstimate> {
  if (control.variance === 0 && treatment.variance === 0) return fail('ZERO_VARIANCE');
  const meanA = control.mean;
  const meanB = treatment.mean;
  let estimate: number;
  let variance: number;
  if (differenceType === 'ABSOLUTE') {
    estimate = meanB - meanA;
    variance = treatment.variance / treatment.n + control.variance / control.n;
  } else {
    if (meanA === 0) return fail('CONTROL_MEAN_ZERO');
    estimate = (meanB - meanA) / Math.abs(meanA);
    variance =
      treatment.variance / treatment.n / meanA ** 2 +
      (control.variance / control.n) * (meanB ** 2 / meanA ** 4);
  }
  // The delta method collapses to zero when the treatment is constant at 0 (e.g. 0 conversions).
  if (variance === 0) return fail('ZERO_VARIANCE');
  const df = welchDf(control, treatment);
  const standardError = Math.sqrt(variance);
  if (![estimate, variance, standardError, df].every(Number.isFinite)) return fail('NON_FINITE_RESULT');
  return ok({
    differenceType,
    estimate,
    variance,
    standardError,
    df,
    controlMean: meanA,
    totalUnits: control.n + treatment.n,
  });
}

/**
 * Fieller's interval for the ratio of two means, meanB/meanA, whose estimates have variances varA and varB:
 * every θ with (meanB − θ·meanA)² ≤ c²·(varB + θ²·varA). At θ = 1 this is the two-sample test of equal
 * means with critical value c, so the interval excludes 1 exactly when that test rejects. Null when the set
 * is unbounded, i.e. when meanA itself is not distinguishable from 0 (meanA² ≤ c²·varA).
 */
export function fiellerRatio(
  meanA: number,
  varA: number,
  meanB: number,
  varB: number,
  c: number,
): Bounds | null {
  const c2 = c * c;
  const a = meanA * meanA - c2 * varA;
  if (!(a > 0)) return null;
  const root = Math.sqrt(c2 * (varA * meanB * meanB + varB * a));
  return { lower: (meanA * meanB - root) / a, upper: (meanA * meanB + root) / a };
}
