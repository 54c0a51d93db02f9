import { type ArmSummary, fail, type MetricType, type Outcome, ok, type SufficientStats } from './types';

// Below this fraction of the raw sum of squares, the centred sum of squares is floating-point cancellation
// noise (e.g. identical values), not real spread.
const CANCELLATION_TOLERANCE = 1e-12;

export function isValidStats(stats: SufficientStats, metricType: MetricType): boolean {
  const { n, sum, sumSquares } = stats;
  if (!Number.isFinite(n) || !Number.isInteger(n) || n < 0 || !Number.isFinite(sum)) return false;
  if (metricType === 'BINOMIAL') return sum >= 0 && sum <= n;
  if (metricType === 'RATIO') {
    const r = stats.ratio;
    if (!r || ![r.sumDenominator, r.sumDenominatorSquares, r.sumProducts].every(Number.isFinite))
      return false;
    if (r.sumDenominatorSquares < 0) return false;
  }
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
  if (metricType === 'RATIO') return summarizeRatio(stats);
  const mean = sum / n;
  if (metricType === 'BINOMIAL') return ok({ n, mean, variance: mean * (1 - mean) });
  const centred = sumSquares - (sum * sum) / n;
  // A clearly negative centred sum means the sums are inconsistent (sumSquares < sum²/n is impossible).
  if (centred < -CANCELLATION_TOLERANCE * Math.max(sumSquares, 1)) return fail('INVALID_INPUT');
  const variance = centred <= CANCELLATION_TOLERANCE * sumSquares ? 0 : centred / (n - 1);
  if (!Number.isFinite(mean) || !Number.isFinite(variance)) return fail('NON_FINITE_RESULT');
  return ok({ n, mean, variance });
}

/** A centred sum of squares or products over n − 1, 0 when it is cancellation noise. */
function centredOver(raw: number, centre: number, scale: number, n: number): number {
  const centred = raw - centre;
  return Math.abs(centred) <= CANCELLATION_TOLERANCE * Math.max(scale, 1e-300) ? 0 : centred / (n - 1);
}

/**
 * A RATIO arm as the mean of a per-unit quantity: mean r = Σx/Σy and the per-unit variance of r by the delta
 * method, (s²x − 2r·sxy + r²·s²y)/ȳ² with n − 1 sample (co)variances, so that variance/n is Var(r̂)
 * (Deng, Knoblich & Lu, "Applying the Delta Method in Metric Analytics", KDD 2018; gbstats RatioStatistic).
 * The comparison then runs as for MEAN metrics on these arm summaries.
 */
function summarizeRatio(stats: SufficientStats): Outcome<ArmSummary> {
  const { n, sum, sumSquares } = stats;
  const { sumDenominator, sumDenominatorSquares, sumProducts } = stats.ratio!;
  if (sumDenominator === 0) return fail('DENOMINATOR_ZERO');
  const mx = sum / n;
  const my = sumDenominator / n;
  const varX = centredOver(sumSquares, sum * mx, sumSquares, n);
  const varY = centredOver(sumDenominatorSquares, sumDenominator * my, sumDenominatorSquares, n);
  const cov = centredOver(sumProducts, sum * my, Math.sqrt(sumSquares * sumDenominatorSquares), n);
  if (varX < 0 || varY < 0) return fail('INVALID_INPUT');
  const mean = sum / sumDenominator;
  // A variance is never negative; below 0 it is rounding (x proportional to y, e.g. a constant ratio).
  const variance = Math.max(0, (varX - 2 * mean * cov + mean * mean * varY) / (my * my));
  if (!Number.isFinite(mean) || !Number.isFinite(variance)) return fail('NON_FINITE_RESULT');
  return ok({ n, mean, variance: variance <= CANCELLATION_TOLERANCE * mean * mean ? 0 : variance });
}

/** Mean and standard deviation for display; available from one unit (standard deviation needs two). */
export function describeArm(
  stats: SufficientStats,
  metricType: MetricType,
): { mean: number | null; standardDeviation: number | null } {
  if (!isValidStats(stats, metricType) || stats.n === 0) return { mean: null, standardDeviation: null };
  const summary = summarize(stats, metricType);
  const mean = metricType === 'RATIO' ? stats.sum / stats.ratio!.sumDenominator : stats.sum / stats.n;
  return {
    mean: Number.isFinite(mean) ? mean : null,
    standardDeviation: summary.value ? Math.sqrt(summary.value.variance) : null,
  };
}
