import { describe, expect, it } from '@jest/globals';
import {
  type AnalyzeInput,
  analyze,
  compare,
  minimumDetectableEffect,
  power,
  STATS_METHODS,
  type StatsMethod,
  sampleRatioMismatch,
  sampleSize,
  type VariantInput,
} from '../../../src/results/stats';

/** Every number anywhere in the value is finite: no NaN or Infinity leaks out of the engine. */
function expectAllFinite(value: unknown, where = 'result'): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`${where} is ${value}`);
  } else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) expectAllFinite(v, `${where}[${i}]`);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) expectAllFinite(v, `${where}.${k}`);
  }
}

const variant = (
  id: string,
  n: number,
  sum: number,
  sumSquares: number,
  isControl = false,
): VariantInput => ({
  id,
  weight: 1,
  n,
  sum,
  sumSquares,
  isControl,
});
const conversions = (id: string, n: number, converted: number, isControl = false) =>
  variant(id, n, converted, converted, isControl);

function analyzeAll(input: Omit<AnalyzeInput, 'method'>) {
  return STATS_METHODS.map((method: StatsMethod) => {
    const result = analyze({ ...input, method });
    expectAllFinite(result);
    return result;
  });
}

describe('edge cases return a reason, never NaN or a throw', () => {
  it('NO_UNITS: a treatment without units', () => {
    for (const result of analyzeAll({
      metricType: 'MEAN',
      variants: [variant('a', 100, 500, 3000, true), variant('b', 0, 0, 0)],
    })) {
      const b = result.variants[1];
      expect(b.reason).toBe('NO_UNITS');
      expect(b).toMatchObject({
        absoluteEffect: null,
        relativeEffect: null,
        pValue: null,
        significant: null,
      });
      expect(b.mean).toBeNull();
      expect(b.units).toBe(0);
    }
  });

  it('NO_UNITS: a control without units affects every treatment', () => {
    for (const result of analyzeAll({
      metricType: 'BINOMIAL',
      variants: [conversions('a', 0, 0, true), conversions('b', 100, 10), conversions('c', 100, 12)],
    })) {
      expect(result.variants.map((v) => v.reason)).toEqual(['NO_UNITS', 'NO_UNITS', 'NO_UNITS']);
      expect(result.variants[1].mean).toBeCloseTo(0.1, 12);
    }
  });

  it('TOO_FEW_UNITS: a single unit', () => {
    for (const result of analyzeAll({
      metricType: 'MEAN',
      variants: [variant('a', 100, 500, 3000, true), variant('b', 1, 5, 25)],
    })) {
      expect(result.variants[1].reason).toBe('TOO_FEW_UNITS');
      expect(result.variants[1].mean).toBe(5);
      expect(result.variants[1].standardDeviation).toBeNull();
    }
  });

  it('ZERO_VARIANCE: constant values in both arms', () => {
    for (const result of analyzeAll({
      metricType: 'MEAN',
      // Every unit in a is 0.1 and every unit in b is 0.3: the sums carry only rounding error.
      variants: [
        variant('a', 30, 30 * 0.1, 30 * 0.1 * 0.1, true),
        variant('b', 70, 70 * 0.3, 70 * 0.3 * 0.3),
      ],
    })) {
      expect(result.variants[1].reason).toBe('ZERO_VARIANCE');
      expect(result.variants[1].standardDeviation).toBe(0);
    }
  });

  it('ZERO_VARIANCE: no conversions anywhere', () => {
    for (const result of analyzeAll({
      metricType: 'BINOMIAL',
      variants: [conversions('a', 500, 0, true), conversions('b', 500, 0)],
    })) {
      expect(result.variants[1].reason).toBe('ZERO_VARIANCE');
    }
  });

  it('ZERO_VARIANCE on the relative scale only: treatment constant at zero', () => {
    const result = compare(
      { n: 100, sum: 5, sumSquares: 5 },
      { n: 100, sum: 0, sumSquares: 0 },
      { metricType: 'BINOMIAL', method: 'FREQUENTIST' },
    );
    expect(result.absoluteEffect).not.toBeNull();
    expect(result.relativeEffect).toBeNull();
    expect(result.reason).toBe('ZERO_VARIANCE');
  });

  it('CONTROL_MEAN_ZERO: absolute effect and decision still computed, on the absolute scale', () => {
    for (const [i, result] of analyzeAll({
      metricType: 'BINOMIAL',
      variants: [conversions('a', 1000, 0, true), conversions('b', 1000, 12)],
    }).entries()) {
      const b = result.variants[1];
      if (STATS_METHODS[i] === 'BAYESIAN') {
        // A constant arm (no conversion) gives a normal posterior nothing to work with.
        expect(b).toMatchObject({ reason: 'ZERO_VARIANCE', chanceToWin: null, differenceType: null });
        continue;
      }
      expect(b.reason).toBe('CONTROL_MEAN_ZERO');
      expect(b.relativeEffect).toBeNull();
      expect(b.absoluteEffect!.estimate).toBeCloseTo(0.012, 12);
      expect(b.differenceType).toBe('ABSOLUTE');
      expect(b.pValue).toBeLessThan(0.05);
    }
    // A MEAN metric whose control values cancel out keeps its Bayesian decision on the absolute scale.
    const [, bayesian] = analyzeAll({
      metricType: 'MEAN',
      variants: [variant('a', 200, 0, 200, true), variant('b', 200, 60, 240)],
    });
    expect(bayesian.variants[1]).toMatchObject({ reason: 'CONTROL_MEAN_ZERO', differenceType: 'ABSOLUTE' });
    expect(bayesian.variants[1].chanceToWin).toBeGreaterThan(0.99);
  });

  it('CONTROL_MEAN_ZERO for a mean metric whose values cancel out', () => {
    const result = compare(
      { n: 10, sum: 0, sumSquares: 10 },
      { n: 10, sum: 3, sumSquares: 12 },
      { metricType: 'MEAN', method: 'FREQUENTIST' },
    );
    expect(result.reason).toBe('CONTROL_MEAN_ZERO');
    expect(result.absoluteEffect!.estimate).toBeCloseTo(0.3, 12);
  });

  it('CONTROL_MEAN_ZERO: a relative prior cannot be rescaled to the absolute scale', () => {
    const result = compare(
      { n: 1000, sum: 0, sumSquares: 0 },
      { n: 1000, sum: 12, sumSquares: 12 },
      { metricType: 'BINOMIAL', method: 'BAYESIAN', prior: { mean: 0, variance: 0.09 } },
    );
    expect(result).toEqual({ absoluteEffect: null, relativeEffect: null, reason: 'CONTROL_MEAN_ZERO' });
  });

  it('SINGLE_VARIANT: no comparison and no SRM', () => {
    for (const result of analyzeAll({ metricType: 'MEAN', variants: [variant('a', 100, 500, 3000, true)] })) {
      expect(result.reason).toBe('SINGLE_VARIANT');
      expect(result.srm).toMatchObject({ reason: 'SINGLE_VARIANT', mismatch: false, pValue: null });
      expect(result.variants[0]).toMatchObject({ reason: 'SINGLE_VARIANT', units: 100, mean: 5 });
    }
  });

  it('NO_CONTROL and MULTIPLE_CONTROLS', () => {
    const [none] = analyzeAll({
      metricType: 'MEAN',
      variants: [variant('a', 100, 500, 3000), variant('b', 100, 500, 3000)],
    });
    expect(none.reason).toBe('NO_CONTROL');
    expect(none.variants.every((v) => v.reason === 'NO_CONTROL')).toBe(true);
    // SRM does not depend on which variant is the control.
    expect(none.srm.pValue).toBe(1);
    const [two] = analyzeAll({
      metricType: 'MEAN',
      variants: [variant('a', 100, 500, 3000, true), variant('b', 100, 500, 3000, true)],
    });
    expect(two.reason).toBe('MULTIPLE_CONTROLS');
  });

  it('INVALID_INPUT: impossible statistics and options', () => {
    const bad = [
      conversions('nan', Number.NaN, 0),
      conversions('negative', -5, 0),
      conversions('fraction', 10.5, 1),
      conversions('too-many', 10, 11),
    ];
    for (const b of bad) {
      for (const result of analyzeAll({
        metricType: 'BINOMIAL',
        variants: [conversions('a', 100, 10, true), b],
      })) {
        expect(result.variants[1].reason).toBe('INVALID_INPUT');
        expect(result.variants[1].units).toBeNull();
        expect(result.srm.reason).toBe('INVALID_INPUT');
      }
    }
    const inconsistent = compare(
      { n: 10, sum: 100, sumSquares: 50 },
      { n: 10, sum: 10, sumSquares: 20 },
      { metricType: 'MEAN', method: 'FREQUENTIST' },
    );
    expect(inconsistent.reason).toBe('INVALID_INPUT');
    for (const confidenceLevel of [0, 1, 1.5, Number.NaN]) {
      const result = analyze({
        metricType: 'MEAN',
        method: 'FREQUENTIST',
        confidenceLevel,
        variants: [variant('a', 100, 500, 3000, true), variant('b', 100, 520, 3100)],
      });
      expect(result.reason).toBe('INVALID_INPUT');
      expectAllFinite(result);
    }
    expect(
      compare(
        { n: 100, sum: 5, sumSquares: 5 },
        { n: 100, sum: 7, sumSquares: 7 },
        {
          metricType: 'BINOMIAL',
          method: 'SEQUENTIAL',
          sequentialTuning: 0,
        },
      ).reason,
    ).toBe('INVALID_INPUT');
    expect(
      compare(
        { n: 100, sum: 5, sumSquares: 5 },
        { n: 100, sum: 7, sumSquares: 7 },
        {
          metricType: 'BINOMIAL',
          method: 'BAYESIAN',
          prior: { mean: 0, variance: 0 },
        },
      ).reason,
    ).toBe('INVALID_INPUT');
  });

  it('SRM: weights that cannot be normalised, and units in a zero-weight arm', () => {
    expect(sampleRatioMismatch([10, 10], [0, 0]).reason).toBe('INVALID_WEIGHTS');
    expect(sampleRatioMismatch([10, 10], [1, -1]).reason).toBe('INVALID_WEIGHTS');
    expect(sampleRatioMismatch([10, 10, 0], [1, 1]).reason).toBe('INVALID_INPUT');
    expect(sampleRatioMismatch([0, 0], [1, 1]).reason).toBe('NO_UNITS');
    expect(sampleRatioMismatch([500, 3], [1, 0])).toMatchObject({
      reason: 'ZERO_WEIGHT_WITH_UNITS',
      mismatch: true,
      pValue: 0,
      chiSquare: null,
    });
    // A zero-weight arm without units just drops out of the test.
    const dropped = sampleRatioMismatch([5000, 5100, 0], [1, 1, 0]);
    expect(dropped.pValue).toBeCloseTo(0.3197, 4);
    expect(dropped.expected).toEqual([5050, 5050, 0]);
    for (const r of [
      sampleRatioMismatch([10, 10], [0, 0]),
      sampleRatioMismatch([Number.NaN, 3], [1, 1]),
      sampleRatioMismatch([500, 3], [1, 0]),
    ]) {
      expectAllFinite(r);
    }
  });

  it('SRM weights are normalised', () => {
    const a = sampleRatioMismatch([5000, 5100], [0.5, 0.5]);
    const b = sampleRatioMismatch([5000, 5100], [50, 50]);
    expect(b).toEqual(a);
    expect(a.expected).toEqual([5050, 5050]);
    expect(sampleRatioMismatch([5000, 5600], [1, 1]).mismatch).toBe(true);
  });

  it('power analysis edge cases', () => {
    expect(power({ metricType: 'MEAN', mean: 0, variance: 4 }, 0.1, 1000).reason).toBe('CONTROL_MEAN_ZERO');
    expect(power({ metricType: 'MEAN', mean: 3, variance: 0 }, 0.1, 1000).reason).toBe('ZERO_VARIANCE');
    expect(power({ metricType: 'MEAN', mean: 3 }, 0.1, 1000).reason).toBe('INVALID_INPUT');
    expect(power({ metricType: 'MEAN', mean: 3, variance: 4 }, 0.1, 0).reason).toBe('NO_UNITS');
    expect(power({ metricType: 'BINOMIAL', mean: 0.6 }, 1, 1000).reason).toBe('INVALID_INPUT');
    expect(sampleSize({ metricType: 'BINOMIAL', mean: 0.1 }, 0.1, { variants: 1 }).reason).toBe(
      'SINGLE_VARIANT',
    );
    expect(sampleSize({ metricType: 'BINOMIAL', mean: 0.1 }, 0).reason).toBe('INVALID_INPUT');
    expect(sampleSize({ metricType: 'BINOMIAL', mean: 0.1 }, 0.1, { power: 1 }).reason).toBe('INVALID_INPUT');
    expect(minimumDetectableEffect({ metricType: 'BINOMIAL', mean: 0.95 }, 3).reason).toBe('TOO_FEW_UNITS');
    expect(minimumDetectableEffect({ metricType: 'BINOMIAL', mean: 0 }, 3000).reason).toBe(
      'CONTROL_MEAN_ZERO',
    );
    // A vanishing effect needs an unbounded sample: reported, not returned as Infinity.
    expect(sampleSize({ metricType: 'MEAN', mean: 1, variance: 1 }, 1e-300).reason).toBe('NON_FINITE_RESULT');
  });
});
