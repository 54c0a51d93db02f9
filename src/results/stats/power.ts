import { normalCdf, normalQuantile } from './distributions';
import { fail, type MetricType, type Outcome, ok } from './types';

/**
 * Fixed-horizon, two-sided power analysis under the normal approximation, for a relative effect
 * (mde = 0.05 means +5% on the baseline mean). With δ = mde·|mean|, arm variances σ²_A, σ²_B and
 * n_B = r·n_A units:
 *
 *   units per control arm  n_A = (z_{1−α/2} + z_{power})² · (σ²_A + σ²_B / r) / δ²
 *   power                  Φ(δ/se − z_{1−α/2}) + Φ(−δ/se − z_{1−α/2}),   se² = σ²_A/n_A + σ²_B/n_B
 *
 * For means σ²_B = σ²_A (the effect shifts the mean only); for proportions σ²_A = p(1 − p) and
 * σ²_B = p_B(1 − p_B) with p_B = p(1 + mde). The sample-size and MDE formulas drop the far rejection
 * tail, Φ(−2·z_{1−α/2} − z_{power}) (8e-7 at α = 0.05, power 0.8), so the power at the computed n is at
 * least the target; statsmodels' numerical solve keeps it and lands within 1e-4 relative of ours.
 */

export interface Baseline {
  metricType: MetricType;
  /** Baseline mean, or conversion rate for binomial metrics. */
  mean: number;
  /** Per-unit variance of a mean metric; ignored for binomial metrics, where it is p(1 − p). */
  variance?: number;
}

export interface PowerOptions {
  /** Two-sided significance level; default 0.05. */
  alpha?: number;
  /** Treatment units per control unit; default 1 (equal allocation). */
  allocationRatio?: number;
}

export interface SampleSizeResult {
  /** Units needed in the control arm, rounded up. */
  unitsPerVariant: number;
  /** Units needed in each treatment arm, rounded up (equal to unitsPerVariant with equal allocation). */
  treatmentUnitsPerVariant: number;
  /** Units across all variants. */
  totalUnits: number;
  /** Unrounded n_A from the formula. */
  exactUnitsPerVariant: number;
  /** Alpha actually used (after the optional Bonferroni split). */
  alpha: number;
}

const DEFAULT_ALPHA = 0.05;
const DEFAULT_POWER = 0.8;

const isProbability = (p: number) => Number.isFinite(p) && p > 0 && p < 1;

interface Arms {
  baselineMean: number;
  varianceA: number;
  varianceB: number;
}

function arms(baseline: Baseline, mde: number): Outcome<Arms> {
  const { metricType, mean } = baseline;
  if (!Number.isFinite(mean) || !Number.isFinite(mde)) return fail('INVALID_INPUT');
  if (mean === 0) return fail('CONTROL_MEAN_ZERO');
  if (metricType === 'BINOMIAL') {
    const rateB = mean * (1 + mde);
    if (mean < 0 || mean > 1 || rateB < 0 || rateB > 1) return fail('INVALID_INPUT');
    const varianceA = mean * (1 - mean);
    const varianceB = rateB * (1 - rateB);
    if (varianceA === 0 && varianceB === 0) return fail('ZERO_VARIANCE');
    return ok({ baselineMean: mean, varianceA, varianceB });
  }
  const variance = baseline.variance;
  if (variance === undefined || !Number.isFinite(variance) || variance < 0) return fail('INVALID_INPUT');
  if (variance === 0) return fail('ZERO_VARIANCE');
  return ok({ baselineMean: mean, varianceA: variance, varianceB: variance });
}

function validOptions(alpha: number, ratio: number): boolean {
  return isProbability(alpha) && Number.isFinite(ratio) && ratio > 0;
}

/** Power of a two-sided test with `unitsPerVariant` control units to detect a relative effect `mde`. */
export function power(
  baseline: Baseline,
  mde: number,
  unitsPerVariant: number,
  { alpha = DEFAULT_ALPHA, allocationRatio = 1 }: PowerOptions = {},
): Outcome<number> {
  if (!validOptions(alpha, allocationRatio) || !Number.isFinite(unitsPerVariant))
    return fail('INVALID_INPUT');
  if (unitsPerVariant <= 0) return fail('NO_UNITS');
  const a = arms(baseline, mde);
  if (a.value === null) return fail(a.reason);
  const { baselineMean, varianceA, varianceB } = a.value;
  const se = Math.sqrt(varianceA / unitsPerVariant + varianceB / (allocationRatio * unitsPerVariant));
  const shift = Math.abs(mde * baselineMean) / se;
  const z = normalQuantile(1 - alpha / 2);
  return ok(Math.min(1, normalCdf(shift - z) + normalCdf(-shift - z)));
}

/** Smallest positive relative effect detectable with the given power and control units. */
export function minimumDetectableEffect(
  baseline: Baseline,
  unitsPerVariant: number,
  {
    alpha = DEFAULT_ALPHA,
    allocationRatio = 1,
    power: targetPower = DEFAULT_POWER,
  }: PowerOptions & {
    power?: number;
  } = {},
): Outcome<number> {
  if (
    !validOptions(alpha, allocationRatio) ||
    !isProbability(targetPower) ||
    !Number.isFinite(unitsPerVariant)
  ) {
    return fail('INVALID_INPUT');
  }
  if (unitsPerVariant <= 0) return fail('NO_UNITS');
  const a = arms(baseline, 0);
  if (a.value === null) return fail(a.reason);
  const k = normalQuantile(1 - alpha / 2) + normalQuantile(targetPower);
  const n = unitsPerVariant;
  const r = allocationRatio;
  const { baselineMean: p } = a.value;
  if (baseline.metricType === 'MEAN') {
    const { varianceA, varianceB } = a.value;
    return ok((k * Math.sqrt((varianceA + varianceB / r) / n)) / Math.abs(p));
  }
  // The treatment variance depends on δ, so n·δ² = k²·(p(1−p) + (p+δ)(1−p−δ)/r) is a quadratic in δ.
  const qa = n + (k * k) / r;
  const qb = (-(k * k) * (1 - 2 * p)) / r;
  const qc = -(k * k) * p * (1 - p) * (1 + 1 / r);
  const delta = (-qb + Math.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa);
  // No rate above the baseline is detectable with so few units.
  if (p + delta > 1) return fail('TOO_FEW_UNITS');
  return ok(delta / p);
}

/**
 * Units per variant needed to detect a relative effect `mde` with the given power. No multiplicity
 * correction unless `bonferroni` is set, which splits alpha over the variants − 1 comparisons with control.
 */
export function sampleSize(
  baseline: Baseline,
  mde: number,
  {
    alpha = DEFAULT_ALPHA,
    allocationRatio = 1,
    power: targetPower = DEFAULT_POWER,
    variants = 2,
    bonferroni = false,
  }: PowerOptions & { power?: number; variants?: number; bonferroni?: boolean } = {},
): Outcome<SampleSizeResult> {
  if (
    !validOptions(alpha, allocationRatio) ||
    !isProbability(targetPower) ||
    !Number.isInteger(variants) ||
    variants < 2 ||
    mde === 0
  ) {
    return fail(variants === 1 ? 'SINGLE_VARIANT' : 'INVALID_INPUT');
  }
  const a = arms(baseline, mde);
  if (a.value === null) return fail(a.reason);
  const { baselineMean, varianceA, varianceB } = a.value;
  const usedAlpha = bonferroni ? alpha / (variants - 1) : alpha;
  const k = normalQuantile(1 - usedAlpha / 2) + normalQuantile(targetPower);
  const delta = mde * baselineMean;
  const exact = (k * k * (varianceA + varianceB / allocationRatio)) / (delta * delta);
  if (!Number.isFinite(exact)) return fail('NON_FINITE_RESULT');
  const control = Math.ceil(exact);
  const treatment = Math.ceil(exact * allocationRatio);
  return ok({
    unitsPerVariant: control,
    treatmentUnitsPerVariant: treatment,
    totalUnits: control + treatment * (variants - 1),
    exactUnitsPerVariant: exact,
    alpha: usedAlpha,
  });
}
