/**
 * RATIO metrics (delta method) against NumPy/SciPy reference numbers computed from raw per-unit data
 * (ratio-vectors.json, made by generate-ratio-vectors.py), to 1e-6 relative; and the edge cases.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { analyze, type SufficientStats } from '../../../src/results/stats';

interface Case {
  confidenceLevel: number;
  control: SufficientStats;
  treatment: SufficientStats;
  expected: {
    controlRatio: number;
    treatmentRatio: number;
    controlStandardDeviation: number;
    absolute: { estimate: number; lower: number; upper: number; pValue: number };
    relative: { estimate: number; lower: number; upper: number; standardError: number };
  };
}

const vectors: { cases: Case[] } = JSON.parse(
  readFileSync(path.resolve(process.cwd(), 'tests/unit/stats/ratio-vectors.json'), 'utf8'),
);

const close = (actual: number | null | undefined, expected: number) => {
  expect(typeof actual).toBe('number');
  expect(Math.abs(actual! - expected)).toBeLessThanOrEqual(1e-6 * Math.max(Math.abs(expected), 1e-12));
};

const run = (c: Pick<Case, 'control' | 'treatment' | 'confidenceLevel'>) =>
  analyze({
    metricType: 'RATIO',
    method: 'FREQUENTIST',
    confidenceLevel: c.confidenceLevel,
    variants: [
      { ...c.control, id: 'a', weight: 1, isControl: true },
      { ...c.treatment, id: 'b', weight: 1, isControl: false },
    ],
  });

describe('RATIO metrics (delta method)', () => {
  it.each(vectors.cases.map((c, i) => [i, c] as const))(
    'matches the NumPy/SciPy reference, case %i',
    (_i, c) => {
      const result = run(c);
      const [control, treatment] = result.variants;
      close(control.mean, c.expected.controlRatio);
      close(treatment.mean, c.expected.treatmentRatio);
      close(control.standardDeviation, c.expected.controlStandardDeviation);
      close(treatment.absoluteEffect?.estimate, c.expected.absolute.estimate);
      close(treatment.absoluteEffect?.lower, c.expected.absolute.lower);
      close(treatment.absoluteEffect?.upper, c.expected.absolute.upper);
      close(treatment.pValue, c.expected.absolute.pValue);
      close(treatment.relativeEffect?.estimate, c.expected.relative.estimate);
      close(treatment.relativeEffect?.lower, c.expected.relative.lower);
      close(treatment.relativeEffect?.upper, c.expected.relative.upper);
      close(treatment.relativeEffect?.standardError, c.expected.relative.standardError);
      expect(treatment.conversions).toBeNull();
    },
  );

  it('a hand-computed case: x = [2, 4, 6], y = [1, 2, 2] per unit', () => {
    // r = 12/5 = 2.4; x̄ = 4, ȳ = 5/3; s²x = 4, s²y = 1/3, sxy = 1 (n − 1 = 2).
    // Var(r) = (1/3)·(4/ȳ² − 2·4·1/ȳ³ + 16·(1/3)/ȳ⁴) = (1/3)·(1.44 − 1.728 + 0.6912) = 0.1344.
    const arm = {
      n: 3,
      sum: 12,
      sumSquares: 56,
      ratio: { sumDenominator: 5, sumDenominatorSquares: 9, sumProducts: 22 },
    };
    const [a] = run({ control: arm, treatment: arm, confidenceLevel: 0.95 }).variants;
    expect(a.mean).toBeCloseTo(2.4, 12);
    expect(a.standardDeviation).toBeCloseTo(Math.sqrt(0.1344 * 3), 12);
  });

  it('an arm without denominator says DENOMINATOR_ZERO; missing ratio sums are INVALID_INPUT', () => {
    const good = {
      n: 200,
      sum: 300,
      sumSquares: 900,
      ratio: { sumDenominator: 150, sumDenominatorSquares: 200, sumProducts: 400 },
    };
    const none = {
      n: 200,
      sum: 0,
      sumSquares: 0,
      ratio: { sumDenominator: 0, sumDenominatorSquares: 0, sumProducts: 0 },
    };
    const r = run({ control: none, treatment: good, confidenceLevel: 0.95 });
    expect(r.variants[1].reason).toBe('DENOMINATOR_ZERO');
    expect(r.variants[1].pValue).toBeNull();
    const bad = run({ control: { n: 200, sum: 1, sumSquares: 1 }, treatment: good, confidenceLevel: 0.95 });
    expect(r.variants[0].mean).toBeNull();
    expect(bad.variants[1].reason).toBe('INVALID_INPUT');
  });
});
