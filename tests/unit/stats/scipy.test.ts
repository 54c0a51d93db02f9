import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  benjaminiHochberg,
  type Baseline,
  chiSquareQuantile,
  chiSquareSf,
  analyze,
  compare,
  type EffectResult,
  fiellerRatio,
  holm,
  minimumDetectableEffect,
  moverRatio,
  newcombeDifference,
  newcombeNullCritical,
  normalCdf,
  normalQuantile,
  normalTwoSidedPValue,
  power,
  sampleRatioMismatch,
  sampleSize,
  tCdf,
  tQuantile,
  wilsonInterval,
} from '../../../src/results/stats';

// Produced by generate-scipy-vectors.py (SciPy 1.10 / statsmodels 0.13); see the fixture's "comment".
const vectors = JSON.parse(
  readFileSync(path.resolve(process.cwd(), 'tests/unit/stats/scipy-vectors.json'), 'utf8'),
);

const RELATIVE_TOLERANCE = 1e-6;
// Zero-valued references (e.g. a p-value that underflows) are compared absolutely.
const ABSOLUTE_FLOOR = 1e-12;
let largestDeviation = 0;

function expectRelClose(actual: number | null | undefined, expected: number, tolerance = RELATIVE_TOLERANCE) {
  expect(typeof actual).toBe('number');
  const error = Math.abs((actual as number) - expected);
  if (Math.abs(expected) > ABSOLUTE_FLOOR && tolerance === RELATIVE_TOLERANCE) {
    largestDeviation = Math.max(largestDeviation, error / Math.abs(expected));
  }
  expect(error).toBeLessThanOrEqual(Math.max(tolerance * Math.abs(expected), ABSOLUTE_FLOOR));
}

function expectEffect(
  effect: EffectResult | null,
  expected: { estimate: number; lower: number; upper: number; pValue: number },
) {
  expect(effect).not.toBeNull();
  expectRelClose(effect!.estimate, expected.estimate);
  expectRelClose(effect!.lower, expected.lower);
  expectRelClose(effect!.upper, expected.upper);
  expectRelClose(effect!.pValue, expected.pValue);
}

const binomialStats = (arm: { n: number; conversions: number }) => ({
  n: arm.n,
  sum: arm.conversions,
  sumSquares: arm.conversions,
});

afterAll(() => {
  // Checked as well as asserted per value, so the fixture's worst case stays visible in failures.
  expect(largestDeviation).toBeLessThan(RELATIVE_TOLERANCE);
});

describe('SciPy: Welch t-test on means (ttest_ind_from_stats)', () => {
  it.each(vectors.means.map((c: any, i: number) => [i, c]))('case %i', (_i, c: any) => {
    const result = compare(c.control, c.treatment, {
      metricType: 'MEAN',
      method: 'FREQUENTIST',
      confidenceLevel: c.confidenceLevel,
    });
    expectEffect(result.absoluteEffect, c.absolute);
    expectEffect(result.relativeEffect, c.relative);
  });
});

describe('SciPy/statsmodels: proportions', () => {
  it.each(vectors.binomial.map((c: any, i: number) => [i, c]))('case %i', (_i, c: any) => {
    const result = compare(binomialStats(c.control), binomialStats(c.treatment), {
      metricType: 'BINOMIAL',
      method: 'FREQUENTIST',
      confidenceLevel: c.confidenceLevel,
    });
    expectEffect(result.absoluteEffect, c.absolute);
    expectEffect(result.relativeEffect, c.relative);
    // The statistic is statsmodels' unpooled Wald z; only the reference distribution (Welch t) differs.
    const statistic = result.absoluteEffect!.estimate / result.absoluteEffect!.standardError;
    expectRelClose(statistic, c.wald.statistic);
    expectRelClose(normalTwoSidedPValue(statistic), c.wald.pValue);
  });
});

describe('SciPy: Bayesian normal posterior (norm, truncnorm risk)', () => {
  it.each(vectors.bayesian.map((c: any, i: number) => [i, c]))('case %i', (_i, c: any) => {
    const effect = compare(binomialStats(c.control), binomialStats(c.treatment), {
      metricType: 'BINOMIAL',
      method: 'BAYESIAN',
      confidenceLevel: c.confidenceLevel,
      prior: c.prior,
    }).relativeEffect!;
    expectRelClose(effect.estimate, c.expected);
    expectRelClose(effect.lower, c.lower);
    expectRelClose(effect.upper, c.upper);
    expectRelClose(effect.chanceToWin, c.chanceToWin);
    expectRelClose(effect.risk![0], c.risk[0]);
    expectRelClose(effect.risk![1], c.risk[1]);
  });
});

describe('SciPy: SRM (chisquare)', () => {
  it.each(vectors.srm.map((c: any, i: number) => [i, c]))('case %i', (_i, c: any) => {
    const result = sampleRatioMismatch(c.observed, c.weights);
    expectRelClose(result.chiSquare, c.chiSquare);
    expectRelClose(result.pValue, c.pValue);
    expect(result.mismatch).toBe(c.pValue < 0.001);
  });
});

describe('SciPy: distributions', () => {
  const d = vectors.distributions;
  it('normal cdf and quantile', () => {
    for (const [x, y] of d.normalCdf) expectRelClose(normalCdf(x), y);
    for (const [p, y] of d.normalQuantile) expectRelClose(normalQuantile(p), y);
  });
  it('t cdf and quantile, including fractional df', () => {
    for (const [x, v, y] of d.tCdf) expectRelClose(tCdf(x, v), y);
    for (const [p, v, y] of d.tQuantile) expectRelClose(tQuantile(p, v), y);
  });
  it('chi-square survival and quantile', () => {
    for (const [x, k, y] of d.chiSquareSf) expectRelClose(chiSquareSf(x, k), y);
    for (const [p, k, y] of d.chiSquareQuantile) expectRelClose(chiSquareQuantile(p, k), y);
  });
});

describe('statsmodels: multipletests', () => {
  it.each(vectors.corrections.map((c: any, i: number) => [i, c]))('case %i', (_i, c: any) => {
    for (const [j, p] of holm(c.pValues as number[]).entries()) expectRelClose(p, c.holm[j]);
    for (const [j, p] of benjaminiHochberg(c.pValues as number[]).entries())
      expectRelClose(p, c.benjaminiHochberg[j]);
  });
});

describe('statsmodels: NormalIndPower', () => {
  it.each(vectors.power.map((c: any, i: number) => [i, c]))('case %i', (_i, c: any) => {
    const baseline = c.baseline as Baseline;
    expectRelClose(power(baseline, c.mde, c.unitsPerVariant, { alpha: c.alpha }).value, c.power);

    const size = sampleSize(baseline, c.mde, { alpha: c.alpha, power: c.targetPower }).value!;
    expectRelClose(size.exactUnitsPerVariant, c.exactUnitsPerVariant);
    // statsmodels keeps the far rejection tail that the closed form drops: differences stay below 1e-4.
    expectRelClose(size.exactUnitsPerVariant, c.statsmodelsUnitsPerVariant, 1e-4);

    if (c.minimumDetectableEffect !== undefined) {
      const mde = minimumDetectableEffect(baseline, c.unitsPerVariant, {
        alpha: c.alpha,
        power: c.targetPower,
      });
      expectRelClose(mde.value, c.minimumDetectableEffect);
      expectRelClose(mde.value, c.statsmodelsMinimumDetectableEffect, 1e-4);
    }
  });
});

describe('Fieller: relative intervals of the decision (roots by numpy)', () => {
  it.each(vectors.fieller.map((c: any, i: number) => [i, c]))('case %i', (_i, c: any) => {
    const treatment = analyze({
      metricType: 'MEAN',
      method: 'FREQUENTIST',
      confidenceLevel: c.confidenceLevel,
      variants: [
        { id: 'a', weight: 1, isControl: true, ...c.control },
        { id: 'b', weight: 1, isControl: false, ...c.treatment },
      ],
    }).variants[1];
    if (!c.bounded) {
      expect(treatment.relativeEffect).toBeNull();
      expect(treatment.reason).toBe('CONTROL_MEAN_UNCERTAIN');
      return;
    }
    expectRelClose(treatment.relativeEffect!.lower, c.lift[0]);
    expectRelClose(treatment.relativeEffect!.upper, c.lift[1]);
    // The decision is SciPy's Welch test, and the interval excludes 0 exactly when it rejects.
    expectRelClose(treatment.pValue, c.welchPValue);
    const excludesZero = c.lift[0] > 0 || c.lift[1] < 0;
    expect(excludesZero).toBe(c.welchPValue < 1 - c.confidenceLevel);
  });

  it('fiellerRatio is unbounded exactly when the control mean is within c standard errors of 0', () => {
    expect(fiellerRatio(1, 0.25, 2, 0.1, 2)).toBeNull();
    expect(fiellerRatio(1, 0.2, 2, 0.1, 2)).not.toBeNull();
  });
});

describe('statsmodels: Wilson and Newcombe intervals, MOVER-R, the score test', () => {
  it.each(
    vectors.newcombe.map((c: any) => [
      `${c.control.conversions}/${c.control.n} vs ${c.treatment.conversions}/${c.treatment.n}`,
      c,
    ]),
  )('%s', (_label, c: any) => {
    const { n: n1, conversions: x1 } = c.control;
    const { n: n2, conversions: x2 } = c.treatment;
    const a = wilsonInterval(x1, n1, c.critical);
    const b = wilsonInterval(x2, n2, c.critical);
    expectRelClose(a.lower, c.wilsonControl[0]);
    expectRelClose(a.upper, c.wilsonControl[1]);
    expectRelClose(b.lower, c.wilsonTreatment[0]);
    expectRelClose(b.upper, c.wilsonTreatment[1]);
    const newcombe = newcombeDifference(x1, n1, x2, n2, c.critical);
    expectRelClose(newcombe.lower, c.newcombe[0]);
    expectRelClose(newcombe.upper, c.newcombe[1]);
    expectRelClose(newcombeNullCritical(x1, n1, x2, n2), c.nullCritical);
    const mover = moverRatio(x1, n1, x2, n2, c.critical);
    if (c.moverRatio) {
      expectRelClose(mover!.lower, c.moverRatio[0]);
      expectRelClose(mover!.upper, c.moverRatio[1]);
    } else if (x1 > 0) {
      expect(mover).toBeNull();
    }
  });
});

describe('statsmodels / brentq: planned sample sizes for the analysis run', () => {
  it.each(vectors.planner.map((c: any) => [`${c.method} ${c.correction} ×${c.variants}`, c]))(
    '%s',
    (_label, c: any) => {
      const size = sampleSize(c.baseline as Baseline, c.mde, {
        power: c.power,
        method: c.method,
        correction: c.correction,
        variants: c.variants,
        sequentialTuning: c.sequentialTuning,
      }).value!;
      if (c.method === 'SEQUENTIAL') {
        expectRelClose(size.exactUnitsPerVariant, c.exactUnitsPerVariant);
      } else {
        expectRelClose(size.alpha, c.alpha);
        // As for the uncorrected plan: statsmodels keeps the far rejection tail, within 1e-4.
        expectRelClose(size.exactUnitsPerVariant, c.statsmodelsUnitsPerVariant, 1e-4);
      }
    },
  );
});
