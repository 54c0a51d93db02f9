/**
 * A/A simulation of the RATIO decision rule: watch minutes per session, both arms from the same distribution
 * (sessions per unit ~ 1 + geometric, mean 2; minutes per session lognormal(2, 0.8), so the numerator is skewed
 * and correlated with the denominator). Every run goes through analyze() with the API's minimum sample; at a
 * fixed horizon the rule must flag 5% ± 1 point (3.2 Monte-Carlo standard errors at these runs), evenly in both
 * directions.
 */
import { describe, expect, it } from '@jest/globals';
import { LIMITS } from '../../../src/config';
import { analyze, type SufficientStats } from '../../../src/results/stats';
import { monteCarloSe, normalSource, prng, type Random } from './simulation';

const RUNS = 4000;
const UNITS = 2000;
const { exp, floor, log } = Math;

function ratioArm(random: Random, normal: () => number): SufficientStats {
  let sum = 0;
  let sumSquares = 0;
  let sumDenominator = 0;
  let sumDenominatorSquares = 0;
  let sumProducts = 0;
  for (let u = 0; u < UNITS; u++) {
    // 1 + Geometric(p = 0.5): mean 2 sessions.
    const sessions = 1 + floor(log(1 - random()) / log(0.5));
    let minutes = 0;
    for (let s = 0; s < sessions; s++) minutes += exp(2 + 0.8 * normal());
    sum += minutes;
    sumSquares += minutes * minutes;
    sumDenominator += sessions;
    sumDenominatorSquares += sessions * sessions;
    sumProducts += minutes * sessions;
  }
  return { n: UNITS, sum, sumSquares, ratio: { sumDenominator, sumDenominatorSquares, sumProducts } };
}

describe('A/A: RATIO metric (watch minutes per session)', () => {
  it('flags 5% ± 1 point at a fixed horizon, evenly in both directions', () => {
    const random = prng(1701);
    const normal = normalSource(random);
    let positives = 0;
    let up = 0;
    for (let run = 0; run < RUNS; run++) {
      const result = analyze({
        metricType: 'RATIO',
        method: 'FREQUENTIST',
        minimumUnits: LIMITS.minUnitsPerVariant,
        variants: [
          { id: 'a', weight: 1, isControl: true, ...ratioArm(random, normal) },
          { id: 'b', weight: 1, isControl: false, ...ratioArm(random, normal) },
        ],
      });
      const treatment = result.variants[1];
      expect(treatment.pValue).not.toBeNull();
      if (treatment.significant) {
        positives++;
        if (treatment.absoluteEffect!.estimate > 0) up++;
      }
    }
    const rate = positives / RUNS;
    expect(Math.abs(rate - 0.05)).toBeLessThanOrEqual(0.01);
    // Each direction half of the flags: within 4 standard errors of a fair split.
    expect(Math.abs(up / positives - 0.5)).toBeLessThanOrEqual(4 * monteCarloSe(0.5, positives));
    console.log(
      `RATIO A/A false-positive rate ${(100 * rate).toFixed(2)}% (${up} up / ${positives - up} down)`,
    );
  });
});
