import { describe, expect, it } from '@jest/globals';
import {
  analyze,
  benjaminiHochberg,
  compare,
  holm,
  sampleRatioMismatch,
  type StatsMethod,
  type SufficientStats,
} from '../../../src/results/stats';
import { readFixture } from '../../support/fixtures';

// Published vectors from GrowthBook's and PostHog's test suites (source and licences in the file).
const reference = readFixture<any>('statistics.json');
const TOLERANCE = 1e-4;

type RefArm = { sum?: number; sum_squares?: number; n: number; conversions?: number };

const isBinomial = (arm: RefArm) => arm.conversions !== undefined;
const toStats = (arm: RefArm): SufficientStats =>
  isBinomial(arm)
    ? { n: arm.n, sum: arm.conversions!, sumSquares: arm.conversions! }
    : { n: arm.n, sum: arm.sum!, sumSquares: arm.sum_squares! };

function expectClose(actual: number | null | undefined, expected: number, tolerance = TOLERANCE) {
  expect(typeof actual).toBe('number');
  expect(Math.abs((actual as number) - expected)).toBeLessThanOrEqual(tolerance);
}

function run(
  testCase: { control: RefArm; treatment: RefArm },
  method: StatsMethod,
  sequentialTuning?: number,
) {
  return compare(toStats(testCase.control), toStats(testCase.treatment), {
    metricType: isBinomial(testCase.control) ? 'BINOMIAL' : 'MEAN',
    method,
    sequentialTuning,
  });
}

describe('reference vectors: frequentist', () => {
  it.each(reference.frequentist.map((c: any) => [c.case, c]))('%s', (_name, testCase: any) => {
    const result = run(testCase, 'FREQUENTIST');
    const { expected } = testCase;
    const effect = 'relative_effect' in expected ? result.relativeEffect : result.absoluteEffect;
    expect(effect).not.toBeNull();
    expectClose(effect!.estimate, expected.relative_effect ?? expected.absolute_effect);
    expectClose(effect!.lower, expected.ci[0]);
    expectClose(effect!.upper, expected.ci[1]);
    expectClose(effect!.pValue, expected.p_value);
  });
});

describe('reference vectors: sequential', () => {
  it.each(reference.sequential.map((c: any) => [c.case, c]))('%s', (_name, testCase: any) => {
    const tuning = Number(/N\* = (\d+)/.exec(testCase.case)![1]);
    const result = run(testCase, 'SEQUENTIAL', tuning);
    expectClose(result.relativeEffect!.lower, testCase.expected.ci[0]);
    expectClose(result.relativeEffect!.upper, testCase.expected.ci[1]);
    expectClose(result.relativeEffect!.pValue, testCase.expected.p_value);
  });
});

describe('reference vectors: bayesian (relative scale, flat prior)', () => {
  it.each(reference.bayesian.map((c: any) => [c.case, c]))('%s', (_name, testCase: any) => {
    const effect = run(testCase, 'BAYESIAN').relativeEffect!;
    const { expected } = testCase;
    if (expected.expected_lift !== undefined) expectClose(effect.estimate, expected.expected_lift);
    if (expected.ci) {
      expectClose(effect.lower, expected.ci[0]);
      expectClose(effect.upper, expected.ci[1]);
    }
    expectClose(effect.chanceToWin, expected.chance_to_win);
    expectClose(effect.risk![0], expected.risk[0]);
    expectClose(effect.risk![1], expected.risk[1]);
  });

  it('reports the same numbers through analyze()', () => {
    const testCase = reference.bayesian[0];
    const result = analyze({
      metricType: 'BINOMIAL',
      method: 'BAYESIAN',
      variants: [
        { id: 'control', weight: 1, isControl: true, ...toStats(testCase.control) },
        { id: 'treatment', weight: 1, isControl: false, ...toStats(testCase.treatment) },
      ],
    });
    // analyze() decides on the absolute scale; its relativeEffect is GrowthBook's relative posterior.
    const treatment = result.variants[1].relativeEffect!;
    expectClose(treatment.chanceToWin, testCase.expected.chance_to_win);
    expectClose(treatment.risk![0], testCase.expected.risk[0]);
    expectClose(treatment.risk![1], testCase.expected.risk[1]);
    expect(result.variants[1].differenceType).toBe('ABSOLUTE');
  });
});

describe('reference vectors: sample ratio mismatch', () => {
  it.each(reference.srm.cases.map((c: any) => [c.observed.join('/'), c]))('%s', (_name, testCase: any) => {
    const result = sampleRatioMismatch(testCase.observed, testCase.weights);
    expectClose(result.pValue, testCase.expected_p_value);
    expect(result.mismatch).toBe(testCase.expected_p_value < 0.001);
  });
});

describe('reference vectors: multiple comparisons', () => {
  it('Holm-Bonferroni', () => {
    const { p_values, adjusted } = reference.multiple_comparisons.holm;
    for (const [i, p] of holm(p_values as number[]).entries()) expectClose(p, adjusted[i]);
  });

  it('Benjamini-Hochberg', () => {
    const { p_values, adjusted } = reference.multiple_comparisons.benjamini_hochberg;
    for (const [i, p] of benjaminiHochberg(p_values as number[]).entries()) expectClose(p, adjusted[i]);
  });
});
