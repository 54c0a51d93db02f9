import { DEFAULT_MINIMUM_UNITS } from './decision';
import { normalCdf, normalQuantile } from './distributions';
import { DEFAULT_SEQUENTIAL_TUNING, sequentialMultiplier, sequentialRho } from './sequential';
import { type Correction, fail, type MetricType, type Outcome, ok, type StatsMethod } from './types';

/**
 * Power analysis for the test analyze() runs: the difference of means (Welch / confidence sequence /
 * Gaussian posterior on the absolute scale), planned for a relative effect (mde = 0.05 means +5% on the
 * baseline mean). With δ = mde·|mean|, arm variances σ²_A, σ²_B, n_B = r·n_A units and c the method's
 * critical value in standard errors:
 *
 *   power                  Φ(δ/se − c) + Φ(−δ/se − c),   se² = σ²_A/n_A + σ²_B/n_B
 *   units per control arm  n_A = (c + z_{power})² · (σ²_A + σ²_B / r) / δ²
 *
 * FREQUENTIST: c = z_{1−α/2}. SEQUENTIAL: c is the always-valid interval's multiplier at N = n_A + n_B
 * (ρ tuned by N* and the configured α), so n_A is solved numerically; the power is that of the interval at
 * n_A, a floor that looking earlier only raises. BAYESIAN (flat prior): significant means chanceToWin above
 * 1 − α, a one-sided c = z_{1−α} with only the first term. With more than two variants and a correction,
 * each comparison uses α/(variants − 1): Holm and Benjamini–Hochberg never reject less than that
 * Bonferroni split, so the requested power holds for every treatment that has the effect.
 *
 * For means σ²_B = σ²_A (the effect shifts the mean only); for proportions σ²_A = p(1 − p) and
 * σ²_B = p_B(1 − p_B) with p_B = p(1 + mde). The sample-size and MDE formulas drop the far rejection
 * tail, Φ(−2·z_{1−α/2} − z_{power}) (8e-7 at α = 0.05, power 0.8), so the power at the computed n is at
 * least the target; statsmodels' numerical solve keeps it and lands within 1e-4 relative of ours.
 */

export interface Baseline {
  /** Planning covers BINOMIAL and MEAN metrics (a RATIO metric plans as the MEAN of its per-unit ratio). */
  metricType: Exclude<MetricType, 'RATIO'>;
  /** Baseline mean, or conversion rate for binomial metrics (strictly between 0 and 1). */
  mean: number;
  /** Per-unit variance of a mean metric; ignored for binomial metrics, where it is p(1 − p). */
  variance?: number;
}

export interface PowerOptions {
  /** Significance level, 1 − confidenceLevel; default 0.05. Two-sided, except for BAYESIAN. */
  alpha?: number;
  /** Treatment units per control unit; default 1 (equal allocation). */
  allocationRatio?: number;
  /** The analysis the plan is for; default FREQUENTIST. */
  method?: StatsMethod;
  /** Variants including the control; default 2. */
  variants?: number;
  /** The correction results will apply; HOLM and BENJAMINI_HOCHBERG split alpha over the comparisons. */
  correction?: Correction;
  /** SEQUENTIAL: N*, as passed to results; default 5000. */
  sequentialTuning?: number;
}

export interface SampleSizeResult {
  /** Units needed in the control arm, rounded up, and never below the analysis's minimum. */
  unitsPerVariant: number;
  /** Units needed in each treatment arm, rounded up (equal to unitsPerVariant with equal allocation). */
  treatmentUnitsPerVariant: number;
  /** Units across all variants. */
  totalUnits: number;
  /** Unrounded n_A from the formula (or the numerical solve). */
  exactUnitsPerVariant: number;
  /** Alpha each comparison is tested at (after the multiplicity split, if any). */
  alpha: number;
}

const DEFAULT_ALPHA = 0.05;
const DEFAULT_POWER = 0.8;
/** Largest sample the sequential solve searches; beyond it the effect is undetectable in practice. */
const MAX_UNITS = 1e15;

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
    // A rate of 0 or 1 (or an effect reaching one) has no spread: the analysis would fall back to an exact
    // test, which this normal-approximation plan does not describe.
    const rateB = mean * (1 + mde);
    if (!(mean > 0 && mean < 1 && rateB > 0 && rateB < 1)) return fail('INVALID_INPUT');
    return ok({ baselineMean: mean, varianceA: mean * (1 - mean), varianceB: rateB * (1 - rateB) });
  }
  const variance = baseline.variance;
  if (variance === undefined || !Number.isFinite(variance) || variance < 0) return fail('INVALID_INPUT');
  if (variance === 0) return fail('ZERO_VARIANCE');
  return ok({ baselineMean: mean, varianceA: variance, varianceB: variance });
}

interface Design {
  method: StatsMethod;
  /** Alpha per comparison. */
  alpha: number;
  allocationRatio: number;
  /** Critical value in standard errors with n_A control units. */
  critical: (unitsPerVariant: number) => number;
}

function design(options: PowerOptions): Outcome<Design> {
  const {
    alpha = DEFAULT_ALPHA,
    allocationRatio = 1,
    method = 'FREQUENTIST',
    variants = 2,
    correction = 'NONE',
    sequentialTuning = DEFAULT_SEQUENTIAL_TUNING,
  } = options;
  if (variants === 1) return fail('SINGLE_VARIANT');
  if (
    !isProbability(alpha) ||
    !(Number.isFinite(allocationRatio) && allocationRatio > 0) ||
    !(Number.isInteger(variants) && variants >= 2) ||
    !(Number.isFinite(sequentialTuning) && sequentialTuning > 0)
  ) {
    return fail('INVALID_INPUT');
  }
  // Bayesian results have no p-values, so a correction does not apply to them (as in analyze()).
  const split = correction !== 'NONE' && method !== 'BAYESIAN' ? variants - 1 : 1;
  const used = alpha / split;
  let critical: Design['critical'];
  if (method === 'SEQUENTIAL') {
    const rho = sequentialRho(alpha, sequentialTuning);
    critical = (n) => sequentialMultiplier(n * (1 + allocationRatio), used, rho);
  } else {
    const z = normalQuantile(method === 'BAYESIAN' ? 1 - used : 1 - used / 2);
    critical = () => z;
  }
  return ok({ method, alpha: used, allocationRatio, critical });
}

function powerAt(shift: number, critical: number, method: StatsMethod): number {
  const near = normalCdf(shift - critical);
  return Math.min(1, method === 'BAYESIAN' ? near : near + normalCdf(-shift - critical));
}

/** Power of the planned analysis with `unitsPerVariant` control units to detect a relative effect `mde`. */
export function power(
  baseline: Baseline,
  mde: number,
  unitsPerVariant: number,
  options: PowerOptions = {},
): Outcome<number> {
  const d = design(options);
  if (d.value === null) return fail(d.reason);
  if (!Number.isFinite(unitsPerVariant)) return fail('INVALID_INPUT');
  if (unitsPerVariant <= 0) return fail('NO_UNITS');
  const a = arms(baseline, mde);
  if (a.value === null) return fail(a.reason);
  const { baselineMean, varianceA, varianceB } = a.value;
  const r = d.value.allocationRatio;
  const se = Math.sqrt(varianceA / unitsPerVariant + varianceB / (r * unitsPerVariant));
  return ok(powerAt(Math.abs(mde * baselineMean) / se, d.value.critical(unitsPerVariant), d.value.method));
}

/** Smallest positive relative effect the planned analysis detects with the given power and control units. */
export function minimumDetectableEffect(
  baseline: Baseline,
  unitsPerVariant: number,
  options: PowerOptions & { power?: number } = {},
): Outcome<number> {
  const targetPower = options.power ?? DEFAULT_POWER;
  const d = design(options);
  if (d.value === null) return fail(d.reason);
  if (!isProbability(targetPower) || !Number.isFinite(unitsPerVariant)) return fail('INVALID_INPUT');
  if (unitsPerVariant <= 0) return fail('NO_UNITS');
  const a = arms(baseline, 0);
  if (a.value === null) return fail(a.reason);
  const k = d.value.critical(unitsPerVariant) + normalQuantile(targetPower);
  const n = unitsPerVariant;
  const r = d.value.allocationRatio;
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
  if (p + delta >= 1) return fail('TOO_FEW_UNITS');
  return ok(delta / p);
}

/**
 * Units per variant the planned analysis needs to detect a relative effect `mde` with the given power, and
 * never fewer than `minimumUnits` (the analysis shows nothing below it; the API passes
 * LIMITS.minUnitsPerVariant).
 */
export function sampleSize(
  baseline: Baseline,
  mde: number,
  options: PowerOptions & { power?: number; minimumUnits?: number } = {},
): Outcome<SampleSizeResult> {
  const { power: targetPower = DEFAULT_POWER, variants = 2, minimumUnits = DEFAULT_MINIMUM_UNITS } = options;
  const d = design(options);
  if (d.value === null) return fail(d.reason);
  if (!isProbability(targetPower) || mde === 0 || !(Number.isFinite(minimumUnits) && minimumUnits >= 0)) {
    return fail('INVALID_INPUT');
  }
  const a = arms(baseline, mde);
  if (a.value === null) return fail(a.reason);
  const { baselineMean, varianceA, varianceB } = a.value;
  const { critical, allocationRatio: r } = d.value;
  const zPower = normalQuantile(targetPower);
  const delta = mde * baselineMean;
  const spread = varianceA + varianceB / r;
  let exact: number;
  if (d.value.method === 'SEQUENTIAL') {
    // δ/se(n) − c(n) grows with n (√n against √log n): bracket its root by doubling, then bisect.
    const excess = (n: number) => Math.abs(delta) / Math.sqrt(spread / n) - critical(n) - zPower;
    let low = 1e-9;
    let high = 1;
    while (excess(high) < 0 && high < MAX_UNITS) {
      low = high;
      high *= 2;
    }
    if (!(excess(high) >= 0)) return fail('NON_FINITE_RESULT');
    for (let i = 0; i < 200 && high - low > 1e-12 * high; i++) {
      const mid = (low + high) / 2;
      if (excess(mid) < 0) low = mid;
      else high = mid;
    }
    exact = high;
  } else {
    const k = critical(1) + zPower;
    exact = (k * k * spread) / (delta * delta);
  }
  if (!Number.isFinite(exact)) return fail('NON_FINITE_RESULT');
  const control = Math.max(Math.ceil(exact), minimumUnits);
  const treatment = Math.max(Math.ceil(exact * r), minimumUnits);
  return ok({
    unitsPerVariant: control,
    treatmentUnitsPerVariant: treatment,
    totalUnits: control + treatment * (variants - 1),
    exactUnitsPerVariant: exact,
    alpha: d.value.alpha,
  });
}
