/** Webhooks and their deliveries (admin scope). */
import type { z } from 'zod';
import { NotFoundError, ValidationError } from '../common/errors';
import { parse } from '../common/validation';
import { LIMITS, WEBHOOKS_DISABLED } from '../config';
import { decodeCursor, encodeCursor, PageInfoRef } from '../experiments/graphql';
import { builder } from '../graphql/builder';
import type { GraphQLContext } from '../graphql/context';
import { enumValues } from '../graphql/enums';
import type { ArgsOf, InputFieldsOf } from '../graphql/input';
import { orBadInput } from '../graphql/errors';
import type { DeliveryRow, WebhookRow } from './repository';
import * as repo from './repository';
import {
  type CreateWebhookInput as Input,
  createWebhookService,
  DELIVERY_STATUSES,
  deliveryListArgs,
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
    SRM_DETECTED:
      'A running experiment’s sample-ratio check failed (p < 0.001, against the weights of each phase). Once per onset: again only after a look found the mismatch gone and a later one found it back. `data`: experimentId, key, pValue, chiSquare, variants (variantId, variantName, observed, expected).',
    GUARDRAIL_BREACHED:
      'A GUARDRAIL metric’s always-valid interval of the relative effect lies beyond its tolerated harm for some treatment, and the guardrail acted (README, Automation). Once per metric per onset. `data`: experimentId, key, metric, goal, toleratedHarm, threshold, action (PAUSE or ZERO_TREATMENT_WEIGHTS), method, confidenceLevel, control, variants (variantId, variantName, units, estimate, lower, upper, pValue).',
    SIGNIFICANCE_REACHED:
      'A PRIMARY or SECONDARY metric has a treatment significantly different from the control by the SEQUENTIAL method (always-valid, so looking every minute is safe). Once per metric per onset. `data`: experimentId, key, metric, role, goal, method, confidenceLevel, variants (variantId, variantName, units, pValue, relativeEffect).',
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

const DeliveryEdgeRef = builder
  .objectRef<{ cursor: string; node: DeliveryRow }>('WebhookDeliveryEdge')
  .implement({
    description: 'One delivery in a page, with the cursor that marks its place.',
    authScopes: { admin: true },
    fields: (t) => ({
      cursor: t.exposeString('cursor', { description: 'Pass as `after` to continue after this delivery.' }),
      node: t.field({ type: DeliveryRef, description: 'The delivery.', resolve: (e) => e.node }),
    }),
  });

interface DeliveryConnectionShape {
  edges: { cursor: string; node: DeliveryRow }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null; startCursor: string | null };
  webhookId: string | null;
}
const DeliveryConnectionRef = builder
  .objectRef<DeliveryConnectionShape>('WebhookDeliveryConnection')
  .implement({
    description: 'A page of webhook deliveries, newest first.',
    authScopes: { admin: true },
    fields: (t) => ({
      edges: t.field({
        type: [DeliveryEdgeRef],
        description: 'The deliveries of this page, newest first.',
        complexity: { field: 1, multiplier: 1 },
        resolve: (c) => c.edges,
      }),
      pageInfo: t.field({
        type: PageInfoRef,
        description: 'Whether there is more.',
        resolve: (c) => c.pageInfo,
      }),
      totalCount: t.int({
        description: 'Deliveries matching the filter, across all pages.',
        resolve: (c, _a, ctx) => repo.countDeliveries(ctx.db, c.webhookId),
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
    type: DeliveryConnectionRef,
    authScopes: { admin: true },
    complexity: (args) => ({ field: 1, multiplier: Math.max(1, args.first ?? LIMITS.defaultPageSize) }),
    description: `Deliveries, newest first: of one webhook, or of all; a Relay connection (first ≤ ${LIMITS.maxPageSize}).`,
    args: {
      webhookId: t.arg.id({ required: false, description: 'Only this webhook’s.' }),
      first: t.arg.int({
        required: false,
        description: `Page size, 0..${LIMITS.maxPageSize}, default ${LIMITS.defaultPageSize}.`,
      }),
      after: t.arg.string({ required: false, description: 'Cursor of the last edge of the previous page.' }),
    } satisfies ArgsOf<z.input<typeof deliveryListArgs>>,
    resolve: (_r, args, ctx) =>
      orBadInput(async () => {
        const { webhookId, first, after } = parse(deliveryListArgs, args);
        const rows = await repo.listDeliveries(ctx.db, {
          webhookId: webhookId ?? null,
          limit: first + 1,
          before: after ? decodeCursor(after) : null,
        });
        const edges = rows.slice(0, first).map((node) => ({ cursor: encodeCursor(node), node }));
        return {
          edges,
          webhookId: webhookId ?? null,
          pageInfo: {
            hasNextPage: rows.length > first,
            startCursor: edges[0]?.cursor ?? null,
            endCursor: edges.at(-1)?.cursor ?? null,
          },
        };
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
