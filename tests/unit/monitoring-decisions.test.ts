/**
 * The monitoring decisions on hand-made intervals: the guardrail threshold follows the metric's direction
 * and tolerated harm, only an interval wholly beyond it breaches, and alerts fire once per onset.
 */
import { describe, expect, it } from '@jest/globals';
import {
  guardrailBreaches,
  harmThreshold,
  type MonitoredMetric,
  type MonitorState,
  nextState,
  observe,
} from '../../src/monitoring/decisions';
import type { MetricGoal } from '../../src/results/stats';

const effect = (lower: number, upper: number) => ({
  estimate: (lower + upper) / 2,
  lower,
  upper,
  standardError: 0.01,
  pValue: 0.01,
  chanceToWin: null,
  risk: null,
});

function metric(
  goal: MetricGoal,
  toleratedHarm: number | null,
  interval: [number, number] | null,
  role: MonitoredMetric['role'] = 'GUARDRAIL',
): MonitoredMetric {
  return {
    metric: 'm',
    role,
    goal,
    toleratedHarm,
    variants: [
      { variantId: 'c', isControl: true, units: 1000, relativeEffect: null, pValue: null, significant: null },
      {
        variantId: 't',
        isControl: false,
        units: 1000,
        relativeEffect: interval && effect(...interval),
        pValue: 0.01,
        significant: true,
      },
    ],
  };
}

describe('guardrail rule', () => {
  it('the threshold is the tolerated harm on the bad side of the metric’s direction', () => {
    expect(harmThreshold('INCREASE', -0.02)).toBe(-0.02);
    expect(harmThreshold('DECREASE', -0.02)).toBe(0.02);
    expect(harmThreshold('INCREASE', null)).toBe(0);
  });

  it('breaches only when the whole interval lies beyond the threshold', () => {
    const breached = (goal: MetricGoal, harm: number | null, interval: [number, number] | null) =>
      guardrailBreaches(metric(goal, harm, interval)).map((b) => b.variantId);
    // INCREASE: harm is a drop. Significantly down by 1–5 %: within a 2 % tolerance? Not wholly beyond it.
    expect(breached('INCREASE', -0.02, [-0.05, -0.01])).toEqual([]);
    expect(breached('INCREASE', -0.02, [-0.05, -0.021])).toEqual(['t']);
    expect(breached('INCREASE', null, [-0.05, -0.001])).toEqual(['t']);
    expect(breached('INCREASE', null, [0.01, 0.05])).toEqual([]);
    // DECREASE: harm is a rise.
    expect(breached('DECREASE', -0.02, [0.01, 0.05])).toEqual([]);
    expect(breached('DECREASE', -0.02, [0.021, 0.05])).toEqual(['t']);
    expect(breached('DECREASE', null, [-0.05, -0.01])).toEqual([]);
    // No interval (too few units, control mean 0): nothing is known, nothing breached.
    expect(breached('INCREASE', null, null)).toEqual([]);
  });

  it('observes breaches of GUARDRAIL metrics only, significance of PRIMARY and SECONDARY only', () => {
    const harmful: [number, number] = [-0.3, -0.1];
    const seen = observe(
      [
        { ...metric('INCREASE', null, harmful), metric: 'g' },
        { ...metric('INCREASE', null, harmful, 'PRIMARY'), metric: 'p' },
        { ...metric('INCREASE', null, harmful, 'SECONDARY'), metric: 's' },
        { ...metric('INCREASE', null, harmful, null), metric: 'unlisted' },
      ],
      { mismatch: false },
    );
    expect([...seen.breaches.keys()]).toEqual(['g']);
    expect([...seen.significant.keys()]).toEqual(['p', 's']);
  });
});

describe('once per onset', () => {
  const quiet: MonitorState = { srmDetected: false, significantMetrics: [], breachedMetrics: [] };
  const holding = observe([{ ...metric('INCREASE', null, [-0.3, -0.1]), metric: 'g' }], { mismatch: true });
  const cleared = observe([{ ...metric('INCREASE', null, [-0.3, 0.1]), metric: 'g' }], { mismatch: false });

  it('fires when a condition appears, not while it holds, and again after it cleared and came back', () => {
    const first = nextState(quiet, holding);
    expect(first.onsets).toEqual({ srm: true, significance: [], breaches: ['g'] });
    const still = nextState(first.state, holding);
    expect(still.onsets).toEqual({ srm: false, significance: [], breaches: [] });
    const gone = nextState(still.state, cleared);
    expect(gone.state).toEqual(quiet);
    expect(gone.onsets).toEqual({ srm: false, significance: [], breaches: [] });
    expect(nextState(gone.state, holding).onsets).toEqual({ srm: true, significance: [], breaches: ['g'] });
  });
});
