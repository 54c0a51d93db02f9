/** Event recording mutations: exposures, conversions and the seed system's recordMetric. */
import { builder } from '../graphql/builder';
import { enumValues } from '../graphql/enums';
import type { InputFieldsOf, Types } from '../graphql/input';
import { EVENT_ERRORS, FieldErrorType, orBadInput } from '../graphql/errors';
import { LIMITS } from '../config';
import { ValidationError } from '../common/errors';
import { sci } from '../common/validation';
import {
  type BatchEventInput,
  type ConversionInput,
  type ExposureInput,
  type MetricInput,
  recordConversion,
  recordEvents,
  recordExposure,
  recordMetric,
  EVENT_KINDS,
  type RecordEventResult,
  type RecordEventsResult,
} from './service';

const RecordEventSuccessRef = builder.objectRef<RecordEventResult>('RecordEventSuccess').implement({
  authScopes: { assign: true },
  description: 'The event is stored (or was already: `duplicate`). Retrying with the same eventId is safe.',
  fields: (t) => ({
    eventId: t.exposeID('eventId', { description: 'The idempotency key (generated when none was given).' }),
    duplicate: t.exposeBoolean('duplicate', {
      description: 'True when this eventId had been recorded before; nothing changed.',
    }),
    experimentId: t.exposeID('experimentId', { description: 'The experiment the event counts for.' }),
    variantId: t.exposeID('variantId', { description: 'The variant the event counts for.' }),
  }),
});

const COVARIATES_HELP = `CUPED: the unit’s pre-period value of each metric, \`{ <metric key>: number }\` (e.g. \`{ "watch_minutes": 312 }\`: its watch minutes in the 14 days before), at most ${LIMITS.maxCovariates} keys, values bounded like conversion values. Only the unit’s first exposure’s covariates count (earliest occurredAt); later ones are ignored. Results adjust a metric by its covariate (\`results(cuped)\`).`;
const VALUE_HELP = `at most ${sci(LIMITS.maxEventValue)} and, unless 0, at least ${sci(LIMITS.minEventValue)} in absolute value`;
const OCCURRED_AT_HELP = `When it happened (default: now). At most ${LIMITS.occurredAtMaxFutureMs / 60_000} minutes in the future and at most ${LIMITS.occurredAtMaxBeforeCreationMs / 3_600_000} hours before the experiment was created.`;

// The fields every event has; each input type below is checked against its service schema as a whole.
const eventFields = (t: PothosSchemaTypes.InputFieldBuilder<Types, 'InputObject'>) => ({
  userId: t.string({
    required: true,
    description: `The unit id, 1..${LIMITS.userIdMaxLength} characters.`,
  }),
  variantId: t.id({
    required: false,
    description:
      'Optional. Omitted: the user’s stored assignment. Given with no stored assignment: recorded as the assignment (SDK-side evaluation). Given and different: VariantMismatchError.',
  }),
  eventId: t.id({ required: false, description: 'Client-generated UUID that makes retries idempotent.' }),
  occurredAt: t.field({ type: 'DateTime', required: false, description: OCCURRED_AT_HELP }),
  metadata: t.field({
    type: 'JSON',
    required: false,
    description: `A JSON object, at most ${LIMITS.metadataMaxBytes / 1024} KB and ${LIMITS.jsonMaxDepth} levels deep.`,
  }),
});

const dimensionsField = (t: PothosSchemaTypes.InputFieldBuilder<Types, 'InputObject'>) =>
  t.field({
    type: 'JSON',
    required: false,
    description: `EXPOSURE only: the unit's segment levels, e.g. {"device": "ios", "country": "US"}, for \`Experiment.breakdown\`. A JSON object of at most ${LIMITS.maxDimensions} slug keys (≤ ${LIMITS.dimensionKeyMaxLength} characters) with string levels (1..${LIMITS.dimensionLevelMaxLength} characters, not starting with "__"). A unit's first exposure (earliest occurredAt) decides its levels. An experiment admits at most ${LIMITS.maxDimensions} keys (an exposure bringing another is rejected) and ${LIMITS.maxDimensionLevels} levels per key; later levels count as "__other__".`,
  });

const RecordExposureInput = builder.inputRef<ExposureInput, false>('RecordExposureInput').implement({
  description: 'The user saw the variant.',
  fields: (t) =>
    ({
      experimentKey: t.string({ required: true, description: 'The experiment’s key.' }),
      ...eventFields(t),
      covariates: t.field({ type: 'JSON', required: false, description: COVARIATES_HELP }),
      dimensions: dimensionsField(t),
    }) satisfies InputFieldsOf<ExposureInput>,
});

const RecordConversionInput = builder.inputRef<ConversionInput, false>('RecordConversionInput').implement({
  description: 'The user did something worth measuring.',
  fields: (t) =>
    ({
      experimentKey: t.string({ required: true, description: 'The experiment’s key.' }),
      metricName: t.string({
        required: true,
        description: 'Slug, e.g. `conversion`, `watch_minutes`. `exposure` is reserved for recordExposure.',
      }),
      value: t.float({ required: false, description: `Default 1; ${VALUE_HELP}.` }),
      ...eventFields(t),
    }) satisfies InputFieldsOf<ConversionInput>,
});

const RecordMetricInput = builder.inputRef<MetricInput, false>('RecordMetricInput').implement({
  description:
    'The seed system’s signature: metricName `exposure` records an exposure, anything else a conversion.',
  fields: (t) =>
    ({
      experimentId: t.id({ required: true, description: 'The experiment’s UUID (not its key).' }),
      metricName: t.string({
        required: true,
        description: 'Slug; `exposure` records an exposure, any other name a conversion of that metric.',
      }),
      value: t.float({
        required: false,
        description: `Default 1; ${VALUE_HELP}; ignored for exposures.`,
      }),
      ...eventFields(t),
    }) satisfies InputFieldsOf<MetricInput>,
});

builder.mutationFields((t) => ({
  recordExposure: t.field({
    type: RecordEventSuccessRef,
    description:
      'Records that a user saw their variant. Exposed users are the denominator of conversionRate, and only their conversions count toward it.',
    authScopes: { assign: true },
    errors: { types: EVENT_ERRORS },
    args: { input: t.arg({ type: RecordExposureInput, required: true, description: 'The exposure.' }) },
    resolve: (_r, { input }, ctx) => recordExposure(ctx.db, input, ctx.assignment),
  }),
  recordConversion: t.field({
    type: RecordEventSuccessRef,
    description:
      'Records a metric event (a conversion, watch minutes, …) for the user’s variant. Conversions of users never exposed are stored but do not raise conversionRate.',
    authScopes: { assign: true },
    errors: { types: EVENT_ERRORS },
    args: {
      input: t.arg({ type: RecordConversionInput, required: true, description: 'The conversion.' }),
    },
    resolve: (_r, { input }, ctx) => recordConversion(ctx.db, input, ctx.assignment),
  }),
  recordMetric: t.field({
    type: RecordEventSuccessRef,
    description:
      'The seed system’s call, kept for existing clients: like recordExposure or recordConversion, chosen by metricName.',
    authScopes: { assign: true },
    errors: { types: EVENT_ERRORS },
    args: { input: t.arg({ type: RecordMetricInput, required: true, description: 'The event.' }) },
    resolve: (_r, { input }, ctx) => recordMetric(ctx.db, input, ctx.assignment),
  }),
}));

const EventKindEnum = builder.enumType('EventKind', {
  description:
    'EXPOSURE: the user saw the variant. CONVERSION: the user did something measured by metricName.',
  values: enumValues(EVENT_KINDS, {
    EXPOSURE: 'The user saw the variant (counts toward exposures).',
    CONVERSION: 'The user did something worth measuring; needs metricName.',
  }),
});

const EventInput = builder.inputRef<BatchEventInput, false>('EventInput').implement({
  description: 'One event of a batch. eventId is required here: it makes retrying a whole batch safe.',
  fields: (t) =>
    ({
      kind: t.field({ type: EventKindEnum, required: true, description: 'Exposure or conversion.' }),
      experimentKey: t.string({ required: true, description: 'The experiment’s key.' }),
      metricName: t.string({
        required: false,
        description: 'Required for CONVERSION; ignored for EXPOSURE.',
      }),
      value: t.float({
        required: false,
        description: `CONVERSION value (default 1); ${VALUE_HELP}.`,
      }),
      covariates: t.field({
        type: 'JSON',
        required: false,
        description: `EXPOSURE only (a VALIDATION_FAILED on a CONVERSION). ${COVARIATES_HELP}`,
      }),
      ...eventFields(t),
      dimensions: dimensionsField(t),
      eventId: t.id({
        required: true,
        description: 'Client-generated UUID; a replay is reported as a duplicate.',
      }),
    }) satisfies InputFieldsOf<BatchEventInput>,
});

const RejectedEventRef = builder
  .objectRef<RecordEventsResult['rejected'][number]>('RejectedEvent')
  .implement({
    authScopes: { assign: true },
    description:
      'An event of the batch that was not written, with the same codes as the single-event mutations.',
    fields: (t) => ({
      index: t.exposeInt('index', { description: 'Position of the event in the submitted list (0-based).' }),
      code: t.exposeString('code', {
        description: 'VALIDATION_FAILED, NOT_FOUND, NOT_ASSIGNED or VARIANT_MISMATCH.',
      }),
      message: t.exposeString('message', { description: 'Why the event was rejected, for people.' }),
      fieldErrors: t.field({
        type: [FieldErrorType],
        description: 'For VALIDATION_FAILED: the bad fields, paths starting at ["events", index].',
        resolve: (r) => (r.error instanceof ValidationError ? r.error.fieldErrors : []),
      }),
    }),
  });

const RecordEventsResultRef = builder.objectRef<RecordEventsResult>('RecordEventsResult').implement({
  authScopes: { assign: true },
  description:
    'Outcome of a batch. accepted + duplicates + rejected = events sent. Replaying a batch reports every event as a duplicate and changes no number.',
  fields: (t) => ({
    accepted: t.exposeInt('accepted', { description: 'Events written now.' }),
    duplicates: t.exposeInt('duplicates', {
      description: 'Events whose eventId was already recorded; nothing changed.',
    }),
    rejected: t.field({
      type: [RejectedEventRef],
      description: 'Events not written, by their index in the batch; fix and resend only these.',
      resolve: (r) => r.rejected,
    }),
  }),
});

builder.mutationField('recordEvents', (t) =>
  t.field({
    type: RecordEventsResultRef,
    authScopes: { assign: true },
    description: `Records up to ${LIMITS.maxBatchSize} exposures and conversions in one call. Valid events are written even when others are rejected.`,
    args: {
      events: t.arg({
        type: [EventInput],
        required: true,
        description: `The events, at most ${LIMITS.maxBatchSize}; \`rejected\` refers to them by position.`,
      }),
    },
    // A batch-level problem (too many events) is a BAD_USER_INPUT error; per-event problems are in `rejected`.
    resolve: (_r, { events }, ctx) => orBadInput(() => recordEvents(ctx.db, events, ctx.assignment)),
  }),
);
