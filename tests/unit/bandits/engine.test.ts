/**
 * The bandit engine against independently computed reference numbers (tests/fixtures/bandits, made by its
 * generate.py from GrowthBook's gbstats bandit code with NumPy/SciPy), and its properties: probabilities sum
 * to 1, rise with an arm's mean, follow the metric's direction, weights respect the floor, seeded draws repeat.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import {
  banditUpdate,
  bestArmProbabilities,
  flooredWeights,
  periodWeightedEstimates,
  posteriors,
} from '../../../src/bandits/engine';

interface ReferenceCase {
  name: string;
  direction: 'INCREASE' | 'DECREASE';
  minWeight: number;
  periods: [number, number, number][][];
  estimates: { n: number; mean: number; variance: number }[];
  posterior: { mean: number; sd: number }[];
  bestArmProbabilities: number[];
  growthbookMonteCarlo: number[];
  weights: number[];
}

const reference = JSON.parse(
  readFileSync(path.join(process.cwd(), 'tests/fixtures/bandits/reference.json'), 'utf8'),
) as { cases: ReferenceCase[] };

const toPeriods = (c: ReferenceCase) =>
  c.periods.map((p) => p.map(([n, sum, sumSquares]) => ({ n, sum, sumSquares })));

const sum = (xs: readonly number[]) => xs.reduce((acc, x) => acc + x, 0);
const maxDifference = (xs: readonly number[], ys: readonly number[]) => {
  expect(xs).toHaveLength(ys.length);
  return Math.max(...xs.map((x, i) => Math.abs(x - ys[i])));
};

describe('bandit engine against the reference (gbstats, SciPy)', () => {
  it.each(reference.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const estimates = periodWeightedEstimates(toPeriods(c), c.periods[0].length);
    estimates.forEach((e, i) => {
      expect(e.n).toBe(c.estimates[i].n);
      expect(e.mean).toBeCloseTo(c.estimates[i].mean, 12);
      expect(e.variance! / c.estimates[i].variance).toBeCloseTo(1, 10);
    });
    const post = posteriors(estimates);
    post.forEach((p, i) => {
      expect(p.mean).toBeCloseTo(c.posterior[i].mean, 12);
      expect(p.sd / c.posterior[i].sd).toBeCloseTo(1, 10);
    });
    const probabilities = bestArmProbabilities(post, { direction: c.direction });
    expect(maxDifference(probabilities, c.bestArmProbabilities)).toBeLessThan(1e-4);
    // gbstats' own estimate is 10⁴ draws: within 4 standard errors of the exact value.
    for (const [i, p] of probabilities.entries()) {
      expect(Math.abs(p - c.growthbookMonteCarlo[i])).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / 1e4) + 1e-3);
    }
    const weights = flooredWeights(probabilities, c.minWeight);
    expect(maxDifference(weights, c.weights)).toBeLessThan(1e-4);
    // The whole update gives the same numbers.
    const update = banditUpdate({
      periods: toPeriods(c),
      arms: c.periods[0].length,
      direction: c.direction,
      minWeight: c.minWeight,
      minUnitsPerVariant: 100,
    });
    expect(update.reason).toBeNull();
    expect(maxDifference(update.weights!, c.weights)).toBeLessThan(1e-4);
  });
});

describe('best-arm probabilities', () => {
  const arms = [
    { mean: 0.05, sd: 0.004 },
    { mean: 0.052, sd: 0.003 },
    { mean: 0.055, sd: 0.005 },
    { mean: 0.058, sd: 0.002 },
  ];

  it('sum to 1 within 1e-6, for quadrature and for seeded draws', () => {
    for (const direction of ['INCREASE', 'DECREASE'] as const) {
      expect(Math.abs(sum(bestArmProbabilities(arms, { direction })) - 1)).toBeLessThan(1e-6);
      const drawn = bestArmProbabilities(arms, { direction, draws: { count: 20_000, seed: 7 } });
      expect(Math.abs(sum(drawn) - 1)).toBeLessThan(1e-6);
    }
    // Before normalisation too: the quadrature itself is that accurate.
    const unnormalised = [0, 1, 2, 3].map(
      (i) => bestArmProbabilities([arms[i], ...arms.filter((_, j) => j !== i)], { direction: 'INCREASE' })[0],
    );
    expect(Math.abs(sum(unnormalised) - 1)).toBeLessThan(1e-6);
  });

  it("rise with an arm's mean (and the others fall)", () => {
    let previous = bestArmProbabilities([{ mean: 0.048, sd: 0.004 }, ...arms.slice(1)], {
      direction: 'INCREASE',
    });
    for (let mean = 0.049; mean <= 0.07; mean += 0.001) {
      const next = bestArmProbabilities([{ mean, sd: 0.004 }, ...arms.slice(1)], { direction: 'INCREASE' });
      expect(next[0]).toBeGreaterThan(previous[0]);
      for (let j = 1; j < arms.length; j++) expect(next[j]).toBeLessThanOrEqual(previous[j] + 1e-12);
      previous = next;
    }
  });

  it("follow the metric's direction", () => {
    const up = bestArmProbabilities(arms, { direction: 'INCREASE' });
    const down = bestArmProbabilities(arms, { direction: 'DECREASE' });
    expect(up.indexOf(Math.max(...up))).toBe(3);
    expect(down.indexOf(Math.max(...down))).toBe(0);
    // Minimising the means is maximising their negation.
    const negated = bestArmProbabilities(
      arms.map((a) => ({ mean: -a.mean, sd: a.sd })),
      { direction: 'INCREASE' },
    );
    expect(maxDifference(down, negated)).toBeLessThan(1e-12);
  });

  it('are deterministic for a seed, differ between seeds, and agree with quadrature', () => {
    const a = bestArmProbabilities(arms, { direction: 'INCREASE', draws: { count: 10_000, seed: 42 } });
    const b = bestArmProbabilities(arms, { direction: 'INCREASE', draws: { count: 10_000, seed: 42 } });
    const c = bestArmProbabilities(arms, { direction: 'INCREASE', draws: { count: 10_000, seed: 43 } });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const exact = bestArmProbabilities(arms, { direction: 'INCREASE' });
    expect(maxDifference(a, exact)).toBeLessThan(0.02);
    expect(bestArmProbabilities(arms, { direction: 'INCREASE' })).toEqual(exact);
  });

  it('split evenly between equal arms; a single arm is certain', () => {
    const equal = bestArmProbabilities(
      [0, 1, 2, 3, 4].map(() => ({ mean: 1, sd: 0.1 })),
      { direction: 'INCREASE' },
    );
    expect(maxDifference(equal, [0.2, 0.2, 0.2, 0.2, 0.2])).toBeLessThan(1e-9);
    expect(bestArmProbabilities([{ mean: 3, sd: 1 }], { direction: 'DECREASE' })).toEqual([1]);
  });

  it('stay accurate when one arm is far more certain than another (a narrow step in the integrand)', () => {
    // Two arms: P(A > B) = Φ((μA − μB) / √(σA² + σB²)) exactly.
    const a = { mean: 0.051, sd: 0.01 };
    const b = { mean: 0.05, sd: 0.00001 };
    const [pa] = bestArmProbabilities([a, b], { direction: 'INCREASE' });
    const z = (a.mean - b.mean) / Math.hypot(a.sd, b.sd);
    const phi = 0.5 * (1 + erf(z / Math.SQRT2));
    expect(Math.abs(pa - phi)).toBeLessThan(1e-8);
  });
});

describe('period weighting', () => {
  it('keeps a drifting base rate from favouring the arm shown most when it was high (Simpson)', () => {
    // Both arms convert at 5 % on weekdays and 10 % at the weekend, identically. Arm B got most of the weekend.
    const arm = (n: number, rate: number) => ({ n, sum: n * rate, sumSquares: n * rate });
    const periods = [
      [arm(5000, 0.05), arm(5000, 0.05)],
      [arm(500, 0.1), arm(4500, 0.1)],
    ];
    const pooled = [0, 1].map((i) => sum(periods.map((p) => p[i].sum)) / sum(periods.map((p) => p[i].n)));
    expect(pooled[1] - pooled[0]).toBeGreaterThan(0.015);
    const [a, b] = periodWeightedEstimates(periods, 2);
    expect(a.mean).toBeCloseTo(b.mean!, 12);
    // Each period counts by its share of all units: 10,000 / 15,000 and 5,000 / 15,000.
    expect(a.mean).toBeCloseTo((2 / 3) * 0.05 + (1 / 3) * 0.1, 12);
    const probabilities = bestArmProbabilities(posteriors([a, b]), { direction: 'INCREASE' });
    expect(probabilities[1]).toBeLessThan(0.6);
  });
});

describe('weights', () => {
  it('respect the floor and sum to 1', () => {
    const p = [0.9999, 0.0001, 0, 0, 0];
    for (const f of [0, 0.01, 0.05, 0.1, 0.19]) {
      const w = flooredWeights(p, f);
      expect(Math.abs(sum(w) - 1)).toBeLessThan(1e-12);
      expect(Math.min(...w)).toBeGreaterThanOrEqual(f - 1e-15);
      // The order of the probabilities is kept.
      expect(w[0]).toBeGreaterThan(w[1]);
    }
    // A floor that leaves no room: equal weights.
    expect(flooredWeights(p, 0.2)).toEqual([0.2, 0.2, 0.2, 0.2, 0.2]);
  });

  it('wait for minUnitsPerVariant in every arm, and for some spread', () => {
    const arm = (n: number, conversions: number) => ({ n, sum: conversions, sumSquares: conversions });
    const few = banditUpdate({
      periods: [[arm(120, 6), arm(99, 7)]],
      arms: 2,
      direction: 'INCREASE',
      minWeight: 0.01,
      minUnitsPerVariant: 100,
    });
    expect(few).toMatchObject({ weights: null, reason: 'TOO_FEW_UNITS' });
    const flat = banditUpdate({
      periods: [[arm(200, 0), arm(200, 0)]],
      arms: 2,
      direction: 'INCREASE',
      minWeight: 0.01,
      minUnitsPerVariant: 100,
    });
    expect(flat).toMatchObject({ weights: null, reason: 'ZERO_VARIANCE' });
    // One arm without conversions yet borrows the noisiest arm's spread instead of the prior's 10⁴.
    const one = banditUpdate({
      periods: [[arm(200, 0), arm(200, 10)]],
      arms: 2,
      direction: 'INCREASE',
      minWeight: 0.01,
      minUnitsPerVariant: 100,
    });
    expect(one.reason).toBeNull();
    expect(one.bestArmProbabilities![1]).toBeGreaterThan(0.98);
  });
});

/** erf by Abramowitz–Stegun 7.1.26 is too coarse here; use the series/continued fraction via Φ's identity. */
function erf(x: number): number {
  // Maclaurin series: converges fast for |x| < 3, all this test needs.
  let term = x;
  let total = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    total += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * total;
}
