import { chiSquareSf } from './distributions';
import type { StatsReason } from './types';

/** Conventional SRM threshold: strict, because SRM checks run continuously on every experiment. */
export const SRM_P_VALUE_THRESHOLD = 0.001;

/** The units of one phase (a span with fixed weights) per variant, and the weights in force then. */
export interface SrmPhase {
  /** The phase's number (1, 2, …), echoed in the result. */
  index: number;
  weights: readonly number[];
  observed: readonly number[];
}

export interface SrmPhaseResult {
  index: number;
  observed: number[];
  /** This phase's units split by its normalised weights; null when the weights are unusable. */
  expected: number[] | null;
}

export interface SrmResult {
  chiSquare: number | null;
  pValue: number | null;
  mismatch: boolean;
  /** Units per variant, over all phases. */
  observed: number[];
  /** Σ over phases of the phase's units × its normalised weights; null when the weights are unusable. */
  expected: number[] | null;
  /** Per phase; one entry when the weights never changed. */
  phases: SrmPhaseResult[];
  reason: StatsReason | null;
}

/** Pearson chi-square goodness of fit of observed units to the configured weights, df = k − 1. */
export function sampleRatioMismatch(
  observed: readonly number[],
  weights: readonly number[],
  threshold = SRM_P_VALUE_THRESHOLD,
): SrmResult {
  return sampleRatioMismatchByPhase(observed.length, [{ index: 1, weights, observed }], threshold);
}

/**
 * Sample-ratio check when the weights changed during the run: each phase's units are expected to split by
 * that phase's weights. The statistic is Pearson's chi-square summed over phases (the units of each phase
 * fixed), df = Σ over phases of (variants expected to receive units − 1): exact for independent phases,
 * where one chi-square on the pooled totals against Σ expected would be conservative (its variance ignores
 * that each phase's total is fixed: 4.3% instead of 5% for 1:1 then 1:3 in equal halves). With one phase it is
 * the usual test. Units in a variant whose weight was 0 in their phase are a mismatch whatever the rest says.
 */
export function sampleRatioMismatchByPhase(
  variants: number,
  phases: readonly SrmPhase[],
  threshold = SRM_P_VALUE_THRESHOLD,
): SrmResult {
  const invalidCounts = phases.some(
    (p) => p.observed.length !== variants || p.observed.some((o) => !Number.isFinite(o) || o < 0),
  );
  if (invalidCounts || phases.some((p) => p.weights.length !== variants)) {
    // Echoing invalid counts back would put NaN or negative units into the result.
    return result({ observed: [], expected: null, phases: [], reason: 'INVALID_INPUT' });
  }
  const observed = Array.from({ length: variants }, (_, i) => sum(phases.map((p) => p.observed[i])));
  const weightsUsable = phases.every((p) => p.weights.every((w) => Number.isFinite(w) && w >= 0));
  // All-zero weights are unusable only when no phase has any: a phase may stop every arm (paused).
  if (!weightsUsable || !phases.some((p) => sum(p.weights) > 0)) {
    const unusable = phases.map((p) => ({ index: p.index, observed: [...p.observed], expected: null }));
    return result({ observed, expected: null, phases: unusable, reason: 'INVALID_WEIGHTS' });
  }
  const perPhase = phases.map((p) => {
    const units = sum(p.observed);
    const weightSum = sum(p.weights);
    const expected = p.weights.map((w) => (weightSum > 0 ? (units * w) / weightSum : 0));
    return { index: p.index, observed: [...p.observed], expected };
  });
  const expected = Array.from({ length: variants }, (_, i) => sum(perPhase.map((p) => p.expected[i])));
  const base = { observed, expected, phases: perPhase };
  if (variants < 2) return result({ ...base, reason: 'SINGLE_VARIANT' });
  if (sum(observed) === 0) return result({ ...base, reason: 'NO_UNITS' });
  if (perPhase.some((p) => p.observed.some((o, i) => o > 0 && p.expected[i] === 0))) {
    return { ...base, chiSquare: null, pValue: 0, mismatch: true, reason: 'ZERO_WEIGHT_WITH_UNITS' };
  }
  let chiSquare = 0;
  let df = 0;
  for (const p of perPhase) {
    // Arms with weight 0 (and, as checked above, no units) carry no information and would divide by zero.
    const active = p.expected.flatMap((e, i) => (e > 0 ? [{ o: p.observed[i], e }] : []));
    if (active.length < 2) continue;
    chiSquare += sum(active.map(({ o, e }) => (o - e) ** 2 / e));
    df += active.length - 1;
  }
  if (df === 0) return result({ ...base, reason: 'SINGLE_VARIANT' });
  const pValue = chiSquareSf(chiSquare, df);
  return { ...base, chiSquare, pValue, mismatch: pValue < threshold, reason: null };
}

const sum = (xs: readonly number[]) => xs.reduce((acc, x) => acc + x, 0);

function result(r: Omit<SrmResult, 'chiSquare' | 'pValue' | 'mismatch'>): SrmResult {
  return { chiSquare: null, pValue: null, mismatch: false, ...r };
}
