import type { DifferenceEstimate } from './difference';
import { tQuantile, tTwoSidedPValue } from './distributions';
import type { EffectResult } from './types';

/**
 * Welch t-test on a difference estimate (gbstats `TwoSidedTTest`). Proportions use the same t with
 * Welch–Satterthwaite df: that, not the normal z, reproduces GrowthBook's published binomial vectors.
 */
export function welchTTest(diff: DifferenceEstimate, confidenceLevel = 0.95): EffectResult {
  const alpha = 1 - confidenceLevel;
  const halfWidth = tQuantile(1 - alpha / 2, diff.df) * diff.standardError;
  return {
    estimate: diff.estimate,
    lower: diff.estimate - halfWidth,
    upper: diff.estimate + halfWidth,
    standardError: diff.standardError,
    pValue: tTwoSidedPValue(diff.estimate / diff.standardError, diff.df),
    chanceToWin: null,
    risk: null,
  };
}
