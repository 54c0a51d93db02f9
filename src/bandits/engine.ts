/**
 * The multi-armed bandit engine (Gaussian Thompson sampling, as GrowthBook's gbstats `Bandits`): per-arm
 * estimates that stay unbiased while the weights change, each arm's posterior probability of being the
 * best, and the weights that follow from them. Pure: it imports nothing from the database or GraphQL.
 *
 * References: GrowthBook `packages/stats/gbstats/bayesian/bandits.py` (posterior, floor) and
 * `packages/back-end/src/integrations/sql/ctes/bandit-statistics-cte.ts` (weighting by period), MIT licence.
 */
import { normalSource, prng } from '../results/stats/random';
import type { MetricGoal } from '../results/stats/types';

/** One arm's units and Σx, Σx² of the decision metric in one period (a phase: weights fixed). */
export interface ArmPeriodStats {
  n: number;
  sum: number;
  sumSquares: number;
}

/** Each period holds one entry per arm, in the same order. */
export type PeriodStats = readonly (readonly ArmPeriodStats[])[];

export interface ArmEstimate {
  /** Units over every period. */
  n: number;
  /** The period-weighted mean (null: no units at all). */
  mean: number | null;
  /** Variance of that mean (null: no units, or no period with two units to estimate a spread from). */
  variance: number | null;
}

/**
 * Each arm's mean as Σ over periods of (the period's share of all units) × (the arm's mean in the period),
 * with variance Σ share² × s²/n. A bandit gives winning arms more of the later periods; if the metric drifts
 * over time (weekends), pooling every unit would credit an arm with the drift of the periods it was shown in
 * (Simpson's paradox). Weighting each period by its share of all units compares arms as if each had been shown
 * in every period alike. An arm missing from a period (no units there) is weighted over the periods it has.
 */
export function periodWeightedEstimates(periods: PeriodStats, arms: number): ArmEstimate[] {
  const totals = periods.map((p) => p.reduce((acc, a) => acc + a.n, 0));
  const all = totals.reduce((acc, t) => acc + t, 0);
  return Array.from({ length: arms }, (_, arm) => {
    let n = 0;
    let shareSeen = 0;
    let mean = 0;
    let variance = 0;
    let spread = false;
    periods.forEach((period, p) => {
      const s = period[arm];
      if (!s || s.n <= 0) return;
      const share = totals[p] / all;
      const m = s.sum / s.n;
      n += s.n;
      shareSeen += share;
      mean += share * m;
      if (s.n > 1) {
        // Sample variance; clamped at 0 against rounding in Σx² − (Σx)²/n.
        const v = Math.max(0, (s.sumSquares - (s.sum * s.sum) / s.n) / (s.n - 1));
        variance += (share * share * v) / s.n;
        spread = true;
      }
    });
    if (n === 0) return { n: 0, mean: null, variance: null };
    return {
      n,
      mean: mean / shareSeen,
      variance: spread ? variance / (shareSeen * shareSeen) : null,
    };
  });
}

/** GrowthBook's bandit prior: a proper N(0, 10⁴), nearly flat on the scale of rates and per-unit means. */
export const BANDIT_PRIOR = { mean: 0, variance: 1e4 } as const;

/** The Gaussian posterior of each arm's mean: precision-weighted prior and data (gbstats `posterior_mean`). */
export function posteriors(
  estimates: readonly ArmEstimate[],
  prior: { mean: number; variance: number } = BANDIT_PRIOR,
): { mean: number; sd: number }[] {
  return estimates.map((e) => {
    const dataPrecision = e.mean !== null && e.variance !== null && e.variance > 0 ? 1 / e.variance : 0;
    const precision = 1 / prior.variance + dataPrecision;
    return {
      mean: (prior.mean / prior.variance + dataPrecision * (e.mean ?? 0)) / precision,
      sd: Math.sqrt(1 / precision),
    };
  });
}

export interface BestArmOptions {
  /** Which way is better: INCREASE (the largest mean is best) or DECREASE. */
  direction: MetricGoal;
  /**
   * Monte Carlo with this many seeded draws (as gbstats does), instead of quadrature. The service uses
   * quadrature: exact to ~1e-9, so weights do not jitter between updates of the same data.
   */
  draws?: { count: number; seed: number };
}

/**
 * P(arm i has the best mean) under independent Gaussian posteriors:
 * P_i = ∫ φ(z) Π_{j≠i} Φ((μ_i + σ_i z − μ_j) / σ_j) dz (for INCREASE), by adaptive Gauss–Kronrod quadrature over
 * z ∈ [−9, 9] (φ beyond is below 1e-18), then divided by their sum (≈ 1 to 1e-9 already). Arms with equal
 * posteriors get equal probabilities; a single arm gets 1.
 */
export function bestArmProbabilities(
  arms: readonly { mean: number; sd: number }[],
  options: BestArmOptions,
): number[] {
  const k = arms.length;
  if (k === 0) return [];
  if (k === 1) return [1];
  // DECREASE: the smallest mean is best, i.e. the largest of the negated means.
  const sign = options.direction === 'DECREASE' ? -1 : 1;
  const mu = arms.map((a) => sign * a.mean);
  const sd = arms.map((a) => a.sd);
  const raw = options.draws ? monteCarlo(mu, sd, options.draws) : mu.map((_, i) => integrateBest(mu, sd, i));
  const total = raw.reduce((acc, p) => acc + p, 0);
  return total > 0 ? raw.map((p) => p / total) : raw.map(() => 1 / k);
}

// Module-level bindings: under Jest's VM every `Math.…` is a global lookup, ten times slower in these loops.
const { abs, exp, sqrt } = Math;

/**
 * Φ(x), the standard normal CDF, by Hart's double-precision rational approximation (algorithm 5666, as
 * given by West, "Better approximations to cumulative normal functions", Wilmott 2005): absolute error below
 * 1e-14, and a few times faster than a general-purpose erfc in the integrand's inner loop.
 */
export function normalCdf(x: number): number {
  const z = abs(x);
  let tail: number;
  if (z > 37) tail = 0;
  else {
    const e = exp(-0.5 * z * z);
    if (z < 7.07106781186547) {
      let n = 3.52624965998911e-2 * z + 0.700383064443688;
      n = n * z + 6.37396220353165;
      n = n * z + 33.912866078383;
      n = n * z + 112.079291497871;
      n = n * z + 221.213596169931;
      n = n * z + 220.206867912376;
      let d = 8.83883476483184e-2 * z + 1.75566716318264;
      d = d * z + 16.064177579207;
      d = d * z + 86.7807322029461;
      d = d * z + 296.564248779674;
      d = d * z + 637.333633378831;
      d = d * z + 793.826512519948;
      d = d * z + 440.413735824752;
      tail = (e * n) / d;
    } else {
      let b = z + 0.65;
      b = z + 4 / b;
      b = z + 3 / b;
      b = z + 2 / b;
      b = z + 1 / b;
      tail = e / b / 2.506628274631;
    }
  }
  return x > 0 ? 1 - tail : tail;
}

const Z_LIMIT = 9;
const TOLERANCE = 1e-11;
const MAX_DEPTH = 30;
const INITIAL_PANELS = 24;
const INV_SQRT_2PI = 1 / sqrt(2 * Math.PI);

/** Φ((x − μ_j) / σ_j); a point mass (σ 0) is a step. */
const below = (x: number, mu: number, sd: number) =>
  sd > 0 ? normalCdf((x - mu) / sd) : x > mu ? 1 : x < mu ? 0 : 0.5;

/** P(arm i is the largest): ∫ φ(z) Π_{j≠i} Φ((μ_i + σ_i z − μ_j)/σ_j) dz. */
function integrateBest(mu: readonly number[], sd: readonly number[], i: number): number {
  return integrate((z) => {
    let value = INV_SQRT_2PI * exp(-0.5 * z * z);
    const x = mu[i] + sd[i] * z;
    for (let j = 0; j < mu.length && value > 0; j++) if (j !== i) value *= below(x, mu[j], sd[j]);
    return value;
  });
}

function integrate(f: (z: number) => number): number {
  // Fixed panels first, so a narrow feature (an arm far more certain than this one) cannot hide between the
  // nodes of one wide panel; then adaptive Gauss–Kronrod within each.
  const h = (2 * Z_LIMIT) / INITIAL_PANELS;
  let total = 0;
  for (let p = 0; p < INITIAL_PANELS; p++) {
    const a = -Z_LIMIT + p * h;
    total += gaussKronrod(f, a, a + h, TOLERANCE / INITIAL_PANELS, 0);
  }
  return total;
}

// The 15-point Kronrod rule and its embedded 7-point Gauss rule (QUADPACK's qk15, rounded to doubles): the
// positive nodes, in decreasing order, and their weights; the centre node is 0. The Gauss nodes are the
// odd-indexed ones.
const KRONROD_NODES = [
  0.9914553711208126, 0.9491079123427585, 0.8648644233597691, 0.7415311855993945, 0.5860872354676911,
  0.4058451513773972, 0.20778495500789848,
];
const KRONROD_WEIGHTS = [
  0.022935322010529224, 0.06309209262997856, 0.10479001032225019, 0.14065325971552592, 0.1690047266392679,
  0.19035057806478542, 0.20443294007529889,
];
const KRONROD_CENTRE = 0.20948214108472782;
const GAUSS_WEIGHTS = [0.1294849661688697, 0.27970539148927664, 0.3818300505051189];
const GAUSS_CENTRE = 0.4179591836734694;

/**
 * Adaptive Gauss–Kronrod (7/15): the difference between the two rules bounds the Gauss rule's error, so a
 * panel is split until it is within its share of the tolerance. The integrand is smooth except near a far
 * more certain arm's mean, where it steps. A fifth of the time adaptive Simpson took for the
 * same 1e-11 (the bandit simulation's updates ran 5× faster, same probabilities to 1e-9).
 */
function gaussKronrod(
  f: (z: number) => number,
  a: number,
  b: number,
  tolerance: number,
  depth: number,
): number {
  const centre = (a + b) / 2;
  const half = (b - a) / 2;
  const fc = f(centre);
  let kronrod = KRONROD_CENTRE * fc;
  let gauss = GAUSS_CENTRE * fc;
  for (let j = 0; j < 7; j++) {
    const dx = half * KRONROD_NODES[j];
    const pair = f(centre - dx) + f(centre + dx);
    kronrod += KRONROD_WEIGHTS[j] * pair;
    if (j & 1) gauss += GAUSS_WEIGHTS[j >> 1] * pair;
  }
  if (depth >= MAX_DEPTH || abs(kronrod - gauss) * half <= tolerance) return kronrod * half;
  return (
    gaussKronrod(f, a, centre, tolerance / 2, depth + 1) +
    gaussKronrod(f, centre, b, tolerance / 2, depth + 1)
  );
}

/** The share of seeded joint draws in which each arm is the largest (ties split evenly). */
function monteCarlo(
  mu: readonly number[],
  sd: readonly number[],
  { count, seed }: { count: number; seed: number },
): number[] {
  const normal = seededNormal(seed);
  const wins = mu.map(() => 0);
  const draw = mu.map(() => 0);
  for (let d = 0; d < count; d++) {
    let best = -Infinity;
    for (let j = 0; j < mu.length; j++) {
      draw[j] = mu[j] + sd[j] * normal();
      if (draw[j] > best) best = draw[j];
    }
    const winners = draw.filter((x) => x === best).length;
    for (let j = 0; j < mu.length; j++) if (draw[j] === best) wins[j] += 1 / winners;
  }
  return wins.map((w) => w / count);
}

/** Standard normal draws from mulberry32 (a small seeded 32-bit generator) by the Marsaglia polar method. */
export function seededNormal(seed: number): () => number {
  return normalSource(prng(seed));
}

/**
 * Weights from best-arm probabilities with a floor: w_i = f + (1 − k·f)·p_i (gbstats' additive floor). Every
 * arm keeps at least f, the weights sum to 1, and the order and relative spacing of the probabilities stay
 * (clipping at f and renormalising would push floored arms back under f). When k·f ≥ 1 the floor leaves no
 * room: equal weights.
 */
export function flooredWeights(probabilities: readonly number[], minWeight: number): number[] {
  const k = probabilities.length;
  const f = Math.max(0, minWeight);
  if (k === 0) return [];
  if (f * k >= 1) return probabilities.map(() => 1 / k);
  const total = probabilities.reduce((acc, p) => acc + p, 0);
  return probabilities.map((p) => f + (1 - k * f) * (total > 0 ? p / total : 1 / k));
}

export interface BanditUpdateInput {
  periods: PeriodStats;
  arms: number;
  direction: MetricGoal;
  minWeight: number;
  /** No update until every arm has this many units over all periods. */
  minUnitsPerVariant: number;
  draws?: BestArmOptions['draws'];
}

export type BanditUpdate =
  | {
      weights: number[];
      bestArmProbabilities: number[];
      estimates: ArmEstimate[];
      reason: null;
    }
  | {
      weights: null;
      bestArmProbabilities: null;
      estimates: ArmEstimate[];
      /** TOO_FEW_UNITS: an arm is under minUnitsPerVariant; ZERO_VARIANCE: no arm's metric varies yet. */
      reason: 'TOO_FEW_UNITS' | 'ZERO_VARIANCE';
    };

/** One reweighting: estimates by period, posteriors, best-arm probabilities, floored weights. */
export function banditUpdate(input: BanditUpdateInput): BanditUpdate {
  const estimates = periodWeightedEstimates(input.periods, input.arms);
  if (estimates.some((e) => e.n < input.minUnitsPerVariant)) {
    return { weights: null, bestArmProbabilities: null, estimates, reason: 'TOO_FEW_UNITS' };
  }
  // An arm with no spread yet (no conversion at all) would get the prior's variance, 10⁴ (gbstats gives it
  // data precision 0), and its draws would swamp everything: it would take the traffic for being unknown.
  // Until some arm varies there is nothing to learn from; an arm with no spread while others vary borrows the
  // largest per-unit variance seen, over its own units (as if it were as noisy as the noisiest arm).
  const known = estimates.filter((e) => e.variance !== null && e.variance > 0);
  if (known.length === 0) {
    return { weights: null, bestArmProbabilities: null, estimates, reason: 'ZERO_VARIANCE' };
  }
  const stand = Math.max(...known.map((e) => e.variance! * e.n));
  const usable = estimates.map((e) =>
    e.variance !== null && e.variance > 0 ? e : { ...e, variance: stand / Math.max(1, e.n) },
  );
  const probabilities = bestArmProbabilities(posteriors(usable), {
    direction: input.direction,
    draws: input.draws,
  });
  return {
    weights: flooredWeights(probabilities, input.minWeight),
    bestArmProbabilities: probabilities,
    estimates,
    reason: null,
  };
}
