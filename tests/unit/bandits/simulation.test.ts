/**
 * Seeded simulation of bandits as per-period sufficient statistics (the decision rule the reweighting job
 * runs, without the database): 5 Bernoulli arms, 20,000 new units a day for 14 days, reweighted daily after the
 * first day (one phase per day), 200 seeds per scenario. Measures regret against uniform allocation, how often
 * the best arm is found, how often equal arms crown a false winner (also with a 1.6× weekend swing of the base
 * rate), and the sample-ratio check against phase weights (quiet, and with 10 % of one arm's exposures lost).
 * The measured figures are printed (README, Bandits).
 */
import { describe, expect, it } from '@jest/globals';
import { banditUpdate, type ArmPeriodStats } from '../../../src/bandits/engine';
import { sampleRatioMismatchByPhase } from '../../../src/results/stats';
import { binomial, prng, type Random } from '../stats/simulation';

const SEEDS = 200;
const DAYS = 14;
const UNITS_PER_DAY = 20_000;
const MIN_WEIGHT = 0.01;
const MIN_UNITS = 100;
const RATES = [0.05, 0.052, 0.055, 0.058, 0.065];
const EQUAL = [0.05, 0.05, 0.05, 0.05, 0.05];
/** Days 6, 7, 13 and 14 (Saturday and Sunday when day 1 is a Monday). */
const isWeekend = (day: number) => day % 7 === 5 || day % 7 === 6;

interface Run {
  regret: number;
  /** P(best) of each arm after the last day. */
  finalProbabilities: number[];
  /** The highest P(best) each arm reached at any daily update. */
  peakProbabilities: number[];
  srmMismatch: boolean;
}

/** Splits `units` among arms by `weights` (a multinomial draw, as hashing does to a stream of new units). */
function multinomial(random: Random, units: number, weights: readonly number[]): number[] {
  let left = units;
  let mass = 1;
  return weights.map((w, i) => {
    if (i === weights.length - 1) return left;
    const n = binomial(random, left, Math.min(1, w / mass));
    left -= n;
    mass -= w;
    return n;
  });
}

function simulate(
  seed: number,
  rates: readonly number[],
  options: { weekendSwing?: number; dropArm?: number } = {},
): Run {
  const random = prng(seed);
  const k = rates.length;
  let weights = rates.map(() => 1 / k);
  const periods: ArmPeriodStats[][] = [];
  const srmPhases: { index: number; weights: number[]; observed: number[] }[] = [];
  let regret = 0;
  let finalProbabilities: number[] = [];
  const peakProbabilities = rates.map(() => 0);
  for (let day = 0; day < DAYS; day++) {
    const swing = isWeekend(day) ? (options.weekendSwing ?? 1) : 1;
    const dayRates = rates.map((p) => p * swing);
    const best = Math.max(...dayRates);
    const units = multinomial(random, UNITS_PER_DAY, weights);
    const period = units.map((n, arm) => {
      regret += n * (best - dayRates[arm]);
      // Exposures lost in transit: those units never reach the analysis (nor their conversions).
      const seen = arm === options.dropArm ? n - binomial(random, n, 0.1) : n;
      const converted = binomial(random, seen, dayRates[arm]);
      return { n: seen, sum: converted, sumSquares: converted };
    });
    periods.push(period);
    srmPhases.push({ index: day + 1, weights: [...weights], observed: period.map((a) => a.n) });
    const update = banditUpdate({
      periods,
      arms: k,
      direction: 'INCREASE',
      minWeight: MIN_WEIGHT,
      minUnitsPerVariant: MIN_UNITS,
    });
    if (update.weights) weights = update.weights;
    finalProbabilities = update.bestArmProbabilities ?? finalProbabilities;
    finalProbabilities.forEach((p, arm) => {
      peakProbabilities[arm] = Math.max(peakProbabilities[arm], p);
    });
  }
  return {
    regret,
    finalProbabilities,
    peakProbabilities,
    srmMismatch: sampleRatioMismatchByPhase(k, srmPhases).mismatch,
  };
}

const runs = (rates: readonly number[], options?: Parameters<typeof simulate>[2]) =>
  Array.from({ length: SEEDS }, (_, s) => simulate(1000 + s, rates, options));

const share = (xs: readonly boolean[]) => xs.filter(Boolean).length / xs.length;
/** Some arm reached P(best) ≥ 0.95 at any daily update (a dashboard watching daily would have seen it). */
const crownsFalseWinner = (r: Run) => r.peakProbabilities.some((p) => p >= 0.95);

describe('bandit simulation (200 seeds, 5 arms, 20k units a day, 14 days, daily updates)', () => {
  it('loses far fewer conversions than uniform allocation and finds the best arm', () => {
    const results = runs(RATES);
    const meanRegret = results.reduce((acc, r) => acc + r.regret, 0) / SEEDS;
    const uniformRegret =
      DAYS * UNITS_PER_DAY * (Math.max(...RATES) - RATES.reduce((acc, p) => acc + p, 0) / RATES.length);
    const found = share(results.map((r) => r.peakProbabilities[4] >= 0.95));
    const foundAtEnd = share(results.map((r) => r.finalProbabilities[4] >= 0.95));
    const quiet = share(results.map((r) => !r.srmMismatch));
    console.log(
      `bandit regret ${meanRegret.toFixed(0)} vs uniform ${uniformRegret.toFixed(0)} conversions ` +
        `(${((100 * meanRegret) / uniformRegret).toFixed(1)} %); best arm reached P(best) ≥ 0.95 in ` +
        `${(100 * found).toFixed(1)} % of seeds (still ≥ 0.95 after day 14 in ${(100 * foundAtEnd).toFixed(1)} %); ` +
        `SRM quiet in ${(100 * quiet).toFixed(1)} %`,
    );
    expect(meanRegret).toBeLessThanOrEqual(0.35 * uniformRegret);
    expect(found).toBeGreaterThanOrEqual(0.95);
    expect(quiet).toBeGreaterThanOrEqual(0.99);
  });

  it('crowns no false winner among equal arms, with and without a weekend swing', () => {
    const flat = runs(EQUAL);
    const weekend = runs(EQUAL, { weekendSwing: 1.6 });
    const falseFlat = share(flat.map(crownsFalseWinner));
    const falseWeekend = share(weekend.map(crownsFalseWinner));
    const quiet = share([...flat, ...weekend].map((r) => !r.srmMismatch));
    console.log(
      `equal arms: a false winner (P(best) ≥ 0.95) in ${(100 * falseFlat).toFixed(1)} % of seeds, ` +
        `${(100 * falseWeekend).toFixed(1)} % with a 1.6× weekend swing; SRM quiet in ${(100 * quiet).toFixed(1)} %`,
    );
    expect(falseFlat).toBeLessThanOrEqual(0.05);
    expect(falseWeekend).toBeLessThanOrEqual(0.05);
    expect(quiet).toBeGreaterThanOrEqual(0.99);
  });

  it('the sample-ratio check against phase weights fires when 10 % of one arm’s exposures are lost', () => {
    // The best arm carries most of the traffic after the first day; the worst arm the least (the hardest to
    // catch: after day 1 it gets about 1 % of the units).
    const best = share(runs(RATES, { dropArm: 4 }).map((r) => r.srmMismatch));
    const worst = share(runs(RATES, { dropArm: 0 }).map((r) => r.srmMismatch));
    console.log(
      `SRM fires in ${(100 * best).toFixed(1)} % of seeds with 10 % of the best arm's exposures lost, ` +
        `${(100 * worst).toFixed(1)} % with the worst arm's`,
    );
    expect(best).toBeGreaterThanOrEqual(0.99);
    expect(worst).toBeGreaterThanOrEqual(0.9);
  });
});
