/**
 * What the monitoring job decides about a running experiment, defined once and pure (no database, no
 * GraphQL): the guardrail rule, the significance rule, and the onset bookkeeping that makes each alert fire
 * once per onset. The job (src/monitoring/service.ts) feeds it the results service's analysis; the seeded
 * simulation (tests/unit/stats/guardrail-simulation.test.ts) feeds it analyze() on simulated statistics.
 *
 * The guardrail rule. A GUARDRAIL metric lists a tolerated harm h (a relative change in the bad direction,
 * −1 < h < 0; none given: 0). The harm threshold on the relative effect (treatment − control)/|control| is
 * h for a metric whose goal is INCREASE and −h for DECREASE. A treatment breaches the guardrail when the
 * always-valid (SEQUENTIAL) interval of its relative effect lies entirely on the harmful side of that
 * threshold: upper < h (INCREASE) or lower > −h (DECREASE).
 *
 * Why this rule: the always-valid interval covers the true effect at every look at once with probability
 * ≥ the confidence level (a confidence sequence), so however often the job looks, a treatment whose true
 * effect is within the tolerance is flagged with probability ≤ α = 1 − confidenceLevel over the whole run;
 * a fixed-horizon interval checked every minute would flag it far more often. Requiring the whole interval
 * beyond the threshold (not just the point estimate) is what turns that coverage into the guarantee, and
 * it holds however large the sample grows. The same interval is what
 * `results(method: SEQUENTIAL)` shows, so the dashboard and the guardrail never disagree.
 */
import {
  DEFAULT_CONFIDENCE_LEVEL,
  DEFAULT_SEQUENTIAL_TUNING,
  type MetricGoal,
  type SrmResult,
  type VariantResult,
} from '../results/stats';
import type { MetricRole } from '../metrics/definitions';

/** What a breach does to the experiment. The tuple feeds the database enum and the GraphQL enum. */
export const GUARDRAIL_ACTIONS = ['PAUSE', 'ZERO_TREATMENT_WEIGHTS'] as const;
export type GuardrailAction = (typeof GUARDRAIL_ACTIONS)[number];
export const DEFAULT_GUARDRAIL_ACTION: GuardrailAction = 'PAUSE';

/** The audit log's actor of what a guardrail does. */
export const GUARDRAIL_ACTOR = 'guardrail';

/**
 * The analysis every monitoring decision uses: the SEQUENTIAL method (peeking-safe), at the defaults
 * `results` uses, with no correction across metrics (each guardrail and each decision metric is its own
 * alert). The job passes it to the results service, the simulation to analyze().
 */
export const MONITOR_ANALYSIS = {
  method: 'SEQUENTIAL',
  confidenceLevel: DEFAULT_CONFIDENCE_LEVEL,
  sequentialTuning: DEFAULT_SEQUENTIAL_TUNING,
} as const;

/** The part of a variant's analysed result the decisions read (the results service's rows have more). */
export type MonitoredVariant = Pick<
  VariantResult,
  'isControl' | 'units' | 'relativeEffect' | 'pValue' | 'significant'
> & { variantId: string; variantName?: string };

/** One analysed metric of the experiment, as the results service (or analyze()) reports it. */
export interface MonitoredMetric {
  metric: string;
  role: MetricRole | null;
  goal: MetricGoal;
  toleratedHarm: number | null;
  variants: readonly MonitoredVariant[];
}

/** The relative effect beyond which harm is not tolerated (see the rule above). */
export function harmThreshold(goal: MetricGoal, toleratedHarm: number | null): number {
  const h = toleratedHarm ?? 0;
  return goal === 'INCREASE' ? h : 0 - h; // 0 − h: never −0
}

export interface GuardrailBreach {
  variantId: string;
  variantName: string | null;
  units: number | null;
  /** The relative effect and its always-valid interval. */
  estimate: number;
  lower: number;
  upper: number;
  pValue: number | null;
}

/** The treatments whose relative effect on a guardrail metric breaches its tolerated harm. */
export function guardrailBreaches(metric: MonitoredMetric): GuardrailBreach[] {
  const threshold = harmThreshold(metric.goal, metric.toleratedHarm);
  return metric.variants.flatMap((v) => {
    const effect = v.relativeEffect;
    // No interval (too few units, a control mean of 0…): nothing is known, so nothing is breached.
    if (v.isControl || effect === null) return [];
    const breached = metric.goal === 'INCREASE' ? effect.upper < threshold : effect.lower > threshold;
    return breached
      ? [
          {
            variantId: v.variantId,
            variantName: v.variantName ?? null,
            units: v.units,
            estimate: effect.estimate,
            lower: effect.lower,
            upper: effect.upper,
            pValue: v.pValue,
          },
        ]
      : [];
  });
}

/** The treatments significantly different from the control (always-valid p-value below α), either way. */
export function significantVariants(metric: MonitoredMetric): MonitoredVariant[] {
  return metric.variants.filter((v) => !v.isControl && v.significant === true);
}

/** The alert state kept per experiment between looks. */
export interface MonitorState {
  srmDetected: boolean;
  significantMetrics: readonly string[];
  breachedMetrics: readonly string[];
}

/** What holds now: metrics with a breach or a significant treatment, and the sample-ratio check. */
export interface Observation {
  srm: Pick<SrmResult, 'mismatch'>;
  breaches: Map<string, GuardrailBreach[]>;
  significant: Map<string, MonitoredVariant[]>;
}

/**
 * Observes the analysed metrics: GUARDRAIL metrics are checked for breaches, PRIMARY and SECONDARY ones for
 * significance (metrics the experiment does not list are neither).
 */
export function observe(metrics: readonly MonitoredMetric[], srm: Pick<SrmResult, 'mismatch'>): Observation {
  const breaches = new Map<string, GuardrailBreach[]>();
  const significant = new Map<string, MonitoredVariant[]>();
  for (const m of metrics) {
    if (m.role === 'GUARDRAIL') {
      const found = guardrailBreaches(m);
      if (found.length) breaches.set(m.metric, found);
    } else if (m.role === 'PRIMARY' || m.role === 'SECONDARY') {
      const found = significantVariants(m);
      if (found.length) significant.set(m.metric, found);
    }
  }
  return { srm, breaches, significant };
}

export interface Onsets {
  /** The sample-ratio mismatch appeared (it was not detected at the previous decision). */
  srm: boolean;
  /** Metrics that became significant / breached since the previous decision. */
  significance: string[];
  breaches: string[];
}

/**
 * The next state and the onsets: an alert fires when its condition holds now and did not at the previous
 * decision; it fires again only after the condition cleared (a decision that found it not holding) and
 * came back.
 */
export function nextState(before: MonitorState, now: Observation): { state: MonitorState; onsets: Onsets } {
  const significantMetrics = [...now.significant.keys()].sort();
  const breachedMetrics = [...now.breaches.keys()].sort();
  return {
    state: { srmDetected: now.srm.mismatch, significantMetrics, breachedMetrics },
    onsets: {
      srm: now.srm.mismatch && !before.srmDetected,
      significance: significantMetrics.filter((m) => !before.significantMetrics.includes(m)),
      breaches: breachedMetrics.filter((m) => !before.breachedMetrics.includes(m)),
    },
  };
}

export const sameState = (a: MonitorState, b: MonitorState): boolean =>
  a.srmDetected === b.srmDetected &&
  a.significantMetrics.join('\n') === b.significantMetrics.join('\n') &&
  a.breachedMetrics.join('\n') === b.breachedMetrics.join('\n');
