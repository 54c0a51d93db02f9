/**
 * The guardrail rule by seeded simulation: two weeks of hourly looks at a conversion-rate guardrail (10 %),
 * traffic reaching 50,000 units per arm at the end. Each look analyses the running sufficient statistics with
 * analyze() at MONITOR_ANALYSIS and decides with observe(), the functions the monitoring job uses; a run
 * "triggers" at its first breach (the job would pause it there).
 *
 * Measured (and published in README.md, Automation): A/A false triggers ≤ 5 %; a true −10 % relative effect
 * triggers in ≥ 90 % of runs.
 */
import { describe, expect, it } from '@jest/globals';
import { LIMITS } from '../../../src/config';
import { MONITOR_ANALYSIS, observe } from '../../../src/monitoring/decisions';
import { decide, type MetricGoal } from '../../../src/results/stats';
import { binomial, monteCarloSe, prng, readmeTable } from './simulation';

const HOURS = 14 * 24;
const UNITS_PER_ARM = 50_000;
const RATE = 0.1;
const NO_VARIANT = { isControl: false, relativeEffect: null, pValue: null, significant: null };

interface Scenario {
  /** Relative effect of the treatment on the conversion rate. */
  lift: number;
  goal: MetricGoal;
  toleratedHarm: number | null;
  seed: number;
  /**
   * 500 for the two figures the issue asks for (Monte Carlo error ≤ 1 %), 200 for the others: each look is a
   * full decide() call, and the suite has to stay quick.
   */
  runs: number;
}

/** The share of runs in which some hourly look found a breach, and the mean hour of the first one. */
function triggerRate({ lift, goal, toleratedHarm, seed, runs }: Scenario) {
  const random = prng(seed);
  let triggered = 0;
  let hoursToTrigger = 0;
  for (let run = 0; run < runs; run++) {
    const arms = [
      { n: 0, sum: 0 },
      { n: 0, sum: 0 },
    ];
    for (let hour = 1; hour <= HOURS; hour++) {
      const target = Math.round((UNITS_PER_ARM * hour) / HOURS);
      arms.forEach((arm, i) => {
        const units = target - arm.n;
        arm.sum += binomial(random, units, i === 0 ? RATE : RATE * (1 + lift));
        arm.n = target;
      });
      // decide() is the comparison analyze() makes for each treatment (the job's results come from it);
      // the sample-ratio check analyze() adds is not part of the guardrail's decision.
      const [control, treatment] = arms.map((a) => ({ n: a.n, sum: a.sum, sumSquares: a.sum }));
      const decision = decide(control, treatment, {
        ...MONITOR_ANALYSIS,
        metricType: 'BINOMIAL',
        goal,
        minimumUnits: LIMITS.minUnitsPerVariant,
      });
      const seen = observe(
        [
          {
            metric: 'conversion',
            role: 'GUARDRAIL',
            goal,
            toleratedHarm,
            variants: [
              { ...NO_VARIANT, variantId: 'control', isControl: true, units: control.n },
              { ...NO_VARIANT, ...decision, variantId: 'treatment', units: treatment.n },
            ],
          },
        ],
        { mismatch: false },
      );
      if (seen.breaches.size > 0) {
        triggered++;
        hoursToTrigger += hour;
        break;
      }
    }
  }
  const rate = triggered / runs;
  return { rate, se: monteCarloSe(rate, runs), meanHour: triggered ? hoursToTrigger / triggered : null };
}

const published = readmeTable('guardrail-simulation');
const percent = (x: number) => `${(100 * x).toFixed(1)} %`;

describe('guardrail rule, hourly looks for two weeks, 50,000 units per arm at the end (seeded)', () => {
  const scenarios: { name: string; scenario: Scenario; check: (rate: number) => void }[] = [
    {
      name: 'A/A, no tolerated harm',
      scenario: { lift: 0, goal: 'INCREASE', toleratedHarm: null, seed: 18_001, runs: 500 },
      check: (rate) => expect(rate).toBeLessThanOrEqual(0.05),
    },
    {
      name: 'true −10 %, no tolerated harm',
      scenario: { lift: -0.1, goal: 'INCREASE', toleratedHarm: null, seed: 18_003, runs: 500 },
      check: (rate) => expect(rate).toBeGreaterThanOrEqual(0.9),
    },
    {
      name: 'true −10 %, tolerated harm −2 %',
      scenario: { lift: -0.1, goal: 'INCREASE', toleratedHarm: -0.02, seed: 18_004, runs: 200 },
      check: (rate) => expect(rate).toBeGreaterThanOrEqual(0.8),
    },
    {
      // The tolerance holds: a harm exactly at the tolerated −2 % trips the guardrail at most α of the time.
      name: 'true −2 %, tolerated harm −2 %',
      scenario: { lift: -0.02, goal: 'INCREASE', toleratedHarm: -0.02, seed: 18_005, runs: 200 },
      check: (rate) => expect(rate).toBeLessThanOrEqual(0.05),
    },
    {
      // A harm on a DECREASE metric is a rise: +10 % on a rate that should go down.
      name: 'true +10 %, goal DECREASE',
      scenario: { lift: 0.1, goal: 'DECREASE', toleratedHarm: null, seed: 18_006, runs: 200 },
      check: (rate) => expect(rate).toBeGreaterThanOrEqual(0.9),
    },
  ];

  for (const { name, scenario, check } of scenarios) {
    it(name, () => {
      const { rate, se, meanHour } = triggerRate(scenario);
      console.log(
        `guardrail simulation: ${name} (${scenario.runs} runs): triggered in ${percent(rate)} of runs (± ${percent(se)}), mean first breach at hour ${meanHour?.toFixed(0) ?? '—'}`,
      );
      check(rate);
      // README.md publishes exactly what this seeded run measures.
      expect(published[name]?.triggered).toBe(percent(rate));
    });
  }
});
