import type { DifferenceEstimate } from './difference';
import type { EffectResult } from './types';

export const DEFAULT_SEQUENTIAL_TUNING = 5000;

/**
 * Mixture parameter ρ of the asymptotic confidence sequence, chosen to make the sequence tightest
 * around N* total units (Waudby-Smith et al. 2023, eq. 161; gbstats `SequentialTwoSidedTTest.rho`).
 */
export function sequentialRho(alpha: number, tuning: number): number {
  return Math.sqrt((-2 * Math.log(alpha) + Math.log(-2 * Math.log(alpha) + 1)) / tuning);
}

/**
 * Critical value of the always-valid interval after `totalUnits` units: it rejects when |estimate| exceeds
 * this many standard errors. `alpha` is the level rejected at (after a multiplicity split, if any) and ρ
 * stays tuned at the configured level, exactly as comparing the always-valid p-value with that alpha does.
 */
export function sequentialMultiplier(totalUnits: number, alpha: number, rho: number): number {
  const n = totalUnits;
  const nRho2 = n * rho ** 2;
  return (
    Math.sqrt(n) * Math.sqrt((2 * (nRho2 + 1) * Math.log(Math.sqrt(nRho2 + 1) / alpha)) / (n * rho) ** 2)
  );
}

/** Half-width of the always-valid interval after `totalUnits` units, for an estimate with this variance. */
export function sequentialHalfWidth(
  variance: number,
  totalUnits: number,
  alpha: number,
  rho: number,
): number {
  return Math.sqrt(variance) * sequentialMultiplier(totalUnits, alpha, rho);
}

/**
 * Always-valid p-value: the reciprocal of the mixture e-value (eq. 155), capped at 1. With ρ fixed by the
 * configured alpha this is exactly the smallest alpha at which the interval above excludes 0, so the
 * p-value and the interval always agree; the closed form is what gbstats computes.
 */
export function sequentialPValue(diff: DifferenceEstimate, rho: number): number {
  return sequentialPValueOfStatistic(diff.estimate / diff.standardError, diff.totalUnits, rho);
}

/** The same always-valid p-value for a standardised statistic (estimate / standard error). */
export function sequentialPValueOfStatistic(statistic: number, totalUnits: number, rho: number): number {
  const n = totalUnits;
  const st2 = statistic ** 2 * n;
  const tr2p1 = n * rho ** 2 + 1;
  const logEValue = (rho ** 2 * st2) / (2 * tr2p1) - 0.5 * Math.log(tr2p1);
  return Math.min(1, Math.exp(-logEValue));
}

/** gbstats `SequentialTwoSidedTTest`: asymptotic confidence sequence and always-valid p-value. */
export function sequentialTest(
  diff: DifferenceEstimate,
  confidenceLevel = 0.95,
  tuning = DEFAULT_SEQUENTIAL_TUNING,
): EffectResult {
  const alpha = 1 - confidenceLevel;
  const rho = sequentialRho(alpha, tuning);
  const halfWidth = sequentialHalfWidth(diff.variance, diff.totalUnits, alpha, rho);
  return {
    estimate: diff.estimate,
    lower: diff.estimate - halfWidth,
    upper: diff.estimate + halfWidth,
    standardError: diff.standardError,
    pValue: sequentialPValue(diff, rho),
    chanceToWin: null,
    risk: null,
  };
}
