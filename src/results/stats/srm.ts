import { chiSquareSf } from './distributions';
import type { StatsReason } from './types';

/** Conventional SRM threshold: strict, because SRM checks run continuously on every experiment. */
export const SRM_P_VALUE_THRESHOLD = 0.001;

export interface SrmResult {
  chiSquare: number | null;
  pValue: number | null;
  mismatch: boolean;
  observed: number[];
  /** Units expected from the normalised weights; null when the weights are unusable. */
  expected: number[] | null;
  reason: StatsReason | null;
}

/** Pearson chi-square goodness of fit of observed units to the configured weights, df = k − 1. */
export function sampleRatioMismatch(
  observed: readonly number[],
  weights: readonly number[],
  threshold = SRM_P_VALUE_THRESHOLD,
): SrmResult {
  const base = { chiSquare: null, pValue: null, mismatch: false, observed: [...observed], expected: null };
  if (observed.length !== weights.length || observed.some((o) => !Number.isFinite(o) || o < 0)) {
    // Echoing invalid counts back would put NaN or negative units into the result.
    return { ...base, observed: [], reason: 'INVALID_INPUT' };
  }
  const weightSum = weights.reduce((acc, w) => acc + w, 0);
  if (weights.some((w) => !Number.isFinite(w) || w < 0) || !(weightSum > 0)) {
    return { ...base, reason: 'INVALID_WEIGHTS' };
  }
  const total = observed.reduce((acc, o) => acc + o, 0);
  const expected = weights.map((w) => (total * w) / weightSum);
  if (observed.length < 2) return { ...base, expected, reason: 'SINGLE_VARIANT' };
  if (total === 0) return { ...base, expected, reason: 'NO_UNITS' };
  if (observed.some((o, i) => weights[i] === 0 && o > 0)) {
    return { ...base, expected, pValue: 0, mismatch: true, reason: 'ZERO_WEIGHT_WITH_UNITS' };
  }
  // Arms with weight 0 and no units carry no information and would divide by zero.
  const active = observed.map((o, i) => ({ o, e: expected[i] })).filter(({ e }) => e > 0);
  if (active.length < 2) return { ...base, expected, reason: 'SINGLE_VARIANT' };
  const chiSquare = active.reduce((acc, { o, e }) => acc + (o - e) ** 2 / e, 0);
  const pValue = chiSquareSf(chiSquare, active.length - 1);
  return { chiSquare, pValue, mismatch: pValue < threshold, observed: [...observed], expected, reason: null };
}
