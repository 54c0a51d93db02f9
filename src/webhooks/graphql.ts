/** Webhooks and their deliveries (admin scope). */
import { NotFoundError, ValidationError } from '../common/errors';
import { parse, uuid } from '../common/validation';
import { LIMITS, WEBHOOKS_DISABLED } from '../config';
import { builder } from '../graphql/builder';
import type { GraphQLContext } from '../graphql/context';
import { enumValues } from '../graphql/enums';
import type { InputFieldsOf } from '../graphql/input';
import { orBadInput } from '../graphql/errors';
import type { DeliveryRow, WebhookRow } from './repository';
import * as repo from './repository';
import {
  type CreateWebhookInput as Input,
  createWebhookService,
  DELIVERY_STATUSES,
  WEBHOOK_EVENTS,
  type WebhookEvent,
} from './service';

const service = (ctx: GraphQLContext) =>
  createWebhookService({ db: ctx.db, config: ctx.webhooks ?? WEBHOOKS_DISABLED });

const WebhookEventEnum = builder.enumType('WebhookEvent', {
  description:
    'What a webhook is told about. Each is written to the outbox in the transaction of its change.',
  values: enumValues(WEBHOOK_EVENTS, {
    EXPERIMENT_STATUS_CHANGED:
      'An experiment changed status (started, paused, completed, archived), by a person or the scheduler. `data`: experimentId, key, from, to, actor.',
    SCHEDULE_FAILED:
      'A scheduled start or stop failed. `data`: experimentId, action, reason, attempts, final (true when the scheduler gave up).',
    BANDIT_REWEIGHTED:
      'A BANDIT set new weights (a new phase). `data`: experimentId, key, phase, stage, weights and bestArmProbabilities (each `[{variantId, …}]`), actor.',
  } satisfies Record<WebhookEvent, string>),
});

const DeliveryStatusEnum = builder.enumType('WebhookDeliveryStatus', {
  description: 'Where a delivery stands.',
  values: enumValues(DELIVERY_STATUSES, {
    pending: 'Not yet answered with 2xx; will be (re)tried at nextAttemptAt.',
    delivered: 'A receiver answered 2xx.',
    failed: `Not delivered within ${LIMITS.webhookRetryForMs / 3_600_000} hours of retries; given up.`,
  }),
});

const WebhookRef = builder.objectRef<WebhookRow>('Webhook').implement({
  authScopes: { admin: true },
  description:
    'A URL alerts are POSTed to, signed with its secret: header `X-Sona-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable id.' }),
    url: t.exposeString('url', { description: 'Where deliveries are POSTed (JSON).' }),
    events: t.field({
      type: [WebhookEventEnum],
      description: 'The events it receives.',
      resolve: (w) => w.events as WebhookEvent[],
    }),
    minUnits: t.exposeInt('minUnits', {
      description: 'Events of an experiment are sent only once it enrolled at least this many units.',
    }),
    minDays: t.exposeFloat('minDays', {
      description: 'Events of an experiment are sent only once it started at least this many days ago.',
    }),
    secretPrefix: t.exposeString('secretPrefix', { description: 'The first characters of the secret.' }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When it was created.',
      resolve: (w) => w.createdAt,
    }),
  }),
});

const DeliveryRef = builder.objectRef<DeliveryRow>('WebhookDelivery').implement({
  authScopes: { admin: true },
  description:
    'One event for one webhook: the outbox row. Every attempt sends the same `id` (header `X-Sona-Delivery` and the body’s `id`), so receivers can drop repeats.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The delivery id the receiver sees on every attempt.' }),
    webhookId: t.exposeID('webhookId', { description: 'The webhook.' }),
    event: t.field({
      type: WebhookEventEnum,
      description: 'The event.',
      resolve: (d) => d.event as WebhookEvent,
    }),
    data: t.field({ type: 'JSON', description: 'The body’s `data`.', resolve: (d) => d.payload }),
    status: t.field({
      type: DeliveryStatusEnum,
      description: 'pending, delivered or failed.',
      resolve: (d) => d.status as (typeof DELIVERY_STATUSES)[number],
    }),
    attempts: t.exposeInt('attempts', { description: 'Attempts so far.' }),
    lastStatusCode: t.int({
      nullable: true,
      description: 'The HTTP status of the last attempt; null when none answered.',
      resolve: (d) => d.lastStatusCode,
    }),
    lastError: t.string({
      nullable: true,
      description: 'Why the last attempt failed.',
      resolve: (d) => d.lastError,
    }),
    nextAttemptAt: t.field({
      type: 'DateTime',
      description: 'When a pending delivery is tried next.',
      resolve: (d) => d.nextAttemptAt,
    }),
    deliveredAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When a receiver answered 2xx.',
      resolve: (d) => d.deliveredAt,
    }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When the event happened.',
      resolve: (d) => d.createdAt,
    }),
  }),
});

const CreatedRef = builder
  .objectRef<{ webhook: WebhookRow; secret: string }>('CreateWebhookSuccess')
  .implement({
    authScopes: { admin: true },
    description: 'The new webhook. Copy `secret` now: it is never shown again.',
    fields: (t) => ({
      secret: t.exposeString('secret', { description: 'Verifies `X-Sona-Signature` (HMAC-SHA256 key).' }),
      webhook: t.field({ type: WebhookRef, description: 'The webhook.', resolve: (r) => r.webhook }),
    }),
  });

const CreateWebhookInput = builder.inputRef<Input, false>('CreateWebhookInput').implement({
  description:
    'A new webhook. The URL must be http(s) and resolve to a public address unless the server allows private ones (WEBHOOK_ALLOW_PRIVATE, WEBHOOK_ALLOW_HOSTS).',
  fields: (t) =>
    ({
      url: t.string({ required: true, description: `At most ${LIMITS.webhookUrlMaxLength} characters.` }),
      events: t.field({ type: [WebhookEventEnum], required: true, description: 'At least one event.' }),
      minUnits: t.int({ required: false, description: 'Default 0.' }),
      minDays: t.float({ required: false, description: 'Default 0.' }),
    }) satisfies InputFieldsOf<Input>,
});

builder.queryFields((t) => ({
  webhooks: t.field({
    type: [WebhookRef],
    authScopes: { admin: true },
    description: 'Every webhook, newest first.',
    resolve: (_r, _a, ctx) => service(ctx).list(),
  }),
  webhookDeliveries: t.field({
    type: [DeliveryRef],
    authScopes: { admin: true },
    description: 'Deliveries, newest first: of one webhook, or of all.',
    args: {
      webhookId: t.arg.id({ required: false, description: 'Only this webhook’s.' }),
      first: t.arg.int({
        required: false,
        description: `At most ${LIMITS.maxPageSize}; default ${LIMITS.defaultPageSize}.`,
      }),
    },
    resolve: (_r, { webhookId, first }, ctx) =>
      orBadInput(async () => {
        if (webhookId != null) parse(uuid('webhookId'), webhookId, ['webhookId']);
        const limit = first ?? LIMITS.defaultPageSize;
        if (!Number.isInteger(limit) || limit < 0 || limit > LIMITS.maxPageSize) {
          throw ValidationError.field('first', `first must be between 0 and ${LIMITS.maxPageSize}`);
        }
        return repo.listDeliveries(ctx.db, { webhookId: webhookId ?? null, limit });
      }),
  }),
}));

builder.mutationFields((t) => ({
  createWebhook: t.field({
    type: CreatedRef,
    authScopes: { admin: true },
    description: 'Creates a webhook and returns its signing secret once.',
    errors: { types: [ValidationError] },
    args: { input: t.arg({ type: CreateWebhookInput, required: true, description: 'URL and events.' }) },
    resolve: (_r, { input }, ctx) => service(ctx).create(input),
  }),
  deleteWebhook: t.field({
    type: WebhookRef,
    authScopes: { admin: true },
    description: 'Deletes a webhook and its deliveries (pending ones are not sent).',
    errors: { types: [ValidationError, NotFoundError] },
    args: { id: t.arg.id({ required: true, description: 'The webhook’s id.' }) },
    resolve: (_r, { id }, ctx) => service(ctx).delete(id),
  }),
}));
