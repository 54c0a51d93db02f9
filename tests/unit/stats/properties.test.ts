import { describe, expect, it } from '@jest/globals';
import {
  type Baseline,
  benjaminiHochberg,
  compare,
  type DifferenceType,
  holm,
  minimumDetectableEffect,
  power,
  STATS_METHODS,
  type SufficientStats,
  sampleSize,
} from '../../../src/results/stats';
import { prng } from './simulation';

const uniform = (random: () => number, lo: number, hi: number) => lo + (hi - lo) * random();
const integer = (random: () => number, lo: number, hi: number) => Math.floor(uniform(random, lo, hi + 1));

/** Sufficient statistics of an arm with the given mean and sample variance. */
const meanArm = (n: number, mean: number, variance: number): SufficientStats => ({
  n,
  sum: n * mean,
  sumSquares: (n - 1) * variance + n * mean * mean,
});

const CASES = 200;
const SCALES: DifferenceType[] = ['ABSOLUTE', 'RELATIVE'];

describe('properties', () => {
  it('every interval contains its estimate (all methods, both scales, both metric types)', () => {
    const random = prng(1);
    for (let i = 0; i < CASES; i++) {
      const binomial = i % 2 === 0;
      const nA = integer(random, 2, 50_000);
      const nB = integer(random, 2, 50_000);
      const control = binomial
        ? { n: nA, sum: integer(random, 1, nA), sumSquares: 0 }
        : meanArm(nA, uniform(random, -50, 50), uniform(random, 0.01, 400));
      const treatment = binomial
        ? { n: nB, sum: integer(random, 0, nB), sumSquares: 0 }
        : meanArm(nB, uniform(random, -50, 50), uniform(random, 0.01, 400));
      for (const method of STATS_METHODS) {
        const level = uniform(random, 0.5, 0.999);
        const result = compare(control, treatment, {
          metricType: binomial ? 'BINOMIAL' : 'MEAN',
          method,
          confidenceLevel: level,
          prior:
            method === 'BAYESIAN' && random() < 0.5 ? { mean: 0, variance: uniform(random, 0.001, 1) } : null,
        });
        for (const effect of [result.absoluteEffect, result.relativeEffect]) {
          if (effect === null) continue;
          expect(effect.lower).toBeLessThanOrEqual(effect.estimate);
          expect(effect.upper).toBeGreaterThanOrEqual(effect.estimate);
          if (effect.pValue !== null) {
            expect(effect.pValue).toBeGreaterThanOrEqual(0);
            expect(effect.pValue).toBeLessThanOrEqual(1);
            // The interval excludes 0 exactly when the p-value is below alpha.
            const alpha = 1 - level;
            const excludesZero = effect.lower > 0 || effect.upper < 0;
            if (Math.abs(effect.pValue - alpha) > 1e-9) expect(excludesZero).toBe(effect.pValue < alpha);
          }
        }
      }
    }
  });

  it('p-values never increase as the effect grows, variances and n fixed', () => {
    const random = prng(2);
    for (let i = 0; i < 40; i++) {
      const nA = integer(random, 10, 20_000);
      const nB = integer(random, 10, 20_000);
      const mean = uniform(random, 1, 100);
      const varA = (mean * uniform(random, 0.1, 3)) ** 2;
      const varB = (mean * uniform(random, 0.1, 3)) ** 2;
      const control = meanArm(nA, mean, varA);
      for (const method of ['FREQUENTIST', 'SEQUENTIAL'] as const) {
        for (const scale of SCALES) {
          let previous = 1;
          for (let lift = 0; lift <= 0.5; lift += 0.01) {
            const result = compare(control, meanArm(nB, mean * (1 + lift), varB), {
              metricType: 'MEAN',
              method,
            });
            const effect = scale === 'ABSOLUTE' ? result.absoluteEffect! : result.relativeEffect!;
            expect(effect.pValue!).toBeLessThanOrEqual(previous + 1e-15);
            previous = effect.pValue!;
          }
        }
      }
    }
  });

  it('Holm ≥ Benjamini-Hochberg ≥ raw, all within [0, 1], order preserved', () => {
    const random = prng(3);
    for (let i = 0; i < CASES; i++) {
      const raw = Array.from({ length: integer(random, 1, 25) }, () => random() ** 3);
      const h = holm(raw);
      const bh = benjaminiHochberg(raw);
      raw.forEach((p, j) => {
        expect(h[j]).toBeGreaterThanOrEqual(bh[j] - 1e-15);
        expect(bh[j]).toBeGreaterThanOrEqual(p);
        expect(h[j]).toBeLessThanOrEqual(1);
      });
      // Adjustment preserves the ranking of the raw p-values.
      const order = raw.map((_, j) => j).sort((a, b) => raw[a] - raw[b]);
      const rankBroken = order.slice(1).some((j, k) => h[j] < h[order[k]] || bh[j] < bh[order[k]]);
      expect(rankBroken).toBe(false);
    }
  });

  it('null p-values are skipped by the corrections and do not count as hypotheses', () => {
    expect(holm([0.01, null, 0.04])).toEqual([0.02, null, 0.04]);
    expect(benjaminiHochberg([null, 0.01, 0.04])).toEqual([null, 0.02, 0.04]);
  });

  it('chance to win increases with the effect (flat and normal priors)', () => {
    const random = prng(4);
    for (let i = 0; i < 40; i++) {
      const n = integer(random, 50, 10_000);
      const rate = uniform(random, 0.05, 0.5);
      const control = { n, sum: Math.round(n * rate), sumSquares: 0 };
      const prior =
        i % 2 ? { mean: uniform(random, -0.1, 0.1), variance: uniform(random, 0.001, 0.5) } : null;
      for (const scale of SCALES) {
        let previous = 0;
        const step = Math.max(1, Math.round((n * rate) / 100));
        for (
          let converted = Math.round(n * rate * 0.7);
          converted <= Math.min(n, n * rate * 1.3);
          converted += step
        ) {
          const result = compare(
            control,
            { n, sum: converted, sumSquares: 0 },
            { metricType: 'BINOMIAL', method: 'BAYESIAN', prior },
          );
          const effect = scale === 'ABSOLUTE' ? result.absoluteEffect! : result.relativeEffect!;
          expect(effect.chanceToWin!).toBeGreaterThanOrEqual(previous);
          previous = effect.chanceToWin!;
        }
      }
    }
  });

  it('sample size round-trips with power and with the minimum detectable effect', () => {
    const random = prng(5);
    for (let i = 0; i < CASES; i++) {
      const baseline: Baseline =
        i % 2
          ? { metricType: 'BINOMIAL', mean: uniform(random, 0.01, 0.6) }
          : { metricType: 'MEAN', mean: uniform(random, 1, 100), variance: uniform(random, 0.5, 5000) };
      const mde = uniform(random, 0.01, 0.4);
      const alpha = uniform(random, 0.001, 0.2);
      const target = uniform(random, 0.5, 0.99);
      const allocationRatio = i % 3 === 0 ? uniform(random, 0.25, 4) : 1;
      // Every planner: fixed horizon, always-valid (tuned anywhere), one-sided Bayesian; corrected or not.
      const options = {
        alpha,
        allocationRatio,
        variants: 3,
        method: STATS_METHODS[i % 3],
        correction: i % 4 === 0 ? ('HOLM' as const) : ('NONE' as const),
        sequentialTuning: integer(random, 100, 100_000),
      };
      const size = sampleSize(baseline, mde, { ...options, power: target });
      expect(size.reason).toBeNull();
      const achieved = power(baseline, mde, size.value!.unitsPerVariant, options);
      expect(achieved.value!).toBeGreaterThanOrEqual(target);
      expect(size.value!.totalUnits).toBe(
        size.value!.unitsPerVariant + 2 * size.value!.treatmentUnitsPerVariant,
      );
      const back = minimumDetectableEffect(baseline, size.value!.exactUnitsPerVariant, {
        ...options,
        power: target,
      });
      expect(back.value!).toBeCloseTo(mde, 8);
    }
  });

  it('never recommends fewer units than the analysis shows, and rejects impossible baselines', () => {
    const tight: Baseline = { metricType: 'MEAN', mean: 100, variance: 1 };
    // The formula asks for one unit; the engine's own floor is two (a variance needs them).
    expect(sampleSize(tight, 0.5).value!.unitsPerVariant).toBe(2);
    expect(sampleSize(tight, 0.5, { minimumUnits: 150 }).value).toMatchObject({
      unitsPerVariant: 150,
      totalUnits: 300,
    });
    // A rate of 1 has nowhere to go but down, and no spread to plan a test on; nor has a rate pushed to 1.
    for (const [rate, mde] of [
      [1, -0.2],
      [0.6, 0.8],
      [0.5, -1],
      [1.2, 0.1],
    ]) {
      expect(sampleSize({ metricType: 'BINOMIAL', mean: rate }, mde).reason).toBe('INVALID_INPUT');
    }
  });

  it('SEQUENTIAL needs more units than the fixed horizon, and fewer when tuned near its sample', () => {
    const baseline: Baseline = { metricType: 'BINOMIAL', mean: 0.1 };
    const fixed = sampleSize(baseline, 0.05).value!.unitsPerVariant;
    const sequential = sampleSize(baseline, 0.05, { method: 'SEQUENTIAL' }).value!.unitsPerVariant;
    const tuned = sampleSize(baseline, 0.05, { method: 'SEQUENTIAL', sequentialTuning: 2 * sequential })
      .value!.unitsPerVariant;
    expect(sequential).toBeGreaterThan(2 * fixed);
    expect(tuned).toBeLessThan(sequential);
    expect(tuned).toBeGreaterThan(fixed);
  });

  it('a correction splits alpha over the comparisons and needs more units', () => {
    const baseline: Baseline = { metricType: 'BINOMIAL', mean: 0.1 };
    const plain = sampleSize(baseline, 0.05, { variants: 4 }).value!;
    for (const correction of ['HOLM', 'BENJAMINI_HOCHBERG'] as const) {
      const corrected = sampleSize(baseline, 0.05, { variants: 4, correction }).value!;
      expect(corrected.alpha).toBeCloseTo(0.05 / 3, 15);
      expect(corrected.unitsPerVariant).toBeGreaterThan(plain.unitsPerVariant);
    }
    // Two variants: one comparison, nothing to split; Bayesian results have no p-values to correct.
    expect(sampleSize(baseline, 0.05, { correction: 'HOLM' }).value!.alpha).toBe(0.05);
    expect(
      sampleSize(baseline, 0.05, { variants: 4, correction: 'HOLM', method: 'BAYESIAN' }).value!.alpha,
    ).toBe(0.05);
  });
});
