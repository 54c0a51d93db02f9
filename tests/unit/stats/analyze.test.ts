import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import {
  analyze,
  CORRECTIONS,
  compare,
  difference,
  holm,
  METRIC_TYPES,
  STATS_METHODS,
  sequentialHalfWidth,
  sequentialRho,
  summarize,
  type VariantInput,
} from '../../../src/results/stats';

const binomial = (id: string, n: number, converted: number, isControl = false, weight = 1): VariantInput => ({
  id,
  weight,
  n,
  sum: converted,
  sumSquares: converted,
  isControl,
});

const fourArms = [
  binomial('control', 10_000, 1000, true),
  binomial('b', 10_000, 1090),
  binomial('c', 10_000, 1040),
  binomial('d', 10_000, 985),
];

describe('analyze()', () => {
  it('exports one tuple per enum', () => {
    expect(METRIC_TYPES).toEqual(['BINOMIAL', 'MEAN', 'RATIO']);
    expect(STATS_METHODS).toEqual(['FREQUENTIST', 'BAYESIAN', 'SEQUENTIAL']);
    expect(CORRECTIONS).toEqual(['NONE', 'HOLM', 'BENJAMINI_HOCHBERG']);
  });

  it('describes the control without comparing it to itself', () => {
    const result = analyze({ metricType: 'BINOMIAL', method: 'FREQUENTIST', variants: fourArms });
    expect(result.reason).toBeNull();
    expect(result.variants[0]).toEqual({
      id: 'control',
      isControl: true,
      units: 10_000,
      mean: 0.1,
      standardDeviation: expect.closeTo(0.3, 12),
      conversions: 1000,
      absoluteEffect: null,
      relativeEffect: null,
      differenceType: null,
      pValue: null,
      adjustedPValue: null,
      significant: null,
      chanceToWin: null,
      risk: null,
      cupedTheta: null,
      varianceReduction: null,
      covariateBalancePValue: null,
      reason: null,
    });
    expect(result.variants[1].conversions).toBe(1090);
    expect(result.srm).toMatchObject({ reason: null, mismatch: false, pValue: 1, chiSquare: 0 });
  });

  it('applies the correction over its own treatments and decides significance on the adjusted p-value', () => {
    const plain = analyze({ metricType: 'BINOMIAL', method: 'FREQUENTIST', variants: fourArms });
    const corrected = analyze({
      metricType: 'BINOMIAL',
      method: 'FREQUENTIST',
      correction: 'HOLM',
      variants: fourArms,
    });
    const raw = plain.variants.slice(1).map((v) => v.pValue!);
    expect(plain.variants.slice(1).map((v) => v.adjustedPValue)).toEqual(raw);
    expect(corrected.variants.slice(1).map((v) => v.adjustedPValue)).toEqual(holm(raw));
    for (const v of corrected.variants.slice(1)) expect(v.significant).toBe(v.adjustedPValue! < 0.05);
  });

  it('decides on the absolute scale: the Welch test of the difference of means', () => {
    const result = analyze({ metricType: 'BINOMIAL', method: 'FREQUENTIST', variants: fourArms });
    for (const [i, v] of result.variants.slice(1).entries()) {
      const gbstats = compare(fourArms[0], fourArms[i + 1], {
        metricType: 'BINOMIAL',
        method: 'FREQUENTIST',
      });
      expect(v.differenceType).toBe('ABSOLUTE');
      expect(v.pValue).toBe(gbstats.absoluteEffect!.pValue);
      expect(v.absoluteEffect).toEqual(gbstats.absoluteEffect);
      // The lift and its standard error stay GrowthBook's delta-method estimate; only the interval changes.
      expect(v.relativeEffect!.estimate).toBe(gbstats.relativeEffect!.estimate);
      expect(v.relativeEffect!.standardError).toBe(gbstats.relativeEffect!.standardError);
    }
  });

  it('Bayesian: no p-values; significance from chance to win against the confidence level', () => {
    const result = analyze({
      metricType: 'BINOMIAL',
      method: 'BAYESIAN',
      correction: 'HOLM',
      variants: fourArms,
    });
    for (const v of result.variants.slice(1)) {
      expect(v.pValue).toBeNull();
      expect(v.adjustedPValue).toBeNull();
      expect(v.significant).toBe(v.chanceToWin! > 0.95);
      expect(v.risk).toEqual(v.absoluteEffect!.risk);
      expect(v.differenceType).toBe('ABSOLUTE');
    }
    expect(result.variants[1].significant).toBe(true);
    expect(result.variants[3].significant).toBe(false);
  });

  it('Sequential intervals are wider than fixed-horizon ones for the same data', () => {
    const options = { metricType: 'BINOMIAL' as const, variants: fourArms };
    const fixed = analyze({ ...options, method: 'FREQUENTIST' }).variants[1].relativeEffect!;
    const sequential = analyze({ ...options, method: 'SEQUENTIAL' }).variants[1].relativeEffect!;
    expect(sequential.upper - sequential.lower).toBeGreaterThan(fixed.upper - fixed.lower);
    expect(sequential.pValue!).toBeGreaterThan(fixed.pValue!);
  });

  it('flags SRM when allocation departs from the configured weights', () => {
    const result = analyze({
      metricType: 'BINOMIAL',
      method: 'FREQUENTIST',
      variants: [binomial('control', 5000, 500, true, 0.2), binomial('b', 21_000, 2100, false, 0.8)],
    });
    expect(result.srm.expected).toEqual([5200, 20800]);
    expect(result.srm.pValue!).toBeLessThan(0.01);
    expect(result.srm.mismatch).toBe(false);
    const skewed = analyze({
      metricType: 'BINOMIAL',
      method: 'FREQUENTIST',
      variants: [binomial('control', 5000, 500, true, 0.2), binomial('b', 22_000, 2200, false, 0.8)],
    });
    expect(skewed.srm.mismatch).toBe(true);
  });
});

describe('sequential p-value', () => {
  // Smallest alpha whose interval (ρ tuned at the configured alpha, as gbstats does) excludes 0, by bisection.
  function bisectedPValue(estimate: number, variance: number, totalUnits: number, rho: number): number {
    if (Math.abs(estimate) <= sequentialHalfWidth(variance, totalUnits, 1, rho)) return 1;
    let lo = 0;
    let hi = 1;
    for (let i = 0; i < 200; i++) {
      const mid = (lo + hi) / 2;
      if (Math.abs(estimate) > sequentialHalfWidth(variance, totalUnits, mid, rho)) hi = mid;
      else lo = mid;
    }
    return hi;
  }

  it.each([
    [1000, 100, 1000, 130, 5000],
    [20_000, 2000, 20_000, 2150, 5000],
    [20_000, 2000, 20_000, 2400, 1000],
    [3000, 300, 3400, 345, 10_000],
  ])('equals the smallest alpha excluding 0 (%i/%i vs %i/%i, N*=%i)', (nA, cA, nB, cB, tuning) => {
    const a = summarize({ n: nA, sum: cA, sumSquares: cA }, 'BINOMIAL').value!;
    const b = summarize({ n: nB, sum: cB, sumSquares: cB }, 'BINOMIAL').value!;
    const diff = difference(a, b, 'RELATIVE').value!;
    const result = compare(
      { n: nA, sum: cA, sumSquares: cA },
      { n: nB, sum: cB, sumSquares: cB },
      { metricType: 'BINOMIAL', method: 'SEQUENTIAL', sequentialTuning: tuning },
    ).relativeEffect!;
    const expected = bisectedPValue(
      diff.estimate,
      diff.variance,
      diff.totalUnits,
      sequentialRho(0.05, tuning),
    );
    expect(Math.abs(result.pValue! - expected)).toBeLessThan(1e-12);
  });
});

describe('purity', () => {
  it('src/results/stats imports only its own files, node built-ins excluded, and @stdlib', () => {
    const dir = path.resolve(process.cwd(), 'src/results/stats');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const source = readFileSync(path.join(dir, file), 'utf8');
      for (const [, specifier] of source.matchAll(/from\s+'([^']+)'/g)) {
        expect(`${file}: ${specifier}`).toMatch(/: (\.\/[\w-]+|@stdlib\/[\w-]+)$/);
      }
    }
  });
});
