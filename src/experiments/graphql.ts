/** Experiment and Variant types with the queries and mutations that return them. */
import { addForcedSummary, getForcedSummary } from '../aggregates/forced';
import { ValidationError } from '../common/errors';
import { isUuid, parse } from '../common/validation';
import { LIMITS } from '../config';

import type { VariantMetricsRow } from '../aggregates/read';
import type { FieldNode, GraphQLObjectType, GraphQLResolveInfo } from 'graphql';
import type { MetricSettingRow } from './metric-settings';
import type { PhaseRow } from './phases';
import type {
  AuditRow,
  ExperimentColumn,
  ExperimentInclude,
  ExperimentRow,
  ExperimentWith,
  OverrideRow,
  VariantColumn,
  VariantRow,
} from './repository';
import * as repo from './repository';
import { LOGICAL_OPERATORS, VALUE_OPERATORS } from '../assignments/targeting';
import {
  EXPERIMENT_KINDS,
  EXPERIMENT_STATUSES,
  type ExperimentKind,
  type ExperimentStatus,
  type LifecycleAction,
} from './lifecycle';
import { METRIC_ROLES } from '../metrics/definitions';
import type { BanditInput } from '../bandits/settings';
import {
  auditLogArgs,
  type CreateExperimentInput as CreateInput,
  type MetricSettingInput,
  type MetricRoleInput,
  createExperimentService,
  experimentLookupArgs,
  experimentListArgs,
  type OverrideArgs,
  type SetOverrideArgs,
  type UpdateExperimentInput as UpdateInput,
  type VariantInput as NewVariant,
  type VariantPatch,
} from './service';
import { builder } from '../graphql/builder';
import type { GraphQLContext } from '../graphql/context';
import { CHANGE_ERRORS, CREATE_ERRORS, TRANSITION_ERRORS, VARIANT_CHANGE_ERRORS } from '../graphql/errors';
import { enumValues } from '../graphql/enums';
import type { ArgsOf, InputFieldsOf, Types } from '../graphql/input';
import { argumentsOf, childFieldNames, fieldsAt } from '../graphql/selection';
import type { z } from 'zod';

const STATUS_DESCRIPTIONS = {
  draft: 'Being set up: variants can be added, renamed and removed; nobody is enrolled.',
  running: 'Enrolling users and counting events. Only weights and configs of variants can change.',
  paused: 'Enrolls nobody new; stored assignments are kept and still returned, and events still count.',
  completed: 'Finished: no enrolment, no more changes; the numbers are final. Can only be archived.',
  archived: 'Retired and read-only; can be deleted.',
} satisfies Record<ExperimentStatus, string>;

export const ExperimentStatusEnum = builder.enumType('ExperimentStatus', {
  description:
    'Lifecycle: DRAFT → RUNNING ⇄ PAUSED → COMPLETED → ARCHIVED (a draft may also be archived). Only RUNNING enrolls users.',
  values: enumValues(EXPERIMENT_STATUSES, STATUS_DESCRIPTIONS),
});

export const ExperimentKindEnum = builder.enumType('ExperimentKind', {
  description: 'What an experiment is for.',
  values: enumValues(EXPERIMENT_KINDS, {
    standard: 'An A/B test of variants.',
    holdout:
      'A holdout: exactly two variants, the control is the held-out group and the other the general group. Experiments and layers linked to it (setHoldout, setLayerHoldout) never enroll its held-out units, so its own results measure the combined impact of what they ship.',
    bandit:
      'A multi-armed bandit: equal weights while exploring, then the service reweights the variants on a cadence by each one’s posterior probability of being best on the decision metric (Gaussian Thompson sampling). Settings in `bandit`, progress in `banditState`.',
  } satisfies Record<ExperimentKind, string>),
});

export const ExperimentRef = builder.objectRef<ExperimentRow>('Experiment');
export const VariantRef = builder.objectRef<VariantRow>('Variant');
const VariantMetricsRef = builder.objectRef<VariantMetricsRow>('VariantMetrics');
/** `rows` when the experiment's statement read them, else loaded. */
const ExperimentMetricsRef = builder.objectRef<{ experimentId: string; rows: VariantMetricsRow[] | null }>(
  'ExperimentMetrics',
);
const VariantSummaryRef = builder.objectRef<VariantMetricsRow>('VariantSummary');
const AuditEntryRef = builder.objectRef<AuditRow>('AuditEntry');
const OverrideRef = builder.objectRef<OverrideRow>('Override');

function service(ctx: GraphQLContext) {
  return createExperimentService({
    db: ctx.db,
    actor: ctx.actor,
    onChange: ctx.onExperimentChange,
    afterCommit: ctx.afterExperimentChange,
  });
}

/** Metrics row for a variant, zero when it has no events yet. */
async function variantMetrics(ctx: GraphQLContext, variant: VariantRow): Promise<VariantMetricsRow> {
  const rows = await experimentMetrics(ctx, variant.experimentId);
  return (
    rows.find((r) => r.variantId === variant.id) ?? {
      experimentId: variant.experimentId,
      variantId: variant.id,
      variantName: variant.name,
      exposures: 0,
      uniqueUsers: 0,
      conversions: 0,
      conversionRate: 0,
      avgMetricValue: null,
    }
  );
}

/**
 * The columns each field of Experiment and Variant reads from its row (the id always comes along). A
 * selection of listed fields only is read with just their columns; any other field (results, payloads,
 * fields other modules add) may read anything, so its selection reads whole rows. A resolver changed to
 * read another column must say so here.
 */
const EXPERIMENT_FIELD_COLUMNS = new Map<string, readonly ExperimentColumn[]>([
  ['__typename', []],
  ['id', []],
  ['key', ['key']],
  ['name', ['name']],
  ['description', ['description']],
  ['status', ['status']],
  ['trafficAllocation', ['trafficAllocation']],
  ['kind', ['kind']],
  ['holdout', ['holdoutId']],
  ['hashSeed', ['hashSeed']],
  ['targeting', ['targeting']],
  ['startAt', ['startAt']],
  ['endAt', ['endAt']],
  ['createdAt', ['createdAt']],
  ['updatedAt', ['updatedAt']],
  ['variants', []],
  ['metricSettings', []],
  ['phases', []],
  ['metrics', []],
  ['summary', []],
  ['assignmentCount', []],
  ['overrides', []],
  ['auditLog', []],
]);
const VARIANT_FIELD_COLUMNS = new Map<string, readonly VariantColumn[]>([
  ['__typename', []],
  ['id', []],
  ['name', ['name']],
  ['weight', ['weight']],
  ['config', ['config']],
  ['isControl', ['isControl']],
  ['position', ['position']],
  ['experiment', []],
  // Its fallback row (no counts yet) carries the variant's name.
  ['metrics', ['name']],
]);

/** The columns a selection reads, or undefined (every column) when it has a field not listed. */
function columnsFor<C>(fields: Map<string, readonly C[]>, selected: Set<string>): C[] | undefined {
  const columns: C[] = [];
  for (const name of selected) {
    const read = fields.get(name);
    if (!read) return undefined;
    columns.push(...read);
  }
  return columns;
}

/**
 * What one statement can read with experiments, from the selection below them: the columns the
 * selected fields read, variants, per-variant metrics, assignment counts and audit entries (the lists
 * a dashboard shows). Everything else (results, metric names, GrowthBook payloads…) still goes through
 * the per-request loaders, batched.
 */
interface ExperimentPlan {
  include: ExperimentInclude;
  /** The `first` of every auditLog selection, each primed with its own slice. */
  auditFirsts: number[];
}

function planExperimentReads(
  info: GraphQLResolveInfo,
  nodes: readonly FieldNode[],
  extraColumns: readonly ExperimentColumn[] = [],
): ExperimentPlan {
  const variants = fieldsAt(info, nodes, 'variants');
  const columns = columnsFor(EXPERIMENT_FIELD_COLUMNS, childFieldNames(info, nodes));
  const variantColumns = columnsFor(VARIANT_FIELD_COLUMNS, childFieldNames(info, variants));
  const include: ExperimentInclude = {
    columns: columns && repo.experimentColumnMask([...columns, ...extraColumns]),
    variants: variants.length > 0,
    variantColumns: variantColumns && repo.variantColumnMask(variantColumns),
    metrics:
      fieldsAt(info, variants, 'metrics').length > 0 ||
      fieldsAt(info, nodes, 'metrics').length > 0 ||
      fieldsAt(info, nodes, 'summary').length > 0,
    assignmentCount: fieldsAt(info, nodes, 'assignmentCount').length > 0,
  };
  const auditFirsts = new Set<number>();
  const auditField = (info.schema.getType('Experiment') as GraphQLObjectType).getFields().auditLog;
  for (const node of fieldsAt(info, nodes, 'auditLog')) {
    const args = auditLogArgs.safeParse(argumentsOf(info, auditField, node));
    // A bad `first` is the resolver's to report (as a typed error); fetch no audit entries for it here.
    if (!args.success) return { include, auditFirsts: [] };
    auditFirsts.add(args.data.first);
  }
  if (auditFirsts.size) include.auditLimit = Math.max(...auditFirsts);
  return { include, auditFirsts: [...auditFirsts] };
}

/**
 * A note kept on an object under a symbol of its own: what a WeakMap keyed by the object would hold,
 * without a WeakMap entry per row (a page makes 50-200 of them per request, each an ephemeron the
 * garbage collector must trace). Symbol properties stay out of JSON and Object.keys.
 */
function note<K extends object, V>() {
  const key = Symbol();
  return {
    get: (object: K): V | undefined => (object as Record<symbol, V | undefined>)[key],
    set: (object: K, value: V) => {
      (object as Record<symbol, V>)[key] = value;
    },
  };
}

/**
 * What the planned statement read with each experiment, noted on the row object it returned (rows are
 * made per request, so nothing outlives the request). Nested resolvers answer from it synchronously,
 * without a loader round (no promise per field); what was not read goes through the loaders as before.
 */
const readWith = note<ExperimentRow, ExperimentWith & { auditFirsts: readonly number[] }>();
/** A variant's counts when its experiment's statement read them. */
const metricsOf = note<VariantRow, VariantMetricsRow>();

function remember(ctx: GraphQLContext, read: ExperimentWith, plan: ExperimentPlan): ExperimentRow {
  readWith.set(read.experiment, { ...read, auditFirsts: plan.auditFirsts });
  // Lookups by id elsewhere in the same request (Variant.experiment) find the row without SQL; a row
  // read with some columns only would hand them a row without the rest.
  if (read.complete) ctx.loaders.experimentById.prime(read.experiment.id, read.experiment);
  if (read.variants && read.metrics) {
    const byVariant = new Map(read.metrics.map((m) => [m.variantId, m]));
    for (const variant of read.variants) {
      const metrics = byVariant.get(variant.id);
      if (metrics) metricsOf.set(variant, metrics);
    }
  }
  return read.experiment;
}

const nothingNested = ({ include }: ExperimentPlan) =>
  !include.variants && !include.metrics && !include.assignmentCount && include.auditLimit === undefined;

/** An experiment's per-variant counts: as its statement read them, or through the loader. */
function experimentMetrics(
  ctx: GraphQLContext,
  experimentId: string,
  experiment?: ExperimentRow,
): VariantMetricsRow[] | Promise<VariantMetricsRow[]> {
  return (
    (experiment && readWith.get(experiment)?.metrics) ?? ctx.loaders.metricsByExperimentId.load(experimentId)
  );
}

/** The variant fields an `assign` key reads through its Assignment (as POST /v1/assignments returns them). */
const assignedVariant = { skipTypeScopes: true, authScopes: { read: true, assign: true } } as const;

// Shared by VariantMetrics and the deprecated VariantSummary, which hold the same row.
const metricFields = (t: PothosSchemaTypes.ObjectFieldBuilder<Types, VariantMetricsRow>) => ({
  exposures: t.exposeInt('exposures', { description: 'Exposure events recorded for the variant.' }),
  uniqueUsers: t.exposeInt('uniqueUsers', { description: 'Distinct users with at least one exposure.' }),
  conversions: t.exposeInt('conversions', {
    description:
      "Conversion events (all metrics) of the variant inside their unit's attribution window (from its first exposure until the experiment completed, within the metric's conversion window); events outside are stored but not counted here.",
  }),
  conversionRate: t.exposeFloat('conversionRate', {
    description:
      'Exposed users with at least one counted conversion ÷ exposed users (0 when nobody was exposed).',
  }),
  avgMetricValue: t.exposeFloat('avgMetricValue', {
    nullable: true,
    description: 'Mean value of the counted conversion events; null when there are none.',
  }),
});

VariantMetricsRef.implement({
  description: 'Raw per-variant counts. For significance and intervals use `Experiment.results`.',
  authScopes: { read: true },
  fields: (t) => ({
    variant: t.field({
      type: VariantRef,
      description: 'The variant these counts belong to.',
      resolve: async (m, _a, ctx) => (await ctx.loaders.variantById.load(m.variantId))!,
    }),
    ...metricFields(t),
  }),
});

VariantSummaryRef.implement({
  description: 'One row of the SQL function `get_experiment_summary(experiment_id)`.',
  authScopes: { read: true },
  fields: (t) => ({
    variantId: t.exposeID('variantId', { description: 'Id of the variant (`Variant.id`).' }),
    variantName: t.exposeString('variantName', { description: 'Name of the variant at query time.' }),
    ...metricFields(t),
  }),
});

ExperimentMetricsRef.implement({
  description: 'Per-variant counts of an experiment, in variant position order.',
  authScopes: { read: true },
  fields: (t) => ({
    variantMetrics: t.field({
      type: [VariantMetricsRef],
      description: 'One entry per variant, also for variants with no events yet (all counts 0).',
      resolve: (m, _a, ctx) => m.rows ?? ctx.loaders.metricsByExperimentId.load(m.experimentId),
    }),
    totalExposures: t.int({
      description: 'Exposure events across all variants.',
      resolve: async (m, _a, ctx) =>
        (m.rows ?? (await ctx.loaders.metricsByExperimentId.load(m.experimentId))).reduce(
          (s, r) => s + r.exposures,
          0,
        ),
    }),
    totalUniqueUsers: t.int({
      description: 'Exposed users across all variants.',
      resolve: async (m, _a, ctx) =>
        (m.rows ?? (await ctx.loaders.metricsByExperimentId.load(m.experimentId))).reduce(
          (s, r) => s + r.uniqueUsers,
          0,
        ),
    }),
  }),
});

AuditEntryRef.implement({
  description: 'One change to an experiment or its variants, written in the same transaction as the change.',
  authScopes: { read: true },
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Id of the audit entry.' }),
    actor: t.exposeString('actor', { description: 'Who made the change (the API key name).' }),
    action: t.exposeString('action', {
      description: 'Dotted past tense, e.g. `experiment.started`, `variant.updated`.',
    }),
    entityType: t.exposeString('entityType', {
      description: 'What the entry is filed under; `experiment` for experiment and variant changes alike.',
    }),
    entityId: t.exposeID('entityId', {
      description: 'Id of the experiment. Entries outlive a deleted experiment, so it may no longer resolve.',
    }),
    details: t.field({
      type: 'JSON',
      description: 'Before/after snapshots and transition details.',
      resolve: (a) => a.details,
    }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When the change was committed.',
      resolve: (a) => a.createdAt,
    }),
  }),
});

export const PhaseWeightRef = builder
  .objectRef<{ variantId: string; weight: number }>('PhaseWeight')
  .implement({
    description: "A variant's weight during a phase.",
    authScopes: { read: true },
    fields: (t) => ({
      variantId: t.exposeID('variantId', { description: 'Id of the variant (`Variant.id`).' }),
      weight: t.exposeFloat('weight', {
        description: 'Its relative weight then (0: the variant received no new units during the phase).',
      }),
    }),
  });

const PhaseRef = builder.objectRef<PhaseRow>('ExperimentPhase').implement({
  description:
    "A span of the run with fixed weights and traffic (as GrowthBook phases). Starting opens phase 1; changing a variant weight or the traffic allocation while running or paused opens the next. Each unit belongs to the phase in force when it was assigned, and the sample-ratio check expects each phase's units to split by that phase's weights.",
  authScopes: { read: true },
  fields: (t) => ({
    index: t.exposeInt('index', { description: '1, 2, … in order.' }),
    startedAt: t.field({
      type: 'DateTime',
      description: 'When the phase began (the start, or the change that opened it).',
      resolve: (p) => p.startedAt,
    }),
    endedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the next phase began or the experiment completed; null while in force.',
      resolve: (p) => p.endedAt,
    }),
    trafficAllocation: t.exposeFloat('trafficAllocation', {
      description: 'Share of users (0..1) that entered the experiment during the phase.',
    }),
    weights: t.field({
      type: [PhaseWeightRef],
      description: 'Every variant with its weight in force during the phase, in bucketing order.',
      resolve: (p) => p.weights,
    }),
  }),
});

const MetricSettingRef = builder.objectRef<MetricSettingRow>('MetricSetting').implement({
  description: "A metric's settings in this experiment.",
  authScopes: { read: true },
  fields: (t) => ({
    metric: t.exposeString('metricName', { description: "The metric's name." }),
    conversionWindowHours: t.exposeFloat('conversionWindowHours', {
      nullable: true,
      description:
        "Conversions count only this many hours after the unit's first exposure; null: from the first exposure until the experiment completes.",
    }),
  }),
});

ExperimentRef.implement({
  description: 'An A/B test of a recommendation strategy: its lifecycle, traffic and variants.',
  authScopes: { read: true },
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable UUID; management mutations take it.' }),
    key: t.exposeString('key', { description: 'Unique slug clients use to ask for an assignment.' }),
    name: t.exposeString('name', { description: 'Display name.' }),
    description: t.exposeString('description', {
      nullable: true,
      description: 'Free text for people: the hypothesis, the audience, links.',
    }),
    status: t.field({
      type: ExperimentStatusEnum,
      description: 'Where it is in its lifecycle; only RUNNING enrolls new users.',
      resolve: (e) => e.status,
    }),
    trafficAllocation: t.exposeFloat('trafficAllocation', {
      description:
        'Share of users (0..1) that enter the experiment; the rest get no variant (OUTSIDE_TRAFFIC).',
    }),
    kind: t.field({
      type: ExperimentKindEnum,
      description: 'STANDARD, HOLDOUT or BANDIT (see ExperimentKind).',
      resolve: (e) => e.kind,
    }),
    holdout: t.field({
      type: ExperimentRef,
      nullable: true,
      description:
        'The HOLDOUT linked to this experiment (setHoldout); its held-out units get reason HOLDOUT here. A layer’s holdout applies too (Layer.holdout).',
      resolve: (e, _a, ctx) => (e.holdoutId ? ctx.loaders.experimentById.load(e.holdoutId) : null),
    }),
    hashSeed: t.exposeString('hashSeed', {
      nullable: true,
      description: 'Seed for bucketing; null means the key is the seed (as GrowthBook does).',
    }),
    targeting: t.field({
      type: 'JSON',
      nullable: true,
      description:
        'Who may enroll: a GrowthBook targeting condition over the attributes given to `assignVariant` (e.g. `{"country": {"$in": ["US", "CA"]}, "appVersion": {"$vgte": "2.1.0"}}`). Null targets everybody. A new unit that does not match gets reason NOT_TARGETED; a unit with a stored assignment keeps it (sticky) even if the condition changes.',
      resolve: (e) => e.targeting,
    }),
    startAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it first started running.',
      resolve: (e) => e.startAt,
    }),
    endAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it was completed.',
      resolve: (e) => e.endAt,
    }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When it was created; lists are ordered by it, newest first.',
      resolve: (e) => e.createdAt,
    }),
    updatedAt: t.field({
      type: 'DateTime',
      description:
        'Last change to the experiment itself (status or settings; variant edits are in auditLog).',
      resolve: (e) => e.updatedAt,
    }),
    variants: t.field({
      type: [VariantRef],
      description: 'Variants in position order, which is the bucketing order.',
      resolve: (e, _a, ctx) => readWith.get(e)?.variants ?? ctx.loaders.variantsByExperimentId.load(e.id),
    }),
    metricSettings: t.field({
      type: [MetricSettingRef],
      description:
        'Per-metric settings (conversion windows), by metric name. A metric without one counts conversions from the first exposure until the end.',
      resolve: (e, _a, ctx) => ctx.loaders.metricSettingsByExperimentId.load(e.id),
    }),
    phases: t.field({
      type: [PhaseRef],
      description:
        'The weight history, oldest first: empty before the start. Results pool units over phases (see `ExperimentResults.weightsChanged`).',
      resolve: (e, _a, ctx) => ctx.loaders.phasesByExperimentId.load(e.id),
    }),
    metrics: t.field({
      type: ExperimentMetricsRef,
      description: 'Raw per-variant counts (exposures, users, conversions).',
      args: {
        includeForced: t.arg.boolean({
          required: false,
          description:
            'Add the events of forced units (QA overrides) to the counts (default false: only randomised units count).',
        }),
      },
      resolve: async (e, { includeForced }, ctx) => {
        const rows = readWith.get(e)?.metrics ?? null;
        if (!includeForced) return { experimentId: e.id, rows };
        const [randomised, forced] = await Promise.all([
          rows ?? ctx.loaders.metricsByExperimentId.load(e.id),
          getForcedSummary(ctx.db, e.id),
        ]);
        return { experimentId: e.id, rows: addForcedSummary(randomised, forced) };
      },
    }),
    summary: t.field({
      type: [VariantSummaryRef],
      description: 'The rows of the SQL function get_experiment_summary for this experiment.',
      deprecationReason: 'The same numbers as `metrics { variantMetrics }`; use that.',
      resolve: (e, _a, ctx) => experimentMetrics(ctx, e.id, e),
    }),
    assignmentCount: t.int({
      description: 'Users with a stored assignment.',
      resolve: (e, _a, ctx) =>
        readWith.get(e)?.assignmentCount ?? ctx.loaders.assignmentCountByExperimentId.load(e.id),
    }),
    overrides: t.field({
      type: [OverrideRef],
      description: `QA overrides (forced variants), oldest first; at most ${LIMITS.maxOverridesPerExperiment.toLocaleString('en-US')}.`,
      resolve: (e, _a, ctx) => ctx.loaders.overridesByExperimentId.load(e.id),
    }),
    auditLog: t.field({
      type: [AuditEntryRef],
      description: 'Changes, newest first.',
      args: {
        first: t.arg.int({
          required: false,
          description: `At most ${LIMITS.auditLogMaxPage}; default ${LIMITS.auditLogDefaultPage}.`,
        }),
      } satisfies ArgsOf<z.input<typeof auditLogArgs>>,
      resolve: (e, args, ctx) => {
        const { first } = parse(auditLogArgs, args);
        const read = readWith.get(e);
        if (read?.audit && read.auditFirsts.includes(first)) return read.audit.slice(0, first);
        return ctx.loaders.auditByExperiment.load(`${e.id}:${first}`);
      },
    }),
  }),
});

VariantRef.implement({
  description: 'One arm of an experiment, with its weight and the configuration the client applies.',
  // Reading a variant is a dashboard's business, except what a client needs to apply its assignment.
  authScopes: { read: true },
  fields: (t) => ({
    id: t.exposeID('id', {
      ...assignedVariant,
      description: 'Stable UUID; events may name it as `variantId`, and assignments refer to it.',
    }),
    name: t.exposeString('name', {
      ...assignedVariant,
      description: 'Unique within its experiment, e.g. `control`.',
    }),
    weight: t.exposeFloat('weight', {
      description:
        'Relative share of enrolled traffic. Weights summing to 0.99..1.01 are used as given (as GrowthBook does); any others are scaled to sum 1 (`Experiment.growthbook.weights` has the weights bucketing uses).',
    }),
    config: t.field({
      ...assignedVariant,
      type: 'JSON',
      description: 'Configuration for the client, e.g. `{"strategy": "item-item-cf"}`.',
      resolve: (v) => v.config,
    }),
    isControl: t.exposeBoolean('isControl', {
      ...assignedVariant,
      description: 'The baseline that treatments are compared against.',
    }),
    position: t.exposeInt('position', { description: 'Bucketing order (0-based).' }),
    experiment: t.field({
      type: ExperimentRef,
      description: 'The experiment this variant belongs to.',
      resolve: async (v, _a, ctx) => (await ctx.loaders.experimentById.load(v.experimentId))!,
    }),
    metrics: t.field({
      type: VariantMetricsRef,
      description: 'Raw counts for this variant.',
      resolve: (v, _a, ctx) => metricsOf.get(v) ?? variantMetrics(ctx, v),
    }),
  }),
});

// Relay-style connection, written out so cursors and totalCount are exactly what dashboards need.
export const PageInfoRef = builder.objectRef<{
  hasNextPage: boolean;
  endCursor: string | null;
  startCursor: string | null;
}>('PageInfo');
PageInfoRef.implement({
  description: 'Relay page information.',
  authScopes: { read: true },
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage', {
      description: 'True when another page follows; fetch it with `after: endCursor`.',
    }),
    hasPreviousPage: t.boolean({
      description: 'Always false: pagination is forward only.',
      resolve: () => false,
    }),
    startCursor: t.exposeString('startCursor', {
      nullable: true,
      description: 'Cursor of the first edge; null on an empty page.',
    }),
    endCursor: t.exposeString('endCursor', {
      nullable: true,
      description: 'Pass as `after` to get the next page.',
    }),
  }),
});
/**
 * An edge is its experiment's row: the cursor is encoded only when selected (a page of 50 paid for 50
 * cursors nobody asked for, and an object per edge).
 */
const EdgeRef = builder.objectRef<ExperimentRow>('ExperimentEdge');
EdgeRef.implement({
  description: 'One experiment in a page, with the cursor that marks its place.',
  authScopes: { read: true },
  fields: (t) => ({
    cursor: t.string({
      description: 'Opaque position of this experiment; pass it as `after` to continue after it.',
      resolve: (row) => encodeCursor(row),
    }),
    node: t.field({ type: ExperimentRef, description: 'The experiment.', resolve: (row) => row }),
  }),
});
interface ConnectionShape {
  edges: ExperimentRow[];
  hasNextPage: boolean;
  status: ExperimentRow['status'] | null;
  /** Counted in the page's statement when selected; null when it was not (or the page is empty). */
  totalCount: number | null;
}
const ConnectionRef = builder.objectRef<ConnectionShape>('ExperimentConnection');
ConnectionRef.implement({
  description: 'A page of experiments, newest first.',
  authScopes: { read: true },
  fields: (t) => ({
    edges: t.field({
      type: [EdgeRef],
      description: 'The experiments of this page, newest first.',
      // `experiments` already multiplies by `first`; the default list ×10 here would count each page 10 times.
      complexity: { field: 1, multiplier: 1 },
      resolve: (c) => c.edges,
    }),
    pageInfo: t.field({
      type: PageInfoRef,
      description: 'Whether there is more, and the cursor to get it.',
      resolve: ({ edges, hasNextPage }) => ({
        hasNextPage,
        startCursor: edges.length ? encodeCursor(edges[0]) : null,
        endCursor: edges.length ? encodeCursor(edges[edges.length - 1]) : null,
      }),
    }),
    totalCount: t.int({
      description: 'Experiments matching the filter, across all pages.',
      resolve: (c, _a, ctx) => c.totalCount ?? repo.countExperiments(ctx.db, c.status),
    }),
  }),
});

export const encodeCursor = (row: Pick<ExperimentRow, 'createdAt' | 'id'>) =>
  Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id])).toString('base64url');

export function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [ts, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    const createdAt = new Date(ts);
    if (Number.isNaN(createdAt.getTime()) || typeof id !== 'string' || !isUuid(id)) throw new Error();
    return { createdAt, id };
  } catch {
    throw ValidationError.field(['after'], 'after is not a cursor returned by this API');
  }
}

builder.queryFields((t) => ({
  experiment: t.field({
    type: ExperimentRef,
    nullable: true,
    authScopes: { read: true },
    description: 'One experiment by id or by key (give exactly one). Null when it does not exist.',
    args: {
      id: t.arg.id({ required: false, description: 'The experiment’s UUID. Give this or `key`.' }),
      key: t.arg.string({ required: false, description: 'The experiment’s key. Give this or `id`.' }),
    } satisfies ArgsOf<z.input<typeof experimentLookupArgs>>,
    resolve: async (_r, args, ctx, info) => {
      const ref = parse(experimentLookupArgs, args);
      const plan = planExperimentReads(info, info.fieldNodes);
      if (nothingNested(plan)) {
        return 'id' in ref
          ? ctx.loaders.experimentById.load(ref.id)
          : ctx.loaders.experimentByKey.load(ref.key);
      }
      const read = await ctx.loaders.experimentWith.load({ ref, include: plan.include });
      return read ? remember(ctx, read, plan) : null;
    },
  }),
  experiments: t.field({
    type: ConnectionRef,
    authScopes: { read: true },
    // Each page multiplies the cost of what is selected per experiment.
    complexity: (args) => ({ field: 1, multiplier: Math.max(1, args.first ?? LIMITS.defaultPageSize) }),
    description: `Experiments, newest first, as a Relay connection (first ≤ ${LIMITS.maxPageSize}).`,
    args: {
      status: t.arg({
        type: ExperimentStatusEnum,
        required: false,
        description: 'Only experiments in this status.',
      }),
      first: t.arg.int({
        required: false,
        description: `Page size, 0..${LIMITS.maxPageSize}, default ${LIMITS.defaultPageSize}.`,
      }),
      after: t.arg.string({ required: false, description: 'Cursor of the last edge of the previous page.' }),
    } satisfies ArgsOf<z.input<typeof experimentListArgs>>,
    resolve: async (_r, args, ctx, info) => {
      const { status, first, after } = parse(experimentListArgs, args);
      // Cursors are made of the creation time (and id).
      const cursors =
        fieldsAt(info, info.fieldNodes, 'edges', 'cursor').length > 0 ||
        fieldsAt(info, info.fieldNodes, 'pageInfo').length > 0;
      const plan = planExperimentReads(
        info,
        fieldsAt(info, info.fieldNodes, 'edges', 'node'),
        cursors ? ['createdAt'] : [],
      );
      const { rows, totalCount } = await repo.listExperimentsWith(
        ctx.db,
        { status, limit: first + 1, before: after ? decodeCursor(after) : null },
        { ...plan.include, totalCount: fieldsAt(info, info.fieldNodes, 'totalCount').length > 0 },
      );
      const edges = rows.slice(0, first).map((read) => remember(ctx, read, plan));
      return { edges, status, totalCount, hasNextPage: rows.length > first };
    },
  }),
}));

const TARGETING_INPUT_DESCRIPTION = `A GrowthBook targeting condition (MongoDB-style: ${VALUE_OPERATORS.join(' ')}, combined with ${LOGICAL_OPERATORS.join(' ')}; attribute names may be dot paths). At most ${LIMITS.targetingMaxBytes / 1024} KB. Checked on save: an unknown operator or a malformed argument is a ValidationError naming its path (e.g. \`input.targeting.country.$inn\`). Saved groups ($inGroup, $notInGroup, $savedGroup) are not supported.`;

const VariantInput = builder.inputRef<NewVariant, false>('VariantInput').implement({
  description: 'A variant to create.',
  fields: (t) =>
    ({
      name: t.string({
        required: true,
        description: `Unique within the experiment, 1..${LIMITS.nameMaxLength} characters.`,
      }),
      weight: t.float({
        required: false,
        description: `Relative weight, 0..${LIMITS.maxVariantWeight.toLocaleString('en-US')} (default 1).`,
      }),
      config: t.field({
        type: 'JSON',
        required: false,
        description: `A JSON object, at most ${LIMITS.configMaxBytes / 1024} KB and ${LIMITS.jsonMaxDepth} levels deep.`,
      }),
      isControl: t.boolean({ required: false, description: 'At most one control per experiment.' }),
    }) satisfies InputFieldsOf<NewVariant>,
});

const MetricSettingInputRef = builder.inputRef<MetricSettingInput, false>('MetricSettingInput').implement({
  description:
    "A metric's settings in this experiment, by event name. A setting here overrides the default window of the defined metrics the experiment lists (`metricRoles`).",
  fields: (t) =>
    ({
      metric: t.string({
        required: true,
        description: `The metric's name (a slug, at most ${LIMITS.metricNameMaxLength} characters), as events record it.`,
      }),
      conversionWindowHours: t.float({
        required: false,
        description: `Conversions count only this many hours after the unit's first exposure (more than 0, at most ${LIMITS.maxConversionWindowHours}); null: until the experiment completes.`,
      }),
    }) satisfies InputFieldsOf<MetricSettingInput>,
});

export const MetricRoleEnum = builder.enumType('MetricRole', {
  description: 'A metric’s part in an experiment’s decision.',
  values: enumValues(METRIC_ROLES, {
    PRIMARY:
      'A decision metric (one or more). Its p-values are corrected together with the SECONDARY metrics’.',
    SECONDARY: 'Context for the decision; corrected together with the PRIMARY metrics.',
    GUARDRAIL:
      'Must not get worse by more than its toleratedHarm; corrected among the guardrails only (scorecard).',
  }),
});

const MetricRoleInputRef = builder.inputRef<MetricRoleInput, false>('MetricRoleInput').implement({
  description: 'A defined metric (see `createMetric`) the experiment lists, with its role.',
  fields: (t) =>
    ({
      metric: t.string({
        required: true,
        description: 'The metric’s key; it must exist and not be archived.',
      }),
      role: t.field({
        type: MetricRoleEnum,
        required: true,
        description: 'PRIMARY, SECONDARY or GUARDRAIL.',
      }),
      toleratedHarm: t.float({
        required: false,
        description:
          'GUARDRAIL only: the relative change in the bad direction that is tolerated, between -1 and 0, e.g. -0.02 for −2 %.',
      }),
    }) satisfies InputFieldsOf<MetricRoleInput>,
});

const metricRolesDescription = `The defined metrics the experiment decides on, each with its role (at most ${LIMITS.maxMetricSettings}, each once, at least one PRIMARY). A listed metric's conversionWindowHours is the default window of its events here; \`metricSettings\` overrides it.`;

const metricSettingsDescription = `Per-metric settings (at most ${LIMITS.maxMetricSettings}, one per metric), e.g. a 72-hour conversion window for \`purchase\`.`;

const B = LIMITS.bandit;
const BanditInputRef = builder.inputRef<BanditInput, false>('BanditInput').implement({
  description:
    'A BANDIT’s settings: equal weights for `explorationHours` after the start, then every `updateEveryMinutes` each arm’s weight becomes its posterior probability of being best on `decisionMetric` (floored at `minWeight`), as long as every arm has `minUnitsPerVariant` exposed units. See `Experiment.banditState`.',
  fields: (t) =>
    ({
      decisionMetric: t.string({
        required: true,
        description:
          'The key of a defined BINOMIAL or MEAN metric (createMetric); its direction says which way is best, its cap and window apply. It is listed as PRIMARY if `metricRoles` does not list it.',
      }),
      explorationHours: t.float({
        required: false,
        description: `Hours of equal weights after the start, 0..${B.maxExplorationHours} (default ${B.explorationHoursDefault}).`,
      }),
      updateEveryMinutes: t.int({
        required: false,
        description: `Minutes between reweightings, ${B.minUpdateEveryMinutes}..${B.maxUpdateEveryMinutes} (default ${B.updateEveryMinutesDefault}, daily). Each reweighting opens a phase.`,
      }),
      minWeight: t.float({
        required: false,
        description: `Every arm keeps at least this weight, 0..${B.maxMinWeight} with minWeight × variants below 1 (default ${B.minWeightDefault}).`,
      }),
      minUnitsPerVariant: t.int({
        required: false,
        description: `No reweighting until every arm has this many exposed units, ${B.minMinUnitsPerVariant}..${B.maxMinUnitsPerVariant.toExponential().replace('e+', 'e')} (default ${B.minUnitsPerVariantDefault}).`,
      }),
    }) satisfies InputFieldsOf<BanditInput>,
});

const CreateExperimentInput = builder.inputRef<CreateInput, false>('CreateExperimentInput').implement({
  description: 'A new experiment. It starts as a DRAFT; start it with startExperiment.',
  fields: (t) =>
    ({
      key: t.string({
        required: true,
        description: `Slug: lowercase letters, digits, \`_\`, \`.\`, \`-\`; at most ${LIMITS.keyMaxLength}.`,
      }),
      name: t.string({
        required: true,
        description: `Display name, 1..${LIMITS.nameMaxLength} characters.`,
      }),
      description: t.string({
        required: false,
        description: `Free text for people, at most ${LIMITS.descriptionMaxLength.toLocaleString('en-US')} characters.`,
      }),
      trafficAllocation: t.float({
        required: false,
        description: 'Share of users enrolled, 0..1 (default 1).',
      }),
      hashSeed: t.string({
        required: false,
        description: `Bucketing seed, at most ${LIMITS.hashSeedMaxLength} characters; omit to use the key.`,
      }),
      targeting: t.field({
        type: 'JSON',
        required: false,
        description: TARGETING_INPUT_DESCRIPTION,
      }),
      kind: t.field({
        type: ExperimentKindEnum,
        required: false,
        description: 'STANDARD (default), HOLDOUT or BANDIT; fixed once created.',
      }),
      bandit: t.field({
        type: BanditInputRef,
        required: false,
        description:
          'Required for kind BANDIT, refused otherwise. A bandit’s variants start with equal weights (leave `weight` out).',
      }),
      variants: t.field({
        type: [VariantInput],
        required: false,
        description: `Variants in bucketing order (at most ${LIMITS.maxVariants}, names unique, at most one control). Starting needs two or more.`,
      }),
      metricSettings: t.field({
        type: [MetricSettingInputRef],
        required: false,
        description: metricSettingsDescription,
      }),
      metricRoles: t.field({
        type: [MetricRoleInputRef],
        required: false,
        description: metricRolesDescription,
      }),
    }) satisfies InputFieldsOf<CreateInput>,
});

const UpdateExperimentInput = builder.inputRef<UpdateInput, false>('UpdateExperimentInput').implement({
  description:
    'Fields to change; omitted fields stay as they are. Status changes through start/pause/complete/archive.',
  fields: (t) =>
    ({
      name: t.string({ required: false, description: 'New display name.' }),
      description: t.string({ required: false, description: 'New description; null clears it.' }),
      trafficAllocation: t.float({
        required: false,
        description:
          'New share of users enrolled, 0..1. Affects only users not yet assigned; stored assignments stay.',
      }),
      hashSeed: t.string({
        required: false,
        description:
          'New bucketing seed; null hashes with the key again. Changing it on a running experiment reshuffles users not yet assigned.',
      }),
      metricSettings: t.field({
        type: [MetricSettingInputRef],
        required: false,
        description: `${metricSettingsDescription} Replaces every setting; null leaves them. On an experiment that has started, the aggregates are recounted from the stored events (the change takes as long as a rebuild of this experiment).`,
      }),
      targeting: t.field({
        type: 'JSON',
        required: false,
        description: `${TARGETING_INPUT_DESCRIPTION} Null clears it (everybody is targeted). On a running experiment a new condition applies to units not yet assigned; stored assignments stay.`,
      }),
      metricRoles: t.field({
        type: [MetricRoleInputRef],
        required: false,
        description: `${metricRolesDescription} Replaces the list; null leaves it. Once started, the list may only grow by SECONDARY and GUARDRAIL metrics (else RuleViolationError METRICS_FIXED), and the aggregates are recounted.`,
      }),
    }) satisfies InputFieldsOf<UpdateInput>,
});

const UpdateVariantInput = builder.inputRef<VariantPatch, false>('UpdateVariantInput').implement({
  description:
    'Once the experiment has started only weight and config can change; existing assignments never move.',
  fields: (t) =>
    ({
      name: t.string({
        required: false,
        description: 'New name, unique within the experiment (DRAFT only).',
      }),
      weight: t.float({
        required: false,
        description: 'New relative weight ≥ 0. On a running experiment the total must stay positive.',
      }),
      config: t.field({
        type: 'JSON',
        required: false,
        description: 'New client configuration, a JSON object (replaces the old one; not merged).',
      }),
      isControl: t.boolean({ required: false, description: 'Make this the control (DRAFT only).' }),
    }) satisfies InputFieldsOf<VariantPatch>,
});

const DeleteSuccessRef = builder.objectRef<{ deletedId: string }>('DeleteExperimentSuccess').implement({
  authScopes: { write: true },
  description: 'The experiment and everything recorded for it were deleted.',
  fields: (t) => ({
    deletedId: t.exposeID('deletedId', {
      description: 'Id of the deleted experiment; drop it from client caches.',
    }),
  }),
});

const lifecycle = (action: LifecycleAction, description: string) =>
  builder.mutationField(`${action}Experiment`, (t) =>
    t.field({
      type: ExperimentRef,
      description,
      authScopes: { write: true },
      errors: { types: TRANSITION_ERRORS },
      args: { id: t.arg.id({ required: true, description: 'The experiment’s UUID.' }) },
      resolve: (_r, { id }, ctx) => service(ctx).transition(id, action),
    }),
  );

lifecycle('start', 'DRAFT or PAUSED → RUNNING. Needs at least two variants with a positive total weight.');
lifecycle('pause', 'RUNNING → PAUSED: stops enrolling; existing assignments are kept.');
lifecycle('complete', 'RUNNING or PAUSED → COMPLETED.');
lifecycle('archive', 'DRAFT or COMPLETED → ARCHIVED.');

builder.mutationFields((t) => ({
  createExperiment: t.field({
    type: ExperimentRef,
    description: 'Creates a draft experiment with its variants.',
    authScopes: { write: true },
    errors: { types: CREATE_ERRORS },
    args: {
      input: t.arg({ type: CreateExperimentInput, required: true, description: 'The experiment to create.' }),
    },
    resolve: (_r, { input }, ctx) => service(ctx).create(input),
  }),
  updateExperiment: t.field({
    type: ExperimentRef,
    description: 'Changes the name, description, traffic or seed of any experiment that is not ARCHIVED.',
    authScopes: { write: true },
    errors: { types: CHANGE_ERRORS },
    args: {
      id: t.arg.id({ required: true, description: 'The experiment’s UUID.' }),
      input: t.arg({ type: UpdateExperimentInput, required: true, description: 'The fields to change.' }),
    },
    resolve: (_r, { id, input }, ctx) => service(ctx).update(id, input),
  }),
  deleteExperiment: t.field({
    type: DeleteSuccessRef,
    description: 'Deletes a DRAFT or ARCHIVED experiment with its variants, assignments and events.',
    authScopes: { write: true },
    errors: { types: TRANSITION_ERRORS },
    args: { id: t.arg.id({ required: true, description: 'The experiment’s UUID.' }) },
    resolve: async (_r, { id }, ctx) => ({ deletedId: await service(ctx).delete(id) }),
  }),
  addVariant: t.field({
    type: VariantRef,
    description: 'Adds a variant to a DRAFT experiment (later it would move users between buckets).',
    authScopes: { write: true },
    errors: { types: VARIANT_CHANGE_ERRORS },
    args: {
      experimentId: t.arg.id({ required: true, description: 'The experiment’s UUID.' }),
      input: t.arg({
        type: VariantInput,
        required: true,
        description: 'The variant; it goes last in bucketing order.',
      }),
    },
    resolve: (_r, { experimentId, input }, ctx) => service(ctx).addVariant(experimentId, input),
  }),
  updateVariant: t.field({
    type: VariantRef,
    description:
      'Changes a variant. While DRAFT anything can change; RUNNING or PAUSED only weight and config; COMPLETED or ARCHIVED nothing.',
    authScopes: { write: true },
    errors: { types: VARIANT_CHANGE_ERRORS },
    args: {
      id: t.arg.id({ required: true, description: 'The variant’s UUID.' }),
      input: t.arg({ type: UpdateVariantInput, required: true, description: 'The fields to change.' }),
    },
    resolve: (_r, { id, input }, ctx) => service(ctx).updateVariant(id, input),
  }),
  removeVariant: t.field({
    type: VariantRef,
    description: 'Removes a variant of a DRAFT experiment; returns the removed variant.',
    authScopes: { write: true },
    errors: { types: CHANGE_ERRORS },
    args: { id: t.arg.id({ required: true, description: 'The variant’s UUID.' }) },
    resolve: (_r, { id }, ctx) => service(ctx).removeVariant(id),
  }),
}));

OverrideRef.implement({
  description:
    'A unit forced into a variant for QA: assignment answers it with reason FORCED. Not an assignment: never stored, never in results or metrics.',
  authScopes: { read: true },
  fields: (t) => ({
    userId: t.exposeString('userId', { description: 'The forced unit.' }),
    variant: t.field({
      type: VariantRef,
      description: 'The variant it gets.',
      resolve: async (o, _a, ctx) => (await ctx.loaders.variantById.load(o.variantId))!,
    }),
    createdBy: t.exposeString('createdBy', { description: 'Who set it (the API key name).' }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When it was set (or last moved to another variant).',
      resolve: (o) => o.createdAt,
    }),
  }),
});

const OVERRIDE_KEY_DESCRIPTION = `The experiment’s key, at most ${LIMITS.keyMaxLength} characters.`;
const OVERRIDE_USER_DESCRIPTION = `The unit id, 1..${LIMITS.userIdMaxLength} characters.`;

builder.mutationFields((t) => ({
  setOverride: t.field({
    type: OverrideRef,
    description: `Forces a unit into a variant, for QA: assignment answers it with that variant and reason FORCED, before status, traffic, targeting and stored assignments. Works in every status but ARCHIVED (a DRAFT can be previewed). Setting it again moves the unit. At most ${LIMITS.maxOverridesPerExperiment.toLocaleString('en-US')} per experiment. Audited as \`override.set\`.`,
    authScopes: { write: true },
    errors: { types: CHANGE_ERRORS },
    args: {
      experimentKey: t.arg.string({ required: true, description: OVERRIDE_KEY_DESCRIPTION }),
      userId: t.arg.string({ required: true, description: OVERRIDE_USER_DESCRIPTION }),
      variantId: t.arg.id({ required: true, description: 'A variant of this experiment.' }),
    } satisfies ArgsOf<SetOverrideArgs>,
    resolve: (_r, args, ctx) => service(ctx).setOverride(args),
  }),
  removeOverride: t.field({
    type: OverrideRef,
    description:
      'Removes a unit’s override (NotFoundError when it has none); the unit is assigned as any other from then on. Audited as `override.removed`. Returns the removed override.',
    authScopes: { write: true },
    errors: { types: CHANGE_ERRORS },
    args: {
      experimentKey: t.arg.string({ required: true, description: OVERRIDE_KEY_DESCRIPTION }),
      userId: t.arg.string({ required: true, description: OVERRIDE_USER_DESCRIPTION }),
    } satisfies ArgsOf<OverrideArgs>,
    resolve: (_r, args, ctx) => service(ctx).removeOverride(args),
  }),
}));
