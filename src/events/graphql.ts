/** Event recording mutations: exposures, conversions and the seed system's recordMetric. */
import { builder } from '../graphql/builder';
import { EVENT_ERRORS } from '../graphql/errors';
import { recordConversion, recordExposure, recordMetric, type RecordEventResult } from './service';

const RecordEventSuccessRef = builder.objectRef<RecordEventResult>('RecordEventSuccess').implement({
  description: 'The event is stored (or was already: `duplicate`). Retrying with the same eventId is safe.',
  fields: (t) => ({
    eventId: t.exposeID('eventId', { description: 'The idempotency key (generated when none was given).' }),
    duplicate: t.exposeBoolean('duplicate', {
      description: 'True when this eventId had been recorded before; nothing changed.',
    }),
    experimentId: t.exposeID('experimentId'),
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
    experimentKey: t.string({ required: true }),
    ...eventFields(t),
  }),
});

const RecordConversionInput = builder.inputType('RecordConversionInput', {
  description: 'The user did something worth measuring.',
  fields: (t) => ({
    experimentKey: t.string({ required: true }),
    metricName: t.string({ required: true, description: 'Slug, e.g. `conversion`, `watch_minutes`.' }),
    value: t.float({ required: false, description: 'Finite number (default 1).' }),
    ...eventFields(t),
  }),
});

const RecordMetricInput = builder.inputType('RecordMetricInput', {
  description:
    'The seed system’s signature: metricName `exposure` records an exposure, anything else a conversion.',
  fields: (t) => ({
    experimentId: t.id({ required: true }),
    metricName: t.string({ required: true }),
    value: t.float({ required: false }),
    ...eventFields(t),
  }),
});

const clean = (input: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(input).map(([k, v]) => [k, v === null ? undefined : v])) as never;

builder.mutationFields((t) => ({
  recordExposure: t.field({
    type: RecordEventSuccessRef,
    errors: { types: EVENT_ERRORS },
    args: { input: t.arg({ type: RecordExposureInput, required: true }) },
    resolve: (_r, { input }, ctx) => recordExposure(ctx.db, clean(input)),
  }),
  recordConversion: t.field({
    type: RecordEventSuccessRef,
    errors: { types: EVENT_ERRORS },
    args: { input: t.arg({ type: RecordConversionInput, required: true }) },
    resolve: (_r, { input }, ctx) => recordConversion(ctx.db, clean(input)),
  }),
  recordMetric: t.field({
    type: RecordEventSuccessRef,
    errors: { types: EVENT_ERRORS },
    args: { input: t.arg({ type: RecordMetricInput, required: true }) },
    resolve: (_r, { input }, ctx) => recordMetric(ctx.db, clean(input)),
  }),
}));
