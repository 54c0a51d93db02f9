/** Metric definitions: the Metric type with its queries and mutations, and the metrics an experiment lists. */
import type { z } from 'zod';
import { parse, slug } from '../common/validation';
import { LIMITS } from '../config';
import {
  ExperimentRef,
  MetricRoleEnum,
  PageInfoRef,
  decodeCursor,
  encodeCursor,
} from '../experiments/graphql';
import { builder } from '../graphql/builder';
import type { GraphQLContext } from '../graphql/context';
import { NotFoundError, ValidationError } from '../common/errors';
import { CHANGE_ERRORS, CREATE_ERRORS } from '../graphql/errors';
import type { ArgsOf, InputFieldsOf } from '../graphql/input';
import { MetricGoalEnum, MetricTypeEnum, ResultsRef } from '../results/graphql';
import * as repo from './repository';
import type { MetricRoleRow, MetricRow } from './repository';
import {
  type CreateMetricInput,
  createMetricService,
  metricListArgs,
  type UpdateMetricInput,
} from './service';

const service = (ctx: GraphQLContext) => createMetricService({ db: ctx.db, actor: ctx.actor });

export const MetricRef = builder.objectRef<MetricRow>('Metric').implement({
  description:
    'A metric definition: which conversion events it counts and how `results` analyses them. A metric name on events without a definition keeps the defaults (`conversion` BINOMIAL, any other MEAN, goal INCREASE).',
  authScopes: { read: true },
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable UUID; updateMetric and archiveMetric take it.' }),
    key: t.exposeString('key', {
      description: 'Unique slug; experiments list the metric by it and `results(metric:)` takes it.',
    }),
    name: t.exposeString('name', { description: 'Display name.' }),
    description: t.exposeString('description', { nullable: true, description: 'Free text for people.' }),
    kind: t.field({ type: MetricTypeEnum, description: 'BINOMIAL, MEAN or RATIO.', resolve: (m) => m.kind }),
    eventName: t.exposeString('eventName', {
      description: 'The conversion `metricName` it counts (a RATIO metric’s numerator).',
    }),
    denominatorEventName: t.exposeString('denominatorEventName', {
      nullable: true,
      description: 'RATIO only: the conversion `metricName` of the denominator; null for the other kinds.',
    }),
    direction: t.field({
      type: MetricGoalEnum,
      description: 'Which way is better; the default `goal` of `results` and `scorecard` for this metric.',
      resolve: (m) => m.direction,
    }),
    capValue: t.exposeFloat('capValue', {
      nullable: true,
      description:
        'Winsorisation: each unit’s total is capped at this value before the analysis (MEAN metrics); null: uncapped.',
    }),
    conversionWindowHours: t.exposeFloat('conversionWindowHours', {
      nullable: true,
      description:
        'Default conversion window (hours after the unit’s first exposure) in experiments that list the metric; an experiment’s `metricSettings` entry for the event overrides it. Null: until the experiment completes.',
    }),
    archivedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description:
        'When it was archived: hidden from `metrics` and not listable by experiments; results still use it.',
      resolve: (m) => m.archivedAt,
    }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When it was created.',
      resolve: (m) => m.createdAt,
    }),
    updatedAt: t.field({ type: 'DateTime', description: 'Last change.', resolve: (m) => m.updatedAt }),
  }),
});

const ExperimentMetricRef = builder.objectRef<MetricRoleRow>('ExperimentMetric').implement({
  description: 'A defined metric an experiment lists, with its role.',
  authScopes: { read: true },
  fields: (t) => ({
    metric: t.field({
      type: MetricRef,
      description: 'The metric definition.',
      resolve: async (r, _a, ctx) => (await ctx.loaders.metricById.load(r.metricId))!,
    }),
    role: t.field({
      type: MetricRoleEnum,
      description: 'PRIMARY, SECONDARY or GUARDRAIL.',
      resolve: (r) => r.role,
    }),
    toleratedHarm: t.exposeFloat('toleratedHarm', {
      nullable: true,
      description: 'GUARDRAIL only: the relative change in the bad direction tolerated, e.g. -0.02 (−2 %).',
    }),
  }),
});

builder.objectField(ExperimentRef, 'metricRoles', (t) =>
  t.field({
    type: [ExperimentMetricRef],
    description:
      'The defined metrics the experiment decides on, in the order given, each with its role. Empty when none are listed (results then use the defaults).',
    resolve: (e, _a, ctx) => ctx.loaders.metricRolesByExperimentId.load(e.id),
  }),
);

builder.objectField(ResultsRef, 'definition', (t) =>
  t.field({
    type: MetricRef,
    nullable: true,
    description:
      'The metric definition when `metric` is a defined metric’s key: its kind, direction (the default goal), capValue and events were used. Null: the defaults for an event name.',
    resolve: (r) => r.definition,
  }),
);

const MetricEdgeRef = builder.objectRef<{ cursor: string; node: MetricRow }>('MetricEdge').implement({
  description: 'One metric in a page, with the cursor that marks its place.',
  authScopes: { read: true },
  fields: (t) => ({
    cursor: t.exposeString('cursor', { description: 'Pass as `after` to continue after this metric.' }),
    node: t.field({ type: MetricRef, description: 'The metric.', resolve: (e) => e.node }),
  }),
});

interface MetricConnectionShape {
  edges: { cursor: string; node: MetricRow }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null; startCursor: string | null };
  includeArchived: boolean;
}
const MetricConnectionRef = builder.objectRef<MetricConnectionShape>('MetricConnection').implement({
  description: 'A page of metric definitions, newest first.',
  authScopes: { read: true },
  fields: (t) => ({
    edges: t.field({
      type: [MetricEdgeRef],
      description: 'The metrics of this page, newest first.',
      complexity: { field: 1, multiplier: 1 },
      resolve: (c) => c.edges,
    }),
    pageInfo: t.field({
      type: PageInfoRef,
      description: 'Whether there is more.',
      resolve: (c) => c.pageInfo,
    }),
    totalCount: t.int({
      description: 'Metrics matching the filter, across all pages.',
      resolve: (c, _a, ctx) => repo.countMetrics(ctx.db, c.includeArchived),
    }),
  }),
});

builder.queryFields((t) => ({
  metric: t.field({
    type: MetricRef,
    nullable: true,
    authScopes: { read: true },
    description: 'One metric definition by key (archived ones too). Null when it does not exist.',
    args: { key: t.arg.string({ required: true, description: 'The metric’s key.' }) },
    resolve: (_r, { key }, ctx) => {
      parse(slug('key'), key, ['key']);
      return ctx.loaders.metricByKey.load(key);
    },
  }),
  metrics: t.field({
    type: MetricConnectionRef,
    authScopes: { read: true },
    complexity: (args) => ({ field: 1, multiplier: Math.max(1, args.first ?? LIMITS.defaultPageSize) }),
    description: `Metric definitions, newest first, as a Relay connection (first ≤ ${LIMITS.maxPageSize}).`,
    args: {
      first: t.arg.int({
        required: false,
        description: `Page size, 0..${LIMITS.maxPageSize}, default ${LIMITS.defaultPageSize}.`,
      }),
      after: t.arg.string({ required: false, description: 'Cursor of the last edge of the previous page.' }),
      includeArchived: t.arg.boolean({
        required: false,
        description: 'Include archived metrics (default false).',
      }),
    } satisfies ArgsOf<z.input<typeof metricListArgs>>,
    resolve: async (_r, args, ctx) => {
      const { first, after, includeArchived } = parse(metricListArgs, args);
      const rows = await repo.listMetrics(ctx.db, {
        includeArchived,
        limit: first + 1,
        before: after ? decodeCursor(after) : null,
      });
      const edges = rows.slice(0, first).map((node) => ({ cursor: encodeCursor(node), node }));
      return {
        edges,
        includeArchived,
        pageInfo: {
          hasNextPage: rows.length > first,
          startCursor: edges[0]?.cursor ?? null,
          endCursor: edges.at(-1)?.cursor ?? null,
        },
      };
    },
  }),
}));

const createFields = {
  key: `Unique slug: lowercase letters, digits, \`_\`, \`.\`, \`-\`; at most ${LIMITS.keyMaxLength}.`,
  name: `Display name, 1..${LIMITS.nameMaxLength} characters.`,
  description: `Free text, at most ${LIMITS.descriptionMaxLength.toLocaleString('en-US')} characters.`,
  eventName: 'The conversion `metricName` it counts (a RATIO metric’s numerator).',
  denominatorEventName: 'RATIO only (and required there): the conversion `metricName` of the denominator.',
  capValue: `Cap each unit’s total at this value (more than 0, at most ${LIMITS.maxEventValue}); not for RATIO metrics.`,
  capPercentile:
    'Not supported: always a ValidationError naming this field. A percentile needs the distribution of per-unit totals, which the maintained sufficient statistics do not keep exactly; use capValue.',
  conversionWindowHours: `Default conversion window in hours after the unit’s first exposure (more than 0, at most ${LIMITS.maxConversionWindowHours}); null: until the experiment completes.`,
};

const CreateMetricInputRef = builder.inputRef<CreateMetricInput, false>('CreateMetricInput').implement({
  description: 'A new metric definition.',
  fields: (t) =>
    ({
      key: t.string({ required: true, description: createFields.key }),
      name: t.string({ required: true, description: createFields.name }),
      description: t.string({ required: false, description: createFields.description }),
      kind: t.field({ type: MetricTypeEnum, required: true, description: 'BINOMIAL, MEAN or RATIO.' }),
      eventName: t.string({ required: true, description: createFields.eventName }),
      denominatorEventName: t.string({ required: false, description: createFields.denominatorEventName }),
      direction: t.field({
        type: MetricGoalEnum,
        required: false,
        description: 'Which way is better (default INCREASE).',
      }),
      capValue: t.float({ required: false, description: createFields.capValue }),
      capPercentile: t.float({ required: false, description: createFields.capPercentile }),
      conversionWindowHours: t.float({ required: false, description: createFields.conversionWindowHours }),
    }) satisfies InputFieldsOf<CreateMetricInput>,
});

const UpdateMetricInputRef = builder.inputRef<UpdateMetricInput, false>('UpdateMetricInput').implement({
  description:
    'Fields to change; omitted fields stay. kind and event names cannot change while a started experiment lists the metric (RuleViolationError METRIC_IN_USE); a new window recounts the started experiments that list it.',
  fields: (t) =>
    ({
      name: t.string({ required: false, description: 'New display name.' }),
      description: t.string({ required: false, description: 'New description; null clears it.' }),
      kind: t.field({ type: MetricTypeEnum, required: false, description: 'New kind.' }),
      eventName: t.string({ required: false, description: createFields.eventName }),
      denominatorEventName: t.string({
        required: false,
        description: `${createFields.denominatorEventName} Null clears it.`,
      }),
      direction: t.field({ type: MetricGoalEnum, required: false, description: 'Which way is better.' }),
      capValue: t.float({ required: false, description: `${createFields.capValue} Null removes the cap.` }),
      capPercentile: t.float({ required: false, description: createFields.capPercentile }),
      conversionWindowHours: t.float({
        required: false,
        description: `${createFields.conversionWindowHours} Null clears it.`,
      }),
    }) satisfies InputFieldsOf<UpdateMetricInput>,
});

builder.mutationFields((t) => ({
  createMetric: t.field({
    type: MetricRef,
    description: 'Defines a metric.',
    authScopes: { write: true },
    errors: { types: CREATE_ERRORS },
    args: {
      input: t.arg({ type: CreateMetricInputRef, required: true, description: 'The metric to define.' }),
    },
    resolve: (_r, { input }, ctx) => service(ctx).create(input),
  }),
  updateMetric: t.field({
    type: MetricRef,
    description: 'Changes a metric definition (results use the change at once).',
    authScopes: { write: true },
    errors: { types: CHANGE_ERRORS },
    args: {
      id: t.arg.id({ required: true, description: 'The metric’s UUID.' }),
      input: t.arg({ type: UpdateMetricInputRef, required: true, description: 'The fields to change.' }),
    },
    resolve: (_r, { id, input }, ctx) => service(ctx).update(id, input),
  }),
  archiveMetric: t.field({
    type: MetricRef,
    description:
      'Archives a metric: hidden from `metrics`, no longer listable by experiments; experiments that list it and results keep working.',
    authScopes: { write: true },
    errors: { types: [ValidationError, NotFoundError] },
    args: { id: t.arg.id({ required: true, description: 'The metric’s UUID.' }) },
    resolve: (_r, { id }, ctx) => service(ctx).archive(id),
  }),
}));
