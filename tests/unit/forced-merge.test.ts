/**
 * Adding forced units (QA overrides) to the maintained per-variant statistics: the pure merges behind
 * `results(includeForced: true)` and `metrics(includeForced: true)`, checked against sums written out by hand.
 */
import { describe, expect, it } from '@jest/globals';
import {
  addForcedCapExcess,
  addForcedProducts,
  addForcedStats,
  addForcedSummary,
  type ForcedUnits,
} from '../../src/aggregates/forced';
import type { VariantStatsRow } from '../../src/aggregates/read';

const forced: ForcedUnits = {
  exposed: new Map([
    ['a', { units: 2, events: 3 }],
    ['b', { units: 1, events: 1 }],
  ]),
  known: new Map([
    ['a', 3],
    ['b', 1],
  ]),
  totals: new Map([
    [
      'minutes',
      [
        { userId: 'u1', variantId: 'a', events: 2, total: 10 },
        { userId: 'u2', variantId: 'a', events: 1, total: 0 },
        { userId: 'u3', variantId: 'b', events: 1, total: 4 },
      ],
    ],
    [
      'sessions',
      [
        { userId: 'u1', variantId: 'a', events: 1, total: 2 },
        { userId: 'u3', variantId: 'b', events: 2, total: 3 },
      ],
    ],
  ]),
  recorded: new Map([['minutes', new Map([['a', 4]])]]),
};

const row = (variantId: string): VariantStatsRow => ({
  variantId,
  variantName: variantId,
  weight: 0.5,
  isControl: variantId === 'a',
  position: variantId === 'a' ? 0 : 1,
  exposedUnits: 10,
  exposures: 12,
  exposedMetricUnits: 5,
  exposedSum: 20,
  exposedSumSquares: 100,
  metricUnits: 5,
  sum: 20,
  sumSquares: 100,
  metricEvents: 6,
  convertedUnits: 4,
  recordedEvents: 7,
  assignedUnits: 11,
  covariate: { units: 0, sum: 0, sumSquares: 0, sumProducts: 0, convertedSum: 0 },
});

describe('forced units added to the maintained statistics', () => {
  it('adds units, sums, squares, events and conversions per variant', () => {
    const [a, b] = addForcedStats([row('a'), row('b')], forced, 'minutes');
    expect(a).toMatchObject({
      exposedUnits: 12,
      exposures: 15,
      exposedMetricUnits: 7,
      exposedSum: 30,
      exposedSumSquares: 200,
      sum: 30,
      sumSquares: 200,
      metricEvents: 9,
      // u2's total is 0: a unit with a row but no conversion.
      convertedUnits: 5,
      recordedEvents: 11,
      assignedUnits: 14,
    });
    expect(b).toMatchObject({ exposedUnits: 11, exposedSum: 24, exposedSumSquares: 116, convertedUnits: 5 });
    // assignedUnits stays null when it was not counted.
    expect(
      addForcedStats([{ ...row('a'), assignedUnits: null }], forced, 'minutes')[0].assignedUnits,
    ).toBeNull();
    // An event name with no forced totals changes only the exposure counts.
    expect(addForcedStats([row('b')], forced, 'other')[0]).toMatchObject({ exposedUnits: 11, sum: 20 });
  });

  it('adds numerator × denominator products of units with both totals (RATIO)', () => {
    const products = addForcedProducts(new Map([['a', 7]]), forced, 'minutes', 'sessions');
    // u1: 10 × 2 (u2 has no sessions row); u3: 4 × 3.
    expect(products).toEqual(
      new Map([
        ['a', 27],
        ['b', 12],
      ]),
    );
  });

  it('adds the winsorisation excess of units above the cap', () => {
    const excess = addForcedCapExcess(new Map([['a', { sum: 1, sumSquares: 2 }]]), forced, 'minutes', 5);
    // Only u1 (10 > 5): 10 − 5 and 100 − 25.
    expect(excess).toEqual(new Map([['a', { sum: 6, sumSquares: 77 }]]));
  });

  it("adds forced counts to get_experiment_summary's rows, rates and averages recomputed", () => {
    const summary = addForcedSummary(
      [
        {
          experimentId: 'e',
          variantId: 'a',
          variantName: 'a',
          exposures: 10,
          uniqueUsers: 8,
          conversions: 4,
          conversionRate: 0.25,
          avgMetricValue: 2,
        },
      ],
      new Map([['a', { exposures: 3, units: 2, conversions: 2, converted: 2, sum: 12 }]]),
    );
    expect(summary).toEqual([
      {
        experimentId: 'e',
        variantId: 'a',
        variantName: 'a',
        exposures: 13,
        uniqueUsers: 10,
        conversions: 6,
        conversionRate: (2 + 2) / 10,
        avgMetricValue: (8 + 12) / 6,
      },
    ]);
  });
});
