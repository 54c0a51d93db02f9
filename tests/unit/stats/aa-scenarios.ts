/**
 * A/A simulation (issue 14): both arms come from the same distribution, and every analysis goes through
 * analyze() with the API's minimum sample (LIMITS.minUnitsPerVariant), as the results service calls it. A
 * test that keeps its promise flags 5% of such experiments at a fixed horizon, evenly in both directions, at
 * most 5% when looked at 20 times (SEQUENTIAL), and at most 5% of 4-arm families under HOLM or
 * BENJAMINI_HOCHBERG. The measured figures are the ones README.md publishes in its A/A table; one test file
 * per scenario lets Jest spread them over the cores.
 */
import { describe, expect, it } from '@jest/globals';
import { LIMITS } from '../../../src/config';
import {
  adjustPValues,
  analyze,
  type Correction,
  type MetricType,
  type SufficientStats,
  type VariantInput,
} from '../../../src/results/stats';
import {
  type ArmModel,
  conversionArm,
  emptyStats,
  monteCarloSe,
  percent,
  prng,
  type Random,
  readmeTable,
  revenueArm,
} from './simulation';

export interface Scenario {
  /** Row label in README.md's A/A table. */
  label: string;
  metricType: MetricType;
  unitsPerArm: number;
  arm: ArmModel;
  seed: number;
}

export const SCENARIOS = {
  binomial: {
    label: 'binomial p = 0.1, 10,000/arm',
    metricType: 'BINOMIAL',
    unitsPerArm: 10_000,
    arm: conversionArm(0.1),
    seed: 1401,
  },
  revenue: {
    // Median order 20, mean 33; 500 buyers an arm: skewed like watch time or revenue.
    label: 'revenue-like: 5% buyers × lognormal(3, 1), 10,000/arm',
    metricType: 'MEAN',
    unitsPerArm: 10_000,
    arm: revenueArm(0.05, 3, 1),
    seed: 1402,
  },
  rare: {
    label: 'rare binomial p = 0.005, 2,000/arm',
    metricType: 'BINOMIAL',
    unitsPerArm: 2_000,
    arm: conversionArm(0.005),
    seed: 1403,
  },
} satisfies Record<string, Scenario>;

/** Fixed-horizon runs: ±1 point around 5% is 3.2 Monte-Carlo standard errors. */
export const RUNS = 5000;
/** Of those, the runs also analysed at each of the 20 looks (SEQUENTIAL). */
export const SEQUENTIAL_RUNS = 2000;
export const LOOKS = 20;
export const FAMILY_RUNS = 2000;
const ALPHA = 0.05;

const variantsOf = (arms: SufficientStats[]): VariantInput[] =>
  arms.map((stats, i) => ({ id: `v${i}`, weight: 1, isControl: i === 0, ...stats }));

function drawArms(scenario: Scenario, random: Random, count: number): SufficientStats[] {
  return Array.from({ length: count }, () => {
    const stats = emptyStats();
    scenario.arm(random, scenario.unitsPerArm, stats);
    return stats;
  });
}

export function describeAaScenario(scenario: Scenario): void {
  const options = { metricType: scenario.metricType, minimumUnits: LIMITS.minUnitsPerVariant };
  const published = () => readmeTable('aa-table')[scenario.label];

  describe(`A/A: ${scenario.label}`, () => {
    it(`fixed horizon flags 5% ± 1 of ${RUNS} runs evenly; SEQUENTIAL with ${LOOKS} looks stays within 5%`, () => {
      const random = prng(scenario.seed);
      let flagged = 0;
      let lower = 0;
      let bayesianWins = 0;
      let sequentialFlagged = 0;
      const step = scenario.unitsPerArm / LOOKS;
      for (let run = 0; run < RUNS; run++) {
        // Each run is one experiment growing in 20 increments; the fixed horizon analyses its final totals.
        const arms = [emptyStats(), emptyStats()];
        let stopped = false;
        for (let look = 1; look <= LOOKS; look++) {
          for (const stats of arms) scenario.arm(random, step, stats);
          if (run >= SEQUENTIAL_RUNS || stopped) continue;
          const sequential = analyze({ ...options, method: 'SEQUENTIAL', variants: variantsOf(arms) });
          if (sequential.variants[1].significant) {
            sequentialFlagged++;
            stopped = true;
          }
        }
        const treatment = analyze({ ...options, method: 'FREQUENTIST', variants: variantsOf(arms) })
          .variants[1];
        // Every run is analysed (a few rare-conversion controls leave only the relative interval out).
        expect(treatment.pValue).not.toBeNull();
        if (treatment.significant) {
          flagged++;
          if (treatment.absoluteEffect!.estimate < 0) lower++;
        }
        const bayesian = analyze({ ...options, method: 'BAYESIAN', variants: variantsOf(arms) }).variants[1];
        if (bayesian.chanceToWin! > 0.95) bayesianWins++;
      }
      const rate = flagged / RUNS;
      expect(3 * monteCarloSe(ALPHA, RUNS)).toBeLessThan(0.01);
      expect(Math.abs(rate - ALPHA)).toBeLessThanOrEqual(0.01);
      // The relative-scale decision flagged "treatment lower" in 434 of 435 such runs: now about half.
      expect(lower / flagged).toBeGreaterThan(0.35);
      expect(lower / flagged).toBeLessThan(0.65);
      expect(sequentialFlagged / SEQUENTIAL_RUNS).toBeLessThanOrEqual(
        ALPHA + 3 * monteCarloSe(ALPHA, SEQUENTIAL_RUNS),
      );
      // With a flat prior, chanceToWin > 95% is a one-sided 5% test: reported, and close to 5%.
      expect(Math.abs(bayesianWins / RUNS - ALPHA)).toBeLessThanOrEqual(0.015);
      const row = published();
      expect({
        fixed: row['FREQUENTIST, fixed horizon'],
        lower: row['of which "treatment lower"'],
        sequential: row[`SEQUENTIAL, ${LOOKS} looks`],
        bayesian: row['BAYESIAN, chanceToWin > 0.95'],
      }).toEqual({
        fixed: percent(rate),
        lower: percent(lower / flagged),
        sequential: percent(sequentialFlagged / SEQUENTIAL_RUNS),
        bayesian: percent(bayesianWins / RUNS),
      });
    });

    it(`4 arms: HOLM and BENJAMINI_HOCHBERG keep the family-wise rate within 5% (${FAMILY_RUNS} runs)`, () => {
      const random = prng(scenario.seed + 100);
      const anyFlagged: Record<Correction, number> = { NONE: 0, HOLM: 0, BENJAMINI_HOCHBERG: 0 };
      for (let run = 0; run < FAMILY_RUNS; run++) {
        // As the results service does: raw p-values from analyze(), then one correction over the family.
        const raw = analyze({
          ...options,
          method: 'FREQUENTIST',
          variants: variantsOf(drawArms(scenario, random, 4)),
        })
          .variants.slice(1)
          .map((v) => v.pValue);
        for (const correction of ['NONE', 'HOLM', 'BENJAMINI_HOCHBERG'] as const) {
          if (adjustPValues(raw, correction).some((p) => p !== null && p < ALPHA)) anyFlagged[correction]++;
        }
      }
      const margin = 3 * monteCarloSe(ALPHA, FAMILY_RUNS);
      expect(anyFlagged.HOLM / FAMILY_RUNS).toBeLessThanOrEqual(ALPHA + margin);
      expect(anyFlagged.BENJAMINI_HOCHBERG / FAMILY_RUNS).toBeLessThanOrEqual(ALPHA + margin);
      // Three uncorrected comparisons flag far more than 5%: the correction is what holds the rate.
      expect(anyFlagged.NONE / FAMILY_RUNS).toBeGreaterThan(0.1);
      const row = published();
      expect({
        none: row['4 arms, NONE'],
        holm: row['4 arms, HOLM'],
        bh: row['4 arms, BENJAMINI_HOCHBERG'],
      }).toEqual({
        none: percent(anyFlagged.NONE / FAMILY_RUNS),
        holm: percent(anyFlagged.HOLM / FAMILY_RUNS),
        bh: percent(anyFlagged.BENJAMINI_HOCHBERG / FAMILY_RUNS),
      });
    });
  });
}
