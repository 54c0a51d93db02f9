/**
 * The vocabulary of metric definitions, defined once: these tuples feed the database enums, the GraphQL enums
 * and the TypeScript unions (as src/experiments/lifecycle.ts does for statuses). Pure: no database, no GraphQL.
 */

import { METRIC_GOALS, METRIC_TYPES, type MetricGoal, type MetricType } from '../results/stats/types';

/**
 * How a metric is analysed: the analysis's metric type. BINOMIAL: the share of units with a counted total > 0;
 * MEAN: the mean per-unit total; RATIO: Σ numerator totals / Σ denominator totals over units (delta method).
 */
export const METRIC_KINDS = METRIC_TYPES;
export type MetricKind = MetricType;

/** Which way is better for the metric: the analysis's goal (one tuple, so the two cannot drift apart). */
export const METRIC_DIRECTIONS = METRIC_GOALS;
export type MetricDirection = MetricGoal;

/**
 * A metric's part in an experiment. PRIMARY: the decision metrics (one or more); SECONDARY: context, corrected
 * together with the primaries; GUARDRAIL: must not get worse by more than its tolerated harm (corrected apart).
 */
export const METRIC_ROLES = ['PRIMARY', 'SECONDARY', 'GUARDRAIL'] as const;
export type MetricRole = (typeof METRIC_ROLES)[number];
