/** Event recording mutations: exposures, conversions and the seed system's recordMetric. */
import { builder } from '../graphql/builder';
import { withoutNulls } from '../graphql/input';
import { EVENT_ERRORS, FieldErrorType, orBadInput } from '../graphql/errors';
import { LIMITS } from '../config';
import { ValidationError } from '../common/errors';
import {
  recordConversion,
  recordEvents,
  recordExposure,
  recordMetric,
  type EventKind,
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

const eventFields = (t: any) => ({
  userId: t.string({ required: true, description: 'The unit id, 1..256 characters.' }),
  variantId: t.id({
    required: false,
    description:
      'Optional. Omitted: the user’s stored assignment. Given with no stored assignment: recorded as the assignment (SDK-side evaluation). Given and different: VariantMismatchError.',
  }),
  eventId: t.id({ required: false, description: 'Client-generated UUID that makes retries idempotent.' }),
  occurredAt: t.field({ type: 'DateTime', required: false, description: 'When it happened (default: now).' }),
  metadata: t.field({ type: 'JSON', required: false, description: 'A JSON object, at most 16 KB.' }),
});

const RecordExposureInput = builder.inputType('RecordExposureInput', {
  description: 'The user saw the variant.',
  fields: (t) => ({
    experimentKey: t.string({ required: true, description: 'The experiment’s key.' }),
    ...eventFields(t),
  }),
});

const RecordConversionInput = builder.inputType('RecordConversionInput', {
  description: 'The user did something worth measuring.',
  fields: (t) => ({
    experimentKey: t.string({ required: true, description: 'The experiment’s key.' }),
    metricName: t.string({
      required: true,
      description: 'Slug, e.g. `conversion`, `watch_minutes`. `exposure` is reserved for recordExposure.',
    }),
    value: t.float({ required: false, description: 'Default 1; at most 1e15 in absolute value.' }),
    ...eventFields(t),
  }),
});

const RecordMetricInput = builder.inputType('RecordMetricInput', {
  description:
    'The seed system’s signature: metricName `exposure` records an exposure, anything else a conversion.',
  fields: (t) => ({
    experimentId: t.id({ required: true, description: 'The experiment’s UUID (not its key).' }),
    metricName: t.string({
      required: true,
      description: 'Slug; `exposure` records an exposure, any other name a conversion of that metric.',
    }),
    value: t.float({
      required: false,
      description: 'Default 1; at most 1e15 in absolute value; ignored for exposures.',
    }),
    ...eventFields(t),
  }),
});

builder.mutationFields((t) => ({
  recordExposure: t.field({
    type: RecordEventSuccessRef,
    description:
      'Records that a user saw their variant. Exposed users are the denominator of conversionRate, and only their conversions count toward it.',
    authScopes: { assign: true },
    errors: { types: EVENT_ERRORS },
    args: { input: t.arg({ type: RecordExposureInput, required: true, description: 'The exposure.' }) },
    resolve: (_r, { input }, ctx) => recordExposure(ctx.db, withoutNulls(input) as never, ctx.assignment),
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
    resolve: (_r, { input }, ctx) => recordConversion(ctx.db, withoutNulls(input) as never, ctx.assignment),
  }),
  recordMetric: t.field({
    type: RecordEventSuccessRef,
    description:
      'The seed system’s call, kept for existing clients: like recordExposure or recordConversion, chosen by metricName.',
    authScopes: { assign: true },
    errors: { types: EVENT_ERRORS },
    args: { input: t.arg({ type: RecordMetricInput, required: true, description: 'The event.' }) },
    resolve: (_r, { input }, ctx) => recordMetric(ctx.db, withoutNulls(input) as never, ctx.assignment),
  }),
}));

const EventKindEnum = builder.enumType('EventKind', {
  description:
    'EXPOSURE: the user saw the variant. CONVERSION: the user did something measured by metricName.',
  values: {
    EXPOSURE: { value: 'EXPOSURE', description: 'The user saw the variant (counts toward exposures).' },
    CONVERSION: {
      value: 'CONVERSION',
      description: 'The user did something worth measuring; needs metricName.',
    },
  } satisfies Record<EventKind, unknown>,
});

const EventInput = builder.inputType('EventInput', {
  description: 'One event of a batch. eventId is required here: it makes retrying a whole batch safe.',
  fields: (t) => ({
    kind: t.field({ type: EventKindEnum, required: true, description: 'Exposure or conversion.' }),
    experimentKey: t.string({ required: true, description: 'The experiment’s key.' }),
    metricName: t.string({ required: false, description: 'Required for CONVERSION; ignored for EXPOSURE.' }),
    value: t.float({
      required: false,
      description: 'CONVERSION value (default 1); at most 1e15 in absolute value.',
    }),
    ...eventFields(t),
    eventId: t.id({
      required: true,
      description: 'Client-generated UUID; a replay is reported as a duplicate.',
    }),
  }),
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
    resolve: (_r, { events }, ctx) =>
      orBadInput(() =>
        recordEvents(
          ctx.db,
          events.map((e) => withoutNulls(e) as never),
          ctx.assignment,
        ),
      ),
  }),
);
