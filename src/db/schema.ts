/**
 * The database schema: one module, snake_case in SQL and camelCase in TypeScript.
 * Views, functions and triggers live in repeatable SQL files (drizzle/repeatable/, see src/db/repeatable.ts).
 */
import { sql } from 'drizzle-orm';
import {
  type AnyPgColumn,
  bigint,
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { BANDIT_STAGES } from '../bandits/settings';
import { SLUG_PATTERN } from '../config';
import { EXPERIMENT_KINDS, EXPERIMENT_STATUSES } from '../experiments/lifecycle';
import { METRIC_DIRECTIONS, METRIC_KINDS, METRIC_ROLES } from '../metrics/definitions';
import { GUARDRAIL_ACTIONS } from '../monitoring/decisions';

// Millisecond precision so a JavaScript Date (and a pagination cursor built from it) is exact.
const createdAt = () => timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow();

export const experimentStatus = pgEnum('experiment_status', EXPERIMENT_STATUSES);
export const experimentKind = pgEnum('experiment_kind', EXPERIMENT_KINDS);
export const contentKind = pgEnum('content_kind', ['movie', 'series']);
export const metricKind = pgEnum('metric_kind', METRIC_KINDS);
export const metricDirection = pgEnum('metric_direction', METRIC_DIRECTIONS);
export const metricRole = pgEnum('metric_role', METRIC_ROLES);
export const guardrailAction = pgEnum('guardrail_action', GUARDRAIL_ACTIONS);
export const banditStage = pgEnum('bandit_stage', BANDIT_STAGES);

/**
 * Layers: mutual exclusion. Experiments of a layer own disjoint ranges of its hash space (GrowthBook's
 * filters), so a unit is in at most one of them.
 */
export const layers = pgTable(
  'layers',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    key: text('key').notNull().unique('layers_key_unique'),
    name: text('name').notNull(),
    description: text('description'),
    /** Fixed at creation: changing it would move every unit of the layer's running experiments. */
    hashSeed: text('hash_seed').notNull(),
    archivedAt: timestamp('archived_at', { withTimezone: true, precision: 3 }),
    /** A HOLDOUT experiment whose held-out units no experiment of the layer enrolls. */
    holdoutId: uuid('holdout_id').references((): AnyPgColumn => experiments.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [check('layers_key_slug', sql`${t.key} ~ ${sql.raw(`'${SLUG_PATTERN.source}'`)}`)],
);

export const experiments = pgTable(
  'experiments',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    key: text('key').notNull().unique('experiments_key_unique'),
    name: text('name').notNull(),
    description: text('description'),
    status: experimentStatus('status').notNull().default('draft'),
    kind: experimentKind('kind').notNull().default('standard'),
    /** A HOLDOUT experiment whose held-out units this experiment never enrolls. */
    holdoutId: uuid('holdout_id').references((): AnyPgColumn => experiments.id, { onDelete: 'set null' }),
    trafficAllocation: doublePrecision('traffic_allocation').notNull().default(1),
    hashSeed: text('hash_seed'),
    /** GrowthBook condition over unit attributes (src/assignments/targeting.ts); null targets everybody. */
    targeting: jsonb('targeting').$type<Record<string, unknown>>(),
    /** The layer it belongs to, and its ranges [start, end) of the layer's hash space. */
    layerId: uuid('layer_id').references(() => layers.id, { onDelete: 'restrict' }),
    layerRanges: jsonb('layer_ranges').$type<[number, number][]>(),
    startAt: timestamp('start_at', { withTimezone: true }),
    endAt: timestamp('end_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check(
      'experiments_traffic_allocation_range',
      sql`${t.trafficAllocation} >= 0 AND ${t.trafficAllocation} <= 1`,
    ),
    check('experiments_layer_ranges', sql`(${t.layerId} IS NULL) = (${t.layerRanges} IS NULL)`),
    index('experiments_layer_idx').on(t.layerId),
    check('experiments_targeting_object', sql`jsonb_typeof(${t.targeting}) = 'object'`),
    check('experiments_key_slug', sql`${t.key} ~ ${sql.raw(`'${SLUG_PATTERN.source}'`)}`),
    index('experiments_status_idx').on(t.status),
    // Keyset pagination: newest first, id as the tie-breaker.
    index('experiments_created_at_id_idx').on(t.createdAt.desc(), t.id.desc()),
  ],
);

export const experimentVariants = pgTable(
  'experiment_variants',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    weight: doublePrecision('weight').notNull().default(1),
    config: jsonb('config').$type<Record<string, unknown>>().notNull().default({}),
    isControl: boolean('is_control').notNull().default(false),
    position: integer('position').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('experiment_variants_experiment_name_unique').on(t.experimentId, t.name),
    uniqueIndex('experiment_variants_one_control').on(t.experimentId).where(sql`${t.isControl}`),
    index('experiment_variants_experiment_position_idx').on(t.experimentId, t.position),
    check('experiment_variants_weight_nonnegative', sql`${t.weight} >= 0`),
    check('experiment_variants_config_object', sql`jsonb_typeof(${t.config}) = 'object'`),
  ],
);

export const experimentAssignments = pgTable(
  'experiment_assignments',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    userId: text('user_id').notNull(),
    variantId: uuid('variant_id')
      .notNull()
      .references(() => experimentVariants.id, { onDelete: 'cascade' }),
    assignedAt: timestamp('assigned_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('experiment_assignments_experiment_user_unique').on(t.experimentId, t.userId),
    index('experiment_assignments_user_idx').on(t.userId),
    index('experiment_assignments_variant_idx').on(t.variantId),
  ],
);

/**
 * The weight history of an experiment (as GrowthBook's phases): starting it opens phase 1, and every change of
 * a variant weight or of the traffic allocation while it runs or is paused closes the open phase and opens
 * the next. A unit belongs to the phase in force when it was assigned (experiment_phase_ranges, in
 * drizzle/repeatable/experiment_phases.sql), so the sample-ratio check can expect each phase's units to split
 * by that phase's weights.
 */
export const experimentPhases = pgTable(
  'experiment_phases',
  {
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    /** 1, 2, …: the order of the phases. */
    index: integer('index').notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
    /** When the next phase started or the experiment completed; null while in force. */
    endedAt: timestamp('ended_at', { withTimezone: true }),
    trafficAllocation: doublePrecision('traffic_allocation').notNull(),
    /** Every variant's weight in force, in bucketing order: `[{"variantId", "weight"}]`. */
    weights: jsonb('weights').$type<{ variantId: string; weight: number }[]>().notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.experimentId, t.index] }),
    check('experiment_phases_index_positive', sql`${t.index} >= 1`),
    check('experiment_phases_weights_array', sql`jsonb_typeof(${t.weights}) = 'array'`),
  ],
);

/**
 * QA overrides: a unit forced into a variant (reason FORCED). Not an assignment: never stored in
 * experiment_assignments, so forced units never enter the maintained aggregates; their events go to
 * experiment_forced_events, which `results(includeForced: true)` adds on top.
 */
export const experimentOverrides = pgTable(
  'experiment_overrides',
  {
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    userId: text('user_id').notNull(),
    variantId: uuid('variant_id')
      .notNull()
      .references(() => experimentVariants.id, { onDelete: 'cascade' }),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.experimentId, t.userId] }),
    index('experiment_overrides_variant_idx').on(t.variantId),
  ],
);

/**
 * Events of forced units (a QA override and no stored assignment), kept apart from the raw event tables so
 * nothing randomised ever counts them: results and metrics add them only when asked (`includeForced`). At
 * most a few thousand units (overrides are capped per experiment), so they are read from these rows, never
 * maintained, and keep ordinary foreign keys.
 */
export const experimentForcedEvents = pgTable(
  'experiment_forced_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    variantId: uuid('variant_id')
      .notNull()
      .references(() => experimentVariants.id, { onDelete: 'cascade' }),
    userId: text('user_id').notNull(),
    kind: text('kind', { enum: ['exposure', 'conversion'] }).notNull(),
    /** Client idempotency key, as on the raw event tables. */
    eventId: uuid('event_id').notNull().unique(),
    /** Conversions only. */
    metricName: text('metric_name'),
    value: doublePrecision('value'),
    occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull().defaultNow(),
    recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [
    index('experiment_forced_events_experiment_user_idx').on(t.experimentId, t.userId),
    check(
      'experiment_forced_events_metric',
      sql`(${t.kind} = 'conversion') = (${t.metricName} IS NOT NULL AND ${t.value} IS NOT NULL)`,
    ),
  ],
);

/**
 * No foreign keys on the event tables and experiment_user_metrics: a row-level RI check per inserted row
 * (and a FOR KEY SHARE lock, i.e. multixacts, on the same experiment and variant rows from every
 * concurrent batch) was the largest cost of ingestion. Triggers keep what the keys promised
 * (drizzle/repeatable/event_variant_triggers.sql): a statement-level check refuses events whose variant
 * does not exist or belongs to another experiment (SQLSTATE 23503, and it locks the variants like a key
 * would), and deleting a variant (so an experiment, which cascades to its variants) deletes its events and
 * per-unit totals.
 */
const eventColumns = () => ({
  id: uuid('id').notNull().defaultRandom(),
  experimentId: uuid('experiment_id').notNull(),
  variantId: uuid('variant_id').notNull(),
  userId: text('user_id').notNull(),
  /**
   * Client idempotency key: a retried event with the same id is a duplicate, not a second event. Unique
   * through experiment_event_ids (a unique index of a partitioned table would have to include recorded_at).
   */
  eventId: uuid('event_id'),
  occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull().defaultNow(),
  /** When the service stored it (the database's clock): the partition key. */
  recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
  metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
});

/**
 * The raw event tables are partitioned by month of recorded_at (native declarative partitioning, created by
 * the migration that partitioned them and src/events/partitions.ts; drizzle-kit's model has no partitioning, so
 * it only knows the columns and indexes below, which every partition inherits). The primary key includes the
 * partition key, as PostgreSQL requires. EVENT_RETENTION_DAYS drops whole old partitions (README, "Event
 * retention").
 */
export const experimentExposures = pgTable(
  'experiment_exposures',
  {
    ...eventColumns(),
    /**
     * CUPED: the unit's pre-period values, `{ <metric key>: number }`, as the client sent them. Only the unit's
     * first exposure's (see experiment_user_metrics.covariates) count; null when the exposure carried none.
     */
    covariates: jsonb('covariates').$type<Record<string, number>>(),
    /**
     * The unit's segment levels as the client sent them (`{device: "ios"}`), a level past the experiment's
     * LIMITS.maxDimensionLevels already folded into `__other__`. Null: none. The first exposure's count
     * (src/aggregates/segments.ts).
     */
    dimensions: jsonb('dimensions').$type<Record<string, string>>(),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.recordedAt] }),
    index('experiment_exposures_experiment_variant_idx').on(t.experimentId, t.variantId),
  ],
);

export const experimentConversions = pgTable(
  'experiment_conversions',
  {
    ...eventColumns(),
    metricName: text('metric_name').notNull(),
    value: doublePrecision('value').notNull().default(1),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.recordedAt] }),
    index('experiment_conversions_experiment_variant_idx').on(t.experimentId, t.variantId),
    index('experiment_conversions_experiment_metric_idx').on(t.experimentId, t.metricName),
    // A unit's conversions, re-counted by the fold when its first exposure arrives or moves earlier.
    index('experiment_conversions_experiment_user_idx').on(t.experimentId, t.userId),
  ],
);

/**
 * Every recorded event id, exposure or conversion (one id is one event): what makes retries idempotent.
 * insertEvents claims an event's id here (ON CONFLICT DO NOTHING) before it writes the event, so a retry,
 * a repeat under the other kind, or a concurrent copy is a duplicate. Not partitioned, so one index holds
 * every id; retention deletes the ids of the partitions it drops (README, "Event retention").
 */
export const experimentEventIds = pgTable('experiment_event_ids', {
  eventId: uuid('event_id').primaryKey(),
});

/**
 * Experiments whose raw events recorded before `dropped_before` were dropped by retention. Their maintained
 * aggregates still hold those events; rebuilding them from raw rows would not, so rebuilds refuse them.
 */
export const experimentEventsDropped = pgTable('experiment_events_dropped', {
  experimentId: uuid('experiment_id')
    .primaryKey()
    .references(() => experiments.id, { onDelete: 'cascade' }),
  droppedBefore: timestamp('dropped_before', { withTimezone: true }).notNull(),
});

/**
 * Per-unit running totals, maintained in the same transaction as the events (src/aggregates/). The
 * metric EXPOSURE_METRIC counts exposures, ANY_CONVERSION_METRIC sums every conversion (see
 * src/aggregates/constants.ts).
 */
export const experimentUserMetrics = pgTable(
  'experiment_user_metrics',
  {
    // No foreign keys (see eventColumns): derived from checked events, deleted with them by the triggers.
    experimentId: uuid('experiment_id').notNull(),
    userId: text('user_id').notNull(),
    metricName: text('metric_name').notNull(),
    variantId: uuid('variant_id').notNull(),
    events: bigint('events', { mode: 'number' }).notNull().default(0),
    total: doublePrecision('total').notNull().default(0),
    /**
     * On the EXPOSURE_METRIC row: the unit's first exposure (the earliest event time, see
     * drizzle/repeatable/attribution.sql), where its attribution window opens. Null on other rows.
     */
    firstAt: timestamp('first_at', { withTimezone: true }),
    /**
     * On the EXPOSURE_METRIC row: the event id of the unit's first exposure (earliest event time, then lowest
     * event id) and its covariates, the unit's CUPED pre-period values. Null on other rows.
     */
    firstEventId: uuid('first_event_id'),
    covariates: jsonb('covariates').$type<Record<string, number>>(),
  },
  (t) => [primaryKey({ columns: [t.experimentId, t.userId, t.metricName] })],
);

/**
 * Per-variant sufficient statistics over units, so results cost O(variants × metrics), not O(events).
 * `units/sum/sum_squares` cover every unit with the metric; `exposed_*` only units that were exposed.
 */
export const experimentVariantStats = pgTable(
  'experiment_variant_stats',
  {
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    variantId: uuid('variant_id')
      .notNull()
      .references(() => experimentVariants.id, { onDelete: 'cascade' }),
    metricName: text('metric_name').notNull(),
    events: bigint('events', { mode: 'number' }).notNull().default(0),
    units: bigint('units', { mode: 'number' }).notNull().default(0),
    sum: doublePrecision('sum').notNull().default(0),
    sumSquares: doublePrecision('sum_squares').notNull().default(0),
    exposedUnits: bigint('exposed_units', { mode: 'number' }).notNull().default(0),
    exposedSum: doublePrecision('exposed_sum').notNull().default(0),
    exposedSumSquares: doublePrecision('exposed_sum_squares').notNull().default(0),
    /** Units whose total is > 0: a BINOMIAL metric's conversions. */
    convertedUnits: bigint('converted_units', { mode: 'number' }).notNull().default(0),
    /** Every event recorded for the variant and metric, counted or not (out of its attribution window). */
    recordedEvents: bigint('recorded_events', { mode: 'number' }).notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.experimentId, t.variantId, t.metricName] }),
    index('experiment_variant_stats_experiment_metric_idx').on(t.experimentId, t.metricName),
  ],
);

/**
 * Per-experiment settings of a metric: its conversion window (hours after the unit's first exposure). Overrides
 * the default of the metric definitions the experiment lists (experiment_metric_windows).
 */
export const experimentMetricSettings = pgTable(
  'experiment_metric_settings',
  {
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    metricName: text('metric_name').notNull(),
    /** Conversions count up to this many hours after the unit's first exposure; null: until the end. */
    conversionWindowHours: doublePrecision('conversion_window_hours'),
  },
  (t) => [
    primaryKey({ columns: [t.experimentId, t.metricName] }),
    check(
      'experiment_metric_settings_window_positive',
      sql`${t.conversionWindowHours} IS NULL OR ${t.conversionWindowHours} > 0`,
    ),
  ],
);

/**
 * Metric definitions (src/metrics/): what a metric name on conversion events means for analysis. A name
 * without a definition keeps the defaults (`conversion` BINOMIAL, anything else MEAN, goal INCREASE).
 */
export const metrics = pgTable(
  'metrics',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    key: text('key').notNull().unique('metrics_key_unique'),
    name: text('name').notNull(),
    description: text('description'),
    kind: metricKind('kind').notNull(),
    /** The conversion `metric_name` it counts (a RATIO metric's numerator). */
    eventName: text('event_name').notNull(),
    /** RATIO only: the conversion `metric_name` of the denominator. */
    denominatorEventName: text('denominator_event_name'),
    direction: metricDirection('direction').notNull().default('INCREASE'),
    /** Winsorisation: each unit's total is capped at this value before the analysis. */
    capValue: doublePrecision('cap_value'),
    /** Default conversion window (hours after the unit's first exposure); an experiment's setting overrides it. */
    conversionWindowHours: doublePrecision('conversion_window_hours'),
    archivedAt: timestamp('archived_at', { withTimezone: true, precision: 3 }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('metrics_key_slug', sql`${t.key} ~ ${sql.raw(`'${SLUG_PATTERN.source}'`)}`),
    check('metrics_ratio_denominator', sql`(${t.kind} = 'RATIO') = (${t.denominatorEventName} IS NOT NULL)`),
    check('metrics_cap_positive', sql`${t.capValue} IS NULL OR ${t.capValue} > 0`),
    check(
      'metrics_window_positive',
      sql`${t.conversionWindowHours} IS NULL OR ${t.conversionWindowHours} > 0`,
    ),
    index('metrics_created_at_id_idx').on(t.createdAt.desc(), t.id.desc()),
  ],
);

/** The metrics an experiment lists, each with its role, in the order given. */
export const experimentMetricRoles = pgTable(
  'experiment_metric_roles',
  {
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    metricId: uuid('metric_id')
      .notNull()
      .references(() => metrics.id, { onDelete: 'restrict' }),
    role: metricRole('role').notNull(),
    /** GUARDRAIL only: the relative change in the bad direction tolerated, e.g. -0.02 (−2 %). */
    toleratedHarm: doublePrecision('tolerated_harm'),
    position: integer('position').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.experimentId, t.metricId] }),
    index('experiment_metric_roles_metric_idx').on(t.metricId),
  ],
);

/**
 * Per variant and RATIO event pair (numerator, denominator) an experiment lists (experiment_ratio_pairs):
 * Σ over units of the unit's numerator total × its denominator total, maintained by the fold with the other
 * aggregates. With experiment_variant_stats' Σ and Σ² of each event's totals it is the delta method's input.
 */
export const experimentRatioStats = pgTable(
  'experiment_ratio_stats',
  {
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    variantId: uuid('variant_id')
      .notNull()
      .references(() => experimentVariants.id, { onDelete: 'cascade' }),
    numerator: text('numerator').notNull(),
    denominator: text('denominator').notNull(),
    sumProducts: doublePrecision('sum_products').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.experimentId, t.variantId, t.numerator, t.denominator] })],
);

/**
 * CUPED sufficient statistics per variant and covariate key (a metric key; its metric's event: see
 * covariate_event_name in drizzle/repeatable/metric_definitions.sql), maintained by the fold with the other
 * aggregates. Over exposed units whose first exposure carried the covariate c: their count, Σc and Σc² (in the
 * variant of the unit's exposure row). Over units with a counted total x of the key's event: Σx·c and
 * Σc over those with x > 0 (a BINOMIAL analysis's Σx·c), in the variant of the metric row. A unit without the
 * covariate counts as c = 0.
 */
export const experimentCovariateStats = pgTable(
  'experiment_covariate_stats',
  {
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    variantId: uuid('variant_id')
      .notNull()
      .references(() => experimentVariants.id, { onDelete: 'cascade' }),
    covariate: text('covariate').notNull(),
    units: bigint('units', { mode: 'number' }).notNull().default(0),
    sum: doublePrecision('sum').notNull().default(0),
    sumSquares: doublePrecision('sum_squares').notNull().default(0),
    sumProducts: doublePrecision('sum_products').notNull().default(0),
    convertedSum: doublePrecision('converted_sum').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.experimentId, t.variantId, t.covariate] })],
);

/**
 * Exposed units per variant and phase (the phase of the unit's assignment), maintained by the fold with the
 * other aggregates: the sample-ratio check's observed counts, whatever the number of units.
 */
export const experimentPhaseStats = pgTable(
  'experiment_phase_stats',
  {
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    variantId: uuid('variant_id')
      .notNull()
      .references(() => experimentVariants.id, { onDelete: 'cascade' }),
    phase: integer('phase').notNull(),
    exposedUnits: bigint('exposed_units', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.experimentId, t.variantId, t.phase] })],
);

/**
 * A BANDIT experiment's settings and state (src/bandits/): one row per bandit, written with the experiment.
 * The weights in force are the variants' own (each reweighting updates them and opens a phase, as a person's
 * weight change does); this row keeps the decision metric, the cadence and the last best-arm probabilities.
 */
export const experimentBandits = pgTable(
  'experiment_bandits',
  {
    experimentId: uuid('experiment_id')
      .primaryKey()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    decisionMetricId: uuid('decision_metric_id')
      .notNull()
      .references(() => metrics.id, { onDelete: 'restrict' }),
    explorationHours: doublePrecision('exploration_hours').notNull(),
    updateEveryMinutes: integer('update_every_minutes').notNull(),
    minWeight: doublePrecision('min_weight').notNull(),
    minUnitsPerVariant: integer('min_units_per_variant').notNull(),
    stage: banditStage('stage').notNull().default('EXPLORE'),
    /** The last reweighting's P(best) per variant: `[{"variantId", "probability"}]`; null before the first. */
    bestArmProbabilities:
      jsonb('best_arm_probabilities').$type<{ variantId: string; probability: number }[]>(),
    /** When the weights were last set by the bandit; null before the first reweighting. */
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }),
    /** When the job next looks at it: the start + explorationHours, then every updateEveryMinutes. */
    nextUpdateAt: timestamp('next_update_at', { withTimezone: true, precision: 3 }),
    /** The last look that changed nothing, and why (TOO_FEW_UNITS, ZERO_VARIANCE); cleared by a reweighting. */
    lastCheckedAt: timestamp('last_checked_at', { withTimezone: true, precision: 3 }),
    waitingReason: text('waiting_reason'),
  },
  (t) => [
    check('experiment_bandits_exploration', sql`${t.explorationHours} >= 0`),
    check('experiment_bandits_cadence', sql`${t.updateEveryMinutes} >= 15`),
    check('experiment_bandits_min_weight', sql`${t.minWeight} >= 0 AND ${t.minWeight} < 1`),
    check('experiment_bandits_min_units', sql`${t.minUnitsPerVariant} >= 2`),
    index('experiment_bandits_next_update_idx').on(t.nextUpdateAt),
    index('experiment_bandits_metric_idx').on(t.decisionMetricId),
  ],
);

/** Every reweighting of a bandit, in order: `banditState.history`. */
export const experimentBanditUpdates = pgTable(
  'experiment_bandit_updates',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    at: timestamp('at', { withTimezone: true, precision: 3 }).notNull(),
    /** The phase the new weights opened. */
    phase: integer('phase').notNull(),
    weights: jsonb('weights').$type<{ variantId: string; weight: number }[]>().notNull(),
    bestArmProbabilities: jsonb('best_arm_probabilities')
      .$type<{ variantId: string; probability: number }[]>()
      .notNull(),
    /** Per variant: units, period-weighted mean and its variance that the update used. */
    estimates: jsonb('estimates')
      .$type<{ variantId: string; n: number; mean: number | null; variance: number | null }[]>()
      .notNull(),
  },
  (t) => [index('experiment_bandit_updates_experiment_at_idx').on(t.experimentId, t.at.desc())],
);

/**
 * An experiment's schedule (src/scheduling/): when the job runner starts it, when it completes it, and the
 * most units it may enrol. At most one per experiment; deleting the experiment deletes it.
 */
export const experimentSchedules = pgTable(
  'experiment_schedules',
  {
    experimentId: uuid('experiment_id')
      .primaryKey()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    startAt: timestamp('start_at', { withTimezone: true, precision: 3 }),
    stopAt: timestamp('stop_at', { withTimezone: true, precision: 3 }),
    stopAfterUnits: bigint('stop_after_units', { mode: 'number' }),
    /**
     * Units enrolled while a cap is set, counted by the assignment statement itself under this row's lock
     * (src/assignments/repository.ts), so the cap holds across instances and connections.
     */
    enrolledUnits: bigint('enrolled_units', { mode: 'number' }).notNull().default(0),
    /** When the scheduler started / completed the experiment (null: not yet, or not by the scheduler). */
    startedAt: timestamp('started_at', { withTimezone: true, precision: 3 }),
    stoppedAt: timestamp('stopped_at', { withTimezone: true, precision: 3 }),
    /** Failed attempts of the pending transition; reset when one succeeds. */
    attempts: integer('attempts').notNull().default(0),
    lastAttemptAt: timestamp('last_attempt_at', { withTimezone: true, precision: 3 }),
    failureReason: text('failure_reason'),
    /** Set when the pending transition failed its last allowed attempt: the scheduler stops trying. */
    failedAt: timestamp('failed_at', { withTimezone: true, precision: 3 }),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    check(
      'experiment_schedules_stop_after_start',
      sql`${t.stopAt} IS NULL OR ${t.startAt} IS NULL OR ${t.stopAt} > ${t.startAt}`,
    ),
    check('experiment_schedules_cap_positive', sql`${t.stopAfterUnits} IS NULL OR ${t.stopAfterUnits} > 0`),
    check('experiment_schedules_attempts_nonnegative', sql`${t.attempts} >= 0`),
    // The assignment statement only ever takes the units the cap leaves room for.
    check(
      'experiment_schedules_cap_respected',
      sql`${t.stopAfterUnits} IS NULL OR ${t.enrolledUnits} <= ${t.stopAfterUnits}`,
    ),
  ],
);

/**
 * The monitoring job's record of an experiment (src/monitoring/): what a guardrail breach does (a person's
 * choice), and the alert state between looks, so SRM, significance and guardrail alerts fire once per onset.
 * A row appears when the job first looks at the experiment or a person configures its guardrails.
 */
export const experimentMonitors = pgTable(
  'experiment_monitors',
  {
    experimentId: uuid('experiment_id')
      .primaryKey()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    guardrailAction: guardrailAction('guardrail_action').notNull().default('PAUSE'),
    /** When the job last looked at the statistics (at most once per LIMITS.monitorIntervalMs). */
    checkedAt: timestamp('checked_at', { withTimezone: true, precision: 3 }),
    /** Summary of the statistics at the last decision: the job decides again only when it changed. */
    statsFingerprint: text('stats_fingerprint'),
    /** When the job last decided (the statistics had changed). */
    decidedAt: timestamp('decided_at', { withTimezone: true, precision: 3 }),
    srmDetected: boolean('srm_detected').notNull().default(false),
    /** PRIMARY/SECONDARY metrics with a significant treatment at the last decision (sorted). */
    significantMetrics: text('significant_metrics').array().notNull().default(sql`'{}'::text[]`),
    /** GUARDRAIL metrics breached at the last decision (sorted). */
    breachedMetrics: text('breached_metrics').array().notNull().default(sql`'{}'::text[]`),
    /** Why the last decision failed (it is tried again at the next look); null when it succeeded. */
    lastError: text('last_error'),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [index('experiment_monitors_checked_at_idx').on(t.checkedAt)],
);

/**
 * Webhooks (src/webhooks/): where alerts are POSTed. The signing secret is stored encrypted with the
 * server's WEBHOOK_SECRET_KEY (AES-256-GCM): signing needs the secret itself, so a hash would not do.
 */
export const webhooks = pgTable('webhooks', {
  id: uuid('id').primaryKey().defaultRandom(),
  url: text('url').notNull(),
  events: text('events').array().notNull(),
  /** Events of an experiment are sent only once it enrolled at least this many units… */
  minUnits: integer('min_units').notNull().default(0),
  /** …and started at least this many days ago (0: from the start). */
  minDays: doublePrecision('min_days').notNull().default(0),
  /** base64 of IV (12 bytes) ‖ tag (16 bytes) ‖ ciphertext. */
  secretCiphertext: text('secret_ciphertext').notNull(),
  /** The secret's first characters, to tell secrets apart. */
  secretPrefix: text('secret_prefix').notNull(),
  createdAt: createdAt(),
});

/**
 * The outbox: one row per event and webhook, written in the transaction of the change that caused it, so
 * an event is sent if and only if its change committed. The row's id is the delivery id the receiver sees
 * on every attempt.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    webhookId: uuid('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    event: text('event').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    /** pending → delivered | failed. */
    status: text('status').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    lastAttemptAt: timestamp('last_attempt_at', { withTimezone: true, precision: 3 }),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    deliveredAt: timestamp('delivered_at', { withTimezone: true, precision: 3 }),
    createdAt: createdAt(),
  },
  (t) => [
    check('webhook_deliveries_status', sql`${t.status} IN ('pending', 'delivered', 'failed')`),
    index('webhook_deliveries_due_idx').on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    index('webhook_deliveries_webhook_idx').on(t.webhookId, t.createdAt.desc()),
  ],
);

/**
 * The job runner's record (src/jobs/): one row per periodic job, updated in the same transaction as the
 * job's work, so a run that crashed left neither its effects nor its "done" mark.
 */
export const jobs = pgTable('jobs', {
  name: text('name').primaryKey(),
  runs: bigint('runs', { mode: 'number' }).notNull().default(0),
  lastStartedAt: timestamp('last_started_at', { withTimezone: true, precision: 3 }),
  lastFinishedAt: timestamp('last_finished_at', { withTimezone: true, precision: 3 }),
  /** Which instance ran it last (host and process id). */
  lastInstance: text('last_instance'),
  /** The last run's error message; null when it succeeded. */
  lastError: text('last_error'),
});

export const auditLog = pgTable(
  'audit_log',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    actor: text('actor').notNull(),
    /** Dotted past tense, e.g. `experiment.started`. */
    action: text('action').notNull(),
    entityType: text('entity_type').notNull(),
    entityId: uuid('entity_id').notNull(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
  },
  (t) => [index('audit_log_entity_idx').on(t.entityType, t.entityId, t.createdAt.desc())],
);

/** API keys: only a SHA-256 of the key is stored (keys are 256-bit random, so a slow hash adds nothing). */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    /** The first characters of the key, shown in listings so people can tell keys apart. */
    prefix: text('prefix').notNull(),
    keyHash: text('key_hash').notNull().unique('api_keys_key_hash_unique'),
    scopes: text('scopes').array().notNull(),
    createdAt: createdAt(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, precision: 3 }),
    revokedAt: timestamp('revoked_at', { withTimezone: true, precision: 3 }),
  },
  (t) => [uniqueIndex('api_keys_active_name_unique').on(t.name).where(sql`${t.revokedAt} IS NULL`)],
);

// Media Gateway context (read-only here; the seed fills it so experiments have real users and content).

export const users = pgTable('users', {
  id: uuid('id').primaryKey().defaultRandom(),
  username: text('username').notNull().unique('users_username_unique'),
  email: text('email').notNull().unique('users_email_unique'),
  createdAt: createdAt(),
});

export const contentItems = pgTable('content_items', {
  id: uuid('id').primaryKey().defaultRandom(),
  title: text('title').notNull(),
  kind: contentKind('kind').notNull(),
  genres: text('genres').array().notNull().default(sql`'{}'::text[]`),
  releaseYear: integer('release_year'),
  createdAt: createdAt(),
});

export const userPreferences = pgTable('user_preferences', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  favoriteGenres: text('favorite_genres').array().notNull().default(sql`'{}'::text[]`),
  language: text('language').notNull().default('en'),
  maturityRating: text('maturity_rating').notNull().default('PG-13'),
  autoplay: boolean('autoplay').notNull().default(true),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const playbackProgress = pgTable(
  'playback_progress',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    contentId: uuid('content_id')
      .notNull()
      .references(() => contentItems.id, { onDelete: 'cascade' }),
    positionSeconds: integer('position_seconds').notNull().default(0),
    durationSeconds: integer('duration_seconds').notNull(),
    completed: boolean('completed').notNull().default(false),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.contentId] }),
    check('playback_progress_position_valid', sql`${t.positionSeconds} >= 0 AND ${t.durationSeconds} > 0`),
  ],
);

/**
 * The dimension levels an experiment admitted (src/aggregates/segments.ts): at most LIMITS.maxDimensions keys
 * and LIMITS.maxDimensionLevels levels per key, first come first admitted; a later level is stored as
 * `__other__`. Never rebuilt: it records which levels were admitted when, and raw exposures keep the result.
 */
export const experimentDimensionLevels = pgTable(
  'experiment_dimension_levels',
  {
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    dimension: text('dimension').notNull(),
    level: text('level').notNull(),
  },
  (t) => [primaryKey({ columns: [t.experimentId, t.dimension, t.level] })],
);

/**
 * Per exposed unit: its first exposure (earliest event time, then event id) and that exposure's dimensions,
 * which place the unit's per-unit totals in a period (the hour of first_at) and in segments. No foreign key
 * (an RI check per new unit would cost ingestion; see eventColumns): deleting an experiment deletes its rows
 * through a trigger (drizzle/repeatable/segment_stats.sql).
 */
export const experimentUnitSegments = pgTable(
  'experiment_unit_segments',
  {
    experimentId: uuid('experiment_id').notNull(),
    userId: text('user_id').notNull(),
    firstAt: timestamp('first_at', { withTimezone: true }).notNull(),
    firstEventId: uuid('first_event_id').notNull(),
    dimensions: jsonb('dimensions').$type<Record<string, string>>(),
  },
  (t) => [primaryKey({ columns: [t.experimentId, t.userId] })],
);

/**
 * Per-variant sufficient statistics of the units first exposed in each hour (UTC), per metric: the cumulative
 * sums over hours are `Experiment.timeSeries`. Same columns as experiment_variant_stats (every unit with a row
 * is exposed); maintained by the fold (src/aggregates/fold.ts), defined by rebuild_segment_stats
 * (drizzle/repeatable/segment_stats.sql).
 */
export const experimentPeriodStats = pgTable(
  'experiment_period_stats',
  {
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    metricName: text('metric_name').notNull(),
    variantId: uuid('variant_id')
      .notNull()
      .references(() => experimentVariants.id, { onDelete: 'cascade' }),
    periodStart: timestamp('period_start', { withTimezone: true }).notNull(),
    units: bigint('units', { mode: 'number' }).notNull().default(0),
    sum: doublePrecision('sum').notNull().default(0),
    sumSquares: doublePrecision('sum_squares').notNull().default(0),
    convertedUnits: bigint('converted_units', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.experimentId, t.metricName, t.variantId, t.periodStart] })],
);

/**
 * Per-variant sufficient statistics per dimension level and metric (`Experiment.breakdown`): a unit counts
 * in the level its first exposure carried for each key. Units without the key are the total minus the levels.
 */
export const experimentSegmentStats = pgTable(
  'experiment_segment_stats',
  {
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id, { onDelete: 'cascade' }),
    dimension: text('dimension').notNull(),
    metricName: text('metric_name').notNull(),
    variantId: uuid('variant_id')
      .notNull()
      .references(() => experimentVariants.id, { onDelete: 'cascade' }),
    level: text('level').notNull(),
    units: bigint('units', { mode: 'number' }).notNull().default(0),
    sum: doublePrecision('sum').notNull().default(0),
    sumSquares: doublePrecision('sum_squares').notNull().default(0),
    convertedUnits: bigint('converted_units', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.experimentId, t.dimension, t.metricName, t.variantId, t.level] })],
);
