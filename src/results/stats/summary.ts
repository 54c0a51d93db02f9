import { type ArmSummary, fail, type MetricType, type Outcome, ok, type SufficientStats } from './types';

// Below this fraction of the raw sum of squares, the centred sum of squares is floating-point cancellation
// noise (e.g. identical values), not real spread.
const CANCELLATION_TOLERANCE = 1e-12;

export function isValidStats(stats: SufficientStats, metricType: MetricType): boolean {
  const { n, sum, sumSquares } = stats;
  if (!Number.isFinite(n) || !Number.isInteger(n) || n < 0 || !Number.isFinite(sum)) return false;
  if (metricType === 'BINOMIAL') return sum >= 0 && sum <= n;
  return Number.isFinite(sumSquares) && sumSquares >= 0;
}

/**
 * Mean and per-unit variance of one arm. Means use the n − 1 sample variance; proportions use p(1 − p),
 * as gbstats does, so the binomial reference vectors match.
 */
export function summarize(stats: SufficientStats, metricType: MetricType): Outcome<ArmSummary> {
  if (!isValidStats(stats, metricType)) return fail('INVALID_INPUT');
  const { n, sum, sumSquares } = stats;
  if (n === 0) return fail('NO_UNITS');
  if (n < 2) return fail('TOO_FEW_UNITS');
  const mean = sum / n;
  if (metricType === 'BINOMIAL') return ok({ n, mean, variance: mean * (1 - mean) });
  const centred = sumSquares - (sum * sum) / n;
  // A clearly negative centred sum means the sums are inconsistent (sumSquares < sum²/n is impossible).
  if (centred < -CANCELLATION_TOLERANCE * Math.max(sumSquares, 1)) return fail('INVALID_INPUT');
  const variance = centred <= CANCELLATION_TOLERANCE * sumSquares ? 0 : centred / (n - 1);
  if (!Number.isFinite(mean) || !Number.isFinite(variance)) return fail('NON_FINITE_RESULT');
  return ok({ n, mean, variance });
}

/** Mean and standard deviation for display; available from one unit (standard deviation needs two). */
export function describeArm(
  stats: SufficientStats,
  metricType: MetricType,
): { mean: number | null; standardDeviation: number | null } {
  if (!isValidStats(stats, metricType) || stats.n === 0) return { mean: null, standardDeviation: null };
  const summary = summarize(stats, metricType);
  const mean = stats.sum / stats.n;
  return {
    mean: Number.isFinite(mean) ? mean : null,
    standardDeviation: summary.value ? Math.sqrt(summary.value.variance) : null,
  };
}
