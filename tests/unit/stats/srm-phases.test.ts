/**
 * The sample-ratio check against the weights in force when units enrolled (phases): hand-computed numbers,
 * the single-phase case unchanged, and a seeded A/A simulation of the decision rule under a weight change.
 */
import { describe, expect, it } from '@jest/globals';
import {
  chiSquareSf,
  sampleRatioMismatch,
  sampleRatioMismatchByPhase,
  SRM_P_VALUE_THRESHOLD,
} from '../../../src/results/stats';
import { binomial, monteCarloSe, prng } from './simulation';

describe('SRM by phase', () => {
  it('one phase is the plain check', () => {
    const plain = sampleRatioMismatch([5000, 5600], [1, 1]);
    expect(sampleRatioMismatchByPhase(2, [{ index: 1, weights: [1, 1], observed: [5000, 5600] }])).toEqual(
      plain,
    );
    expect(plain.phases).toEqual([{ index: 1, observed: [5000, 5600], expected: [5300, 5300] }]);
  });

  it('expects each phase to split by its own weights (1:1, then 1:3)', () => {
    const phases = [
      { index: 1, weights: [1, 1], observed: [510, 490] },
      { index: 2, weights: [1, 3], observed: [240, 760] },
    ];
    const r = sampleRatioMismatchByPhase(2, phases);
    expect(r.observed).toEqual([750, 1250]);
    expect(r.expected).toEqual([750, 1250]);
    // By hand: phase 1 (10²/500)·2 = 0.4; phase 2 10²/250 + 10²/750 = 0.5333…; df = 1 + 1.
    expect(r.chiSquare).toBeCloseTo(0.4 + 0.4 + 0.13333333, 8);
    expect(r.pValue).toBeCloseTo(chiSquareSf(0.93333333, 2), 8);
    expect(r.mismatch).toBe(false);
    // The same units judged against the last weights only: the check the engine used to run.
    expect(sampleRatioMismatch([750, 1250], [1, 3]).mismatch).toBe(true);
  });

  it('a weight set to 0 expects nothing in that phase; a unit there is a mismatch', () => {
    const stopped = [
      { index: 1, weights: [1, 1], observed: [500, 500] },
      { index: 2, weights: [1, 0], observed: [700, 0] },
    ];
    const r = sampleRatioMismatchByPhase(2, stopped);
    expect(r).toMatchObject({ mismatch: false, reason: null, expected: [1200, 500], chiSquare: 0 });
    const leaked = [stopped[0], { index: 2, weights: [1, 0], observed: [700, 1] }];
    expect(sampleRatioMismatchByPhase(2, leaked)).toMatchObject({
      mismatch: true,
      pValue: 0,
      reason: 'ZERO_WEIGHT_WITH_UNITS',
      phases: [
        { index: 1, observed: [500, 500], expected: [500, 500] },
        { index: 2, observed: [700, 1], expected: [701, 0] },
      ],
    });
  });

  it('an imbalance within a phase is found even when the totals match', () => {
    // Phase 1 over-fills A, phase 2 over-fills B: the totals equal their expectation exactly.
    const r = sampleRatioMismatchByPhase(2, [
      { index: 1, weights: [1, 1], observed: [600, 400] },
      { index: 2, weights: [1, 1], observed: [400, 600] },
    ]);
    expect(r.expected).toEqual([1000, 1000]);
    expect(r.mismatch).toBe(true);
  });

  it('a paused phase with every weight 0 and no units is ignored; unusable weights are reported', () => {
    const r = sampleRatioMismatchByPhase(2, [
      { index: 1, weights: [1, 1], observed: [50, 50] },
      { index: 2, weights: [0, 0], observed: [0, 0] },
    ]);
    expect(r).toMatchObject({ reason: null, mismatch: false, expected: [50, 50] });
    expect(sampleRatioMismatchByPhase(2, [{ index: 1, weights: [1, -1], observed: [5, 5] }]).reason).toBe(
      'INVALID_WEIGHTS',
    );
    expect(sampleRatioMismatchByPhase(2, [{ index: 1, weights: [1, 1], observed: [5] }]).reason).toBe(
      'INVALID_INPUT',
    );
  });
});

describe('A/A: SRM under a weight change (seeded)', () => {
  // 1:1 for the first phase, 1:3 for the second, enrolment following the weights in force.
  const RUNS = 4000;
  function falsePositiveRate(threshold: number, seed: number): number {
    const random = prng(seed);
    let flagged = 0;
    for (let run = 0; run < RUNS; run++) {
      const a1 = binomial(random, 2000, 0.5);
      const a2 = binomial(random, 3000, 0.25);
      const r = sampleRatioMismatchByPhase(
        2,
        [
          { index: 1, weights: [1, 1], observed: [a1, 2000 - a1] },
          { index: 2, weights: [1, 3], observed: [a2, 3000 - a2] },
        ],
        threshold,
      );
      if (r.mismatch) flagged++;
    }
    return flagged / RUNS;
  }

  it('holds its level at 5% (within three Monte-Carlo standard errors)', () => {
    const rate = falsePositiveRate(0.05, 14);
    expect(Math.abs(rate - 0.05)).toBeLessThanOrEqual(3 * monteCarloSe(0.05, RUNS));
  });

  it('rarely fires at the production threshold', () => {
    const rate = falsePositiveRate(SRM_P_VALUE_THRESHOLD, 15);
    // 0.1% of 4,000 runs is 4 expected; 3 standard errors above is 0.25%.
    expect(rate).toBeLessThanOrEqual(SRM_P_VALUE_THRESHOLD + 3 * monteCarloSe(SRM_P_VALUE_THRESHOLD, RUNS));
  });
});
