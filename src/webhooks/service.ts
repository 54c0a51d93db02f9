/**
 * Webhooks: management (admin scope), the outbox write every alert goes through, and the delivery job.
 * Delivery is at least once: a row is sent until a receiver answers 2xx, with the same delivery id and a
 * fresh signature each time, backing off exponentially for LIMITS.webhookRetryForMs, then marked failed.
 */
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../common/errors';
import { parse, text, uuid } from '../common/validation';
import { LIMITS, type WebhookConfig } from '../config';
import type { Db } from '../db/client';
import type { Job } from '../jobs/runner';
import { refusedUrl } from './address';
import {
  decryptSecret,
  encryptSecret,
  newSecret,
  SECRET_PREFIX,
  SIGNATURE_HEADER,
  signature,
} from './crypto';
import * as repo from './repository';

/** The events a webhook can subscribe to, each fired where its change commits. */
export const WEBHOOK_EVENTS = [
  /** An experiment's status changed (a person or the scheduler), from the lifecycle service. */
  'EXPERIMENT_STATUS_CHANGED',
  /** A scheduled transition failed (each failed attempt; `final` on the last). */
  'SCHEDULE_FAILED',
  /** The sample-ratio check failed, once per onset (src/monitoring/). */
  'SRM_DETECTED',
  /** A GUARDRAIL metric breached its tolerated harm and the guardrail acted, once per metric per onset. */
  'GUARDRAIL_BREACHED',
  /** A PRIMARY or SECONDARY metric became significant (SEQUENTIAL), once per metric per onset. */
  'SIGNIFICANCE_REACHED',
  /** A bandit set new weights (src/bandits), from the reweighting job. */
  'BANDIT_REWEIGHTED',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;

export const WEBHOOK_JOB = 'webhook-deliveries';

export const createWebhookInput = z.object({
  url: text('url', { min: 1, max: LIMITS.webhookUrlMaxLength, trim: true }),
  events: z
    .array(z.enum(WEBHOOK_EVENTS, { error: 'unknown event' }))
    .min(1, 'give at least one event')
    .max(WEBHOOK_EVENTS.length, `at most ${WEBHOOK_EVENTS.length} events`)
    .refine((events) => new Set(events).size === events.length, 'events must not repeat'),
  minUnits: z
    .number({ error: 'minUnits must be an integer' })
    .int('minUnits must be an integer')
    .min(0, 'minUnits must be 0 or more')
    .max(LIMITS.maxStopAfterUnits, `minUnits must be at most ${LIMITS.maxStopAfterUnits}`)
    .nullish()
    .transform((v) => v ?? 0),
  minDays: z
    .number({ error: 'minDays must be a number' })
    .min(0, 'minDays must be 0 or more')
    .max(3660, 'minDays must be at most 3660')
    .nullish()
    .transform((v) => v ?? 0),
});
export type CreateWebhookInput = z.input<typeof createWebhookInput>;

/** `webhookDeliveries(webhookId, first, after)`; the cursor is decoded by the GraphQL layer that made it. */
export const deliveryListArgs = z.object({
  webhookId: uuid('webhookId').nullish(),
  first: z
    .number()
    .int('first must be an integer')
    .min(0, `first must be between 0 and ${LIMITS.maxPageSize}`)
    .max(LIMITS.maxPageSize, `first must be between 0 and ${LIMITS.maxPageSize}`)
    .nullish()
    .transform((v) => v ?? LIMITS.defaultPageSize),
  after: text('after', { max: LIMITS.cursorMaxLength }).nullish(),
});

/** Writes the event's deliveries in the caller's transaction: sent if and only if that commits. */
export async function emitEvent(
  tx: Db,
  event: WebhookEvent,
  experimentId: string,
  data: Record<string, unknown>,
): Promise<void> {
  await repo.enqueue(tx, event, experimentId, { experimentId, ...data });
}

export function createWebhookService({ db, config }: { db: Db; config: WebhookConfig }) {
  return {
    /** The webhook and its signing secret, which is shown this once. */
    async create(rawInput: CreateWebhookInput) {
      const input = parse(createWebhookInput, rawInput, ['input']);
      if (!config.secretKey) {
        throw ValidationError.field(
          ['input', 'url'],
          'webhooks are disabled: the server has no WEBHOOK_SECRET_KEY to encrypt their secrets with',
        );
      }
      const refused = await refusedUrl(input.url, config);
      if (refused) throw ValidationError.field(['input', 'url'], refused);
      const secret = newSecret();
      const webhook = await repo.insertWebhook(db, {
        ...input,
        secretCiphertext: encryptSecret(config.secretKey, secret),
        secretPrefix: secret.slice(0, SECRET_PREFIX.length + 4),
      });
      return { webhook, secret };
    },
    list: () => repo.listWebhooks(db),
    async delete(id: string) {
      parse(uuid('id'), id, ['id']);
      const row = await repo.deleteWebhook(db, id);
      if (!row) throw new NotFoundError('Webhook', id);
      return row;
    },
  };
}

/** The body a receiver gets: the same on every attempt of a delivery. */
export function deliveryBody(d: Pick<repo.DueDelivery, 'id' | 'event' | 'createdAt' | 'payload'>): string {
  return JSON.stringify({ id: d.id, event: d.event, createdAt: d.createdAt.toISOString(), data: d.payload });
}

/**
 * Sends due deliveries. The run's transaction only claims them (a lease of one timeout per delivery plus
 * a margin); they are sent after it commits, outside any transaction, and each attempt's outcome is
 * recorded on its own: a slow receiver holds no lock, no pooled connection in a transaction, and not the
 * embedded database's only connection. A process that dies mid-way leaves the rest claimed until the
 * lease ends, then due again (at least once, as before).
 */
export function deliveryJob(config: WebhookConfig, send: typeof fetch = fetch): Job {
  return {
    name: WEBHOOK_JOB,
    async run(tx, now, afterCommit) {
      if (!config.secretKey) return;
      const secretKey = config.secretKey;
      const leaseUntil = new Date(
        now.getTime() +
          LIMITS.webhookDeliveriesPerRun * LIMITS.webhookTimeoutMs +
          LIMITS.webhookLeaseMarginMs,
      );
      const due = await repo.claimDueDeliveries(tx, now, LIMITS.webhookDeliveriesPerRun, leaseUntil);
      if (due.length === 0) return;
      afterCommit(async (db) => {
        for (const d of due) {
          const { statusCode, error } = await attempt(d, secretKey, config, send);
          const attempts = d.attempts + 1;
          const next = new Date(now.getTime() + LIMITS.webhookRetryBaseMs * 2 ** (attempts - 1));
          const givenUp = next.getTime() > d.createdAt.getTime() + LIMITS.webhookRetryForMs;
          await repo.recordAttempt(db, d.id, {
            at: now,
            attempts,
            status: error === null ? 'delivered' : givenUp ? 'failed' : 'pending',
            statusCode,
            error,
            nextAttemptAt: error === null || givenUp ? now : next,
          });
        }
      });
    },
  };
}

/** One POST of a delivery: the receiver's status, and what went wrong (null on a 2xx). */
async function attempt(
  d: repo.DueDelivery,
  secretKey: string,
  config: WebhookConfig,
  send: typeof fetch,
): Promise<{ statusCode: number | null; error: string | null }> {
  const refused = await refusedUrl(d.url, config);
  if (refused) return { statusCode: null, error: refused };
  const body = deliveryBody(d);
  try {
    const timestamp = Math.floor(Date.now() / 1000);
    const response = await send(d.url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(LIMITS.webhookTimeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'sona-experiments-webhooks',
        'x-sona-delivery': d.id,
        'x-sona-event': d.event,
        [SIGNATURE_HEADER]: signature(decryptSecret(secretKey, d.secretCiphertext), timestamp, body),
      },
      body,
    });
    const statusCode = response.status;
    await response.body?.cancel();
    return {
      statusCode,
      error: statusCode < 200 || statusCode >= 300 ? `receiver answered HTTP ${statusCode}` : null,
    };
  } catch (err) {
    return { statusCode: null, error: err instanceof Error ? err.message : String(err) };
  }
}
