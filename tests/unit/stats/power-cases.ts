/**
 * Power at sampleSize()'s recommendation, measured: experiments with the planned effect are simulated at the
 * recommended units and analysed through analyze() as the results service does. The measured power must be
 * within ±2 points of the requested power (4,000 runs: 3.2 Monte-Carlo standard errors at 80%); the figures
 * are the ones README.md publishes.
 */
import { describe, expect, it } from '@jest/globals';
import { LIMITS } from '../../../src/config';
import {
  adjustPValues,
  type Baseline,
  type Correction,
  type MetricType,
  type PowerOptions,
  sampleSize,
  type StatsMethod,
  type SufficientStats,
  analyze,
} from '../../../src/results/stats';
import {
  type ArmModel,
  conversionArm,
  emptyStats,
  monteCarloSe,
  percent,
  prng,
  readmeTable,
  revenueArm,
  revenueMoments,
} from './simulation';

export interface PowerCase {
  /** Row label in README.md's power table. */
  label: string;
  metricType: MetricType;
  baseline: Baseline;
  mde: number;
  power: number;
  method: StatsMethod;
  variants: number;
  correction: Correction;
  control: ArmModel;
  /** The arm with the planned effect; any further treatments are drawn like the control. */
  treatment: ArmModel;
  seed: number;
}

export const RUNS = 4000;
/** SEQUENTIAL: the runs also analysed at 20 equally spaced looks, for the power of looking along the way. */
export const LOOK_RUNS = 2000;
const LOOKS = 20;

const rate = 0.1;
const revenue = revenueMoments(0.05, 3, 1);
const binomialCase = (label: string, overrides: Partial<PowerCase>, seed: number): PowerCase => ({
  label,
  metricType: 'BINOMIAL',
  baseline: { metricType: 'BINOMIAL', mean: rate },
  mde: 0.2,
  power: 0.8,
  method: 'FREQUENTIST',
  variants: 2,
  correction: 'NONE',
  control: conversionArm(rate),
  treatment: conversionArm(rate * 1.2),
  seed,
  ...overrides,
});

export const POWER_CASES = {
  fixed80: binomialCase('FREQUENTIST, binomial 10% +20%, power 80%', {}, 1501),
  fixed90: binomialCase('FREQUENTIST, binomial 10% +20%, power 90%', { power: 0.9 }, 1502),
  revenue: {
    label: 'FREQUENTIST, revenue-like +30% (shift), power 80%',
    metricType: 'MEAN',
    baseline: { metricType: 'MEAN', ...revenue },
    mde: 0.3,
    power: 0.8,
    method: 'FREQUENTIST',
    variants: 2,
    correction: 'NONE',
    control: revenueArm(0.05, 3, 1),
    treatment: revenueArm(0.05, 3, 1, 0.3 * revenue.mean),
    seed: 1503,
  },
  holm: binomialCase(
    'FREQUENTIST, 4 variants, HOLM, binomial 10% +20%, power 80%',
    { variants: 4, correction: 'HOLM' },
    1504,
  ),
  sequential: binomialCase('SEQUENTIAL, binomial 10% +20%, power 80%', { method: 'SEQUENTIAL' }, 1505),
  bayesian: binomialCase('BAYESIAN, binomial 10% +20%, power 80%', { method: 'BAYESIAN' }, 1506),
} satisfies Record<string, PowerCase>;

export function describePowerCase(c: PowerCase): void {
  describe(`power at the recommended sample: ${c.label}`, () => {
    it(`is within ±2 points of ${percent(c.power)} (${RUNS} runs)`, () => {
      const options: PowerOptions = { method: c.method, variants: c.variants, correction: c.correction };
      const plan = sampleSize(c.baseline, c.mde, {
        ...options,
        power: c.power,
        minimumUnits: LIMITS.minUnitsPerVariant,
      }).value!;
      const n = plan.unitsPerVariant;
      const random = prng(c.seed);
      const analyse = (arms: SufficientStats[]) => {
        const result = analyze({
          metricType: c.metricType,
          method: c.method,
          minimumUnits: LIMITS.minUnitsPerVariant,
          variants: arms.map((stats, i) => ({ id: `v${i}`, weight: 1, isControl: i === 0, ...stats })),
        });
        // As the results service does: one correction over the raw p-values of the treatments.
        if (c.correction === 'NONE') return result.variants[1].significant === true;
        const adjusted = adjustPValues(
          result.variants.slice(1).map((v) => v.pValue),
          c.correction,
        );
        return adjusted[0]! < 0.05;
      };
      let detected = 0;
      let detectedAlongTheWay = 0;
      for (let run = 0; run < RUNS; run++) {
        const arms = Array.from({ length: c.variants }, emptyStats);
        const models = arms.map((_, i) => (i === 1 ? c.treatment : c.control));
        if (c.method === 'SEQUENTIAL' && run < LOOK_RUNS) {
          // The same experiment analysed at 20 looks; detected along the way if any look is significant.
          let seen = false;
          for (let look = 1; look <= LOOKS; look++) {
            const units = Math.round((look * n) / LOOKS) - Math.round(((look - 1) * n) / LOOKS);
            arms.forEach((stats, i) => {
              models[i](random, units, stats);
            });
            seen ||= analyse(arms);
          }
          if (seen) detectedAlongTheWay++;
        } else {
          arms.forEach((stats, i) => {
            models[i](random, n, stats);
          });
        }
        if (analyse(arms)) detected++;
      }
      const measured = detected / RUNS;
      expect(3 * monteCarloSe(c.power, RUNS)).toBeLessThan(0.02);
      expect(Math.abs(measured - c.power)).toBeLessThanOrEqual(0.02);
      const published: Record<string, string> = {
        measured: percent(measured),
        units: n.toLocaleString('en-US'),
      };
      if (c.method === 'SEQUENTIAL') {
        // Looking earlier can only add detections: the plan's power is a floor.
        expect(detectedAlongTheWay / LOOK_RUNS).toBeGreaterThanOrEqual(c.power);
        published.looks = percent(detectedAlongTheWay / LOOK_RUNS);
      }
      const row = readmeTable('power-table')[c.label];
      expect({
        measured: row['measured power'],
        units: row['units per variant'],
        ...(c.method === 'SEQUENTIAL' ? { looks: row['with 20 looks'] } : {}),
      }).toEqual(published);
    });
  });
}
