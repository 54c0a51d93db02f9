/**
 * The experiment lifecycle: the one source of the status values (database enum, GraphQL enum and
 * TypeScript union all derive from this tuple) and of the allowed transitions.
 */
export const EXPERIMENT_STATUSES = ['draft', 'running', 'paused', 'completed', 'archived'] as const;
export type ExperimentStatus = (typeof EXPERIMENT_STATUSES)[number];

/**
 * What an experiment is: a STANDARD test, a HOLDOUT (two groups, the control "held out" and the other
 * "general") whose held-out units the experiments and layers linked to it never enroll, or a BANDIT whose
 * weights the reweighting job sets (src/bandits).
 */
export const EXPERIMENT_KINDS = ['standard', 'holdout', 'bandit'] as const;
export type ExperimentKind = (typeof EXPERIMENT_KINDS)[number];

/** Lifecycle actions, each with the statuses it may start from and the status it leads to. */
export const TRANSITIONS = {
  start: { from: ['draft', 'paused'], to: 'running', audit: 'experiment.started' },
  pause: { from: ['running'], to: 'paused', audit: 'experiment.paused' },
  complete: { from: ['running', 'paused'], to: 'completed', audit: 'experiment.completed' },
  archive: { from: ['draft', 'completed'], to: 'archived', audit: 'experiment.archived' },
} as const satisfies Record<
  string,
  { from: readonly ExperimentStatus[]; to: ExperimentStatus; audit: `experiment.${string}` }
>;
export type LifecycleAction = keyof typeof TRANSITIONS;

export function canTransition(action: LifecycleAction, from: ExperimentStatus): boolean {
  return (TRANSITIONS[action].from as readonly ExperimentStatus[]).includes(from);
}

/** Only experiments that never ran, or were retired, may be deleted: results must not vanish. */
export const DELETABLE_STATUSES: readonly ExperimentStatus[] = ['draft', 'archived'];

/** Variants can only be removed before an experiment starts; afterwards only weights may change. */
export const VARIANT_REMOVAL_STATUSES: readonly ExperimentStatus[] = ['draft'];

/**
 * Rules of a status that are not transitions: a change they refuse is a RuleViolationError naming one
 * (the GraphQL enum ExperimentRule derives from this tuple).
 */
export const EXPERIMENT_RULES = [
  /** Variants are added and removed only in a draft: later it would move users between buckets. */
  'VARIANTS_FIXED',
  /** Once started, a variant keeps its name and control flag; only weight and config change. */
  'VARIANT_IDENTITY_FIXED',
  /** A completed or archived experiment (an archived one's own settings too) is read-only. */
  'READ_ONLY',
  /** Layer membership and ranges change only in a draft: once units enrolled, the population must not move. */
  'POPULATION_FIXED',
  /**
   * Once started, an experiment's metric list only grows by SECONDARY and GUARDRAIL metrics: the primaries,
   * and the metrics already listed with their roles, are what it was designed to decide on.
   */
  'METRICS_FIXED',
  /** What a metric counts (kind, event names) cannot change while a started experiment lists it. */
  'METRIC_IN_USE',
  /** A bandit's weights are set by its reweighting job only (each update a phase), never by hand. */
  'BANDIT_WEIGHTS',
  /**
   * A change that recounts the experiment from raw events (conversion windows, RATIO pairs), once retention
   * dropped some of them: the recount would lose those events' numbers.
   */
  'RAW_EVENTS_DROPPED',
] as const;
export type ExperimentRule = (typeof EXPERIMENT_RULES)[number];
