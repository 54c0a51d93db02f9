/**
 * CUPED against gbstats' regression-adjusted arithmetic: reference numbers from raw units
 * (tests/fixtures/cuped-gbstats.json, made by generate-cuped-vectors.py) to 1e-6 relative, gbstats' own
 * published regression-adjusted sequential vector to its 5 decimals, and what the engine reports around them.
 */
import { describe, expect, it } from '@jest/globals';
import { analyze, compare, type MetricType, type SufficientStats } from '../../../src/results/stats';
import { readFixture } from '../../support/fixtures';

interface Effect {
  estimate?: number;
  standardError?: number;
  lower: number;
  upper: number;
  pValue: number;
}
interface Case {
  name: string;
  metricType: MetricType;
  confidenceLevel: number;
  sequentialTuning: number;
  control: SufficientStats;
  treatment: SufficientStats;
  expected: {
    theta: number;
    varianceReduction: number;
    frequentist: { absolute: Effect; relative: Effect };
    sequential: { absolute: Effect; relative: Effect };
  };
}

const vectors = readFixture<{ cases: Case[]; published: Case }>('cuped-gbstats.json');

const close = (actual: number | null | undefined, expected: number, tolerance = 1e-6) => {
  expect(typeof actual).toBe('number');
  expect(Math.abs(actual! - expected)).toBeLessThanOrEqual(tolerance * Math.max(Math.abs(expected), 1));
};

const closeEffect = (actual: Record<string, unknown> | null, expected: Effect, tolerance = 1e-6) => {
  expect(actual).not.toBeNull();
  for (const [k, v] of Object.entries(expected)) close(actual![k] as number, v, tolerance);
};

describe('CUPED (regression adjustment) against gbstats', () => {
  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    for (const method of ['FREQUENTIST', 'SEQUENTIAL'] as const) {
      const result = compare(c.control, c.treatment, {
        metricType: c.metricType,
        method,
        confidenceLevel: c.confidenceLevel,
        sequentialTuning: c.sequentialTuning,
      });
      const expected = method === 'FREQUENTIST' ? c.expected.frequentist : c.expected.sequential;
      closeEffect(result.absoluteEffect as never, expected.absolute);
      closeEffect(result.relativeEffect as never, expected.relative);
    }
    const analysis = analyze({
      metricType: c.metricType,
      method: 'FREQUENTIST',
      confidenceLevel: c.confidenceLevel,
      variants: [
        { ...c.control, id: 'a', weight: 1, isControl: true },
        { ...c.treatment, id: 'b', weight: 1, isControl: false },
      ],
    });
    const treatment = analysis.variants[1];
    close(treatment.cupedTheta, c.expected.theta);
    close(treatment.varianceReduction, c.expected.varianceReduction);
    // The decision's absolute interval and p-value are gbstats' Welch test on the adjusted difference.
    closeEffect(treatment.absoluteEffect as never, c.expected.frequentist.absolute);
    close(treatment.relativeEffect?.estimate, c.expected.frequentist.relative.estimate!);
    close(treatment.relativeEffect?.standardError, c.expected.frequentist.relative.standardError!);
  });

  it('reproduces gbstats’ published regression-adjusted sequential result', () => {
    const c = vectors.published;
    const result = compare(c.control, c.treatment, {
      metricType: 'MEAN',
      method: 'SEQUENTIAL',
      sequentialTuning: c.sequentialTuning,
    });
    const { lower, upper, estimate, standardError, pValue } = c.expected.sequential.relative;
    const r = result.relativeEffect!;
    for (const [actual, expected] of [
      [r.estimate, estimate!],
      [r.standardError, standardError!],
      [r.lower, lower],
      [r.upper, upper],
      [r.pValue, pValue],
    ] as const)
      expect(Math.abs(actual! - expected)).toBeLessThanOrEqual(5e-6);
  });

  it('without covariates, or with nothing to adjust by, the analysis is the unadjusted one', () => {
    const c = vectors.cases[0];
    const plain = { ...c.control, covariate: null };
    const plainT = { ...c.treatment, covariate: null };
    const options = { metricType: 'MEAN' as const, method: 'FREQUENTIST' as const };
    const unadjusted = compare(plain, plainT, options);
    expect(compare(c.control, plainT, options)).toEqual(unadjusted);
    // A constant covariate (θ = 0): gbstats falls back to the unadjusted statistics.
    const constant = (s: SufficientStats) => ({
      ...s,
      covariate: { sum: 3 * s.n, sumSquares: 9 * s.n, sumProducts: 3 * s.sum },
    });
    expect(compare(constant(c.control), constant(c.treatment), options)).toEqual(unadjusted);
    const analysis = analyze({
      ...options,
      variants: [
        { ...constant(c.control), id: 'a', weight: 1, isControl: true },
        { ...constant(c.treatment), id: 'b', weight: 1, isControl: false },
      ],
    });
    expect(analysis.variants[1].cupedTheta).toBeNull();
    expect(analysis.variants[1].varianceReduction).toBeNull();
  });

  it('reports the covariate balance between arms, and Bayesian analyses adjust too', () => {
    const c = vectors.cases[1];
    const variants = [
      { ...c.control, id: 'a', weight: 1, isControl: true },
      { ...c.treatment, id: 'b', weight: 1, isControl: false },
    ];
    const freq = analyze({ metricType: 'MEAN', method: 'FREQUENTIST', variants });
    const p = freq.variants[1].covariateBalancePValue;
    expect(p).toBeGreaterThan(0.001);
    expect(freq.variants[0].covariateBalancePValue).toBeNull();
    const bayes = analyze({ metricType: 'MEAN', method: 'BAYESIAN', variants });
    const b = bayes.variants[1];
    close(b.absoluteEffect?.estimate, c.expected.frequentist.absolute.estimate!);
    close(b.absoluteEffect?.standardError, c.expected.frequentist.absolute.standardError!);
    expect(b.chanceToWin).not.toBeNull();
    close(b.varianceReduction, c.expected.varianceReduction);
  });
});
