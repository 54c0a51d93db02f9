/** SQL for webhooks and their outbox of deliveries. */
import { and, count, desc, eq, lt, or, type SQL, sql } from 'drizzle-orm';
import { z } from 'zod';
import { jsonbParam, type Db } from '../db/client';
import { dbDate, dbJsonObject, parseRows } from '../db/rows';
import { experimentAssignments, experiments, webhookDeliveries, webhooks } from '../db/schema';

export type WebhookRow = typeof webhooks.$inferSelect;
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;

export async function insertWebhook(
  db: Db,
  params: Pick<WebhookRow, 'url' | 'events' | 'minUnits' | 'minDays' | 'secretCiphertext' | 'secretPrefix'>,
): Promise<WebhookRow> {
  const [row] = await db.insert(webhooks).values(params).returning();
  return row;
}

export async function listWebhooks(db: Db): Promise<WebhookRow[]> {
  return db.select().from(webhooks).orderBy(desc(webhooks.createdAt), desc(webhooks.id));
}

export async function deleteWebhook(db: Db, id: string): Promise<WebhookRow | null> {
  const [row] = await db.delete(webhooks).where(eq(webhooks.id, id)).returning();
  return row ?? null;
}

/**
 * The outbox write: one delivery per webhook subscribed to the event (and whose minUnits / minDays the
 * experiment meets), in the caller's transaction.
 */
export async function enqueue(
  db: Db,
  event: string,
  experimentId: string,
  payload: Record<string, unknown>,
): Promise<void> {
  const w = webhooks;
  await db.execute(sql`/* enqueueWebhookDeliveries */
    INSERT INTO ${webhookDeliveries} (webhook_id, event, payload)
    SELECT ${w.id}, ${event}, ${jsonbParam(payload)} FROM ${w}
     WHERE ${event} = ANY (${w.events})
       AND (${w.minUnits} = 0 OR ${w.minUnits} <= (SELECT count(*) FROM ${experimentAssignments}
                                                 WHERE ${experimentAssignments.experimentId} = ${experimentId}))
       AND (${w.minDays} = 0 OR (SELECT ${experiments.startAt} FROM ${experiments} WHERE ${experiments.id} = ${experimentId})
                                <= now() - ${w.minDays} * interval '1 day')`);
}

const dueRow = z.object({
  id: z.string(),
  event: z.string(),
  payload: dbJsonObject,
  attempts: z.number(),
  createdAt: dbDate,
  url: z.string(),
  secretCiphertext: z.string(),
});
export type DueDelivery = z.output<typeof dueRow>;

/** Pending deliveries due at `now`, oldest first, locked (other runs skip them). */
export async function lockDueDeliveries(db: Db, now: Date, limit: number): Promise<DueDelivery[]> {
  const d = webhookDeliveries;
  return parseRows(
    db,
    sql`/* lockDueDeliveries */
      SELECT ${d.id} AS "id", ${d.event} AS "event", ${d.payload} AS "payload", ${d.attempts} AS "attempts",
             ${d.createdAt} AS "createdAt", ${webhooks.url} AS "url", ${webhooks.secretCiphertext} AS "secretCiphertext"
        FROM ${d} JOIN ${webhooks} ON ${webhooks.id} = ${d.webhookId}
       WHERE ${d.status} = 'pending' AND ${d.nextAttemptAt} <= ${now.toISOString()}::timestamptz
       ORDER BY ${d.nextAttemptAt}, ${d.id}
       LIMIT ${limit}
         FOR UPDATE OF ${d} SKIP LOCKED`,
    dueRow,
  );
}

export async function recordAttempt(
  db: Db,
  id: string,
  params: {
    at: Date;
    attempts: number;
    status: 'pending' | 'delivered' | 'failed';
    statusCode: number | null;
    error: string | null;
    nextAttemptAt: Date;
  },
): Promise<void> {
  await db
    .update(webhookDeliveries)
    .set({
      status: params.status,
      attempts: params.attempts,
      lastAttemptAt: params.at,
      lastStatusCode: params.statusCode,
      lastError: params.error,
      nextAttemptAt: params.nextAttemptAt,
      deliveredAt: params.status === 'delivered' ? params.at : null,
    })
    .where(eq(webhookDeliveries.id, id));
}

export interface ListDeliveriesParams {
  webhookId: string | null;
  limit: number;
  /** Keyset: only deliveries after this one in the order (newest first). */
  before: { createdAt: Date; id: string } | null;
}

/** A webhook's deliveries (or every webhook's), newest first, a page at a time. */
export async function listDeliveries(db: Db, params: ListDeliveriesParams): Promise<DeliveryRow[]> {
  const d = webhookDeliveries;
  const conditions: SQL[] = [];
  if (params.webhookId) conditions.push(eq(d.webhookId, params.webhookId));
  if (params.before) {
    const { createdAt, id } = params.before;
    conditions.push(or(lt(d.createdAt, createdAt), and(eq(d.createdAt, createdAt), lt(d.id, id)))!);
  }
  return db
    .select()
    .from(d)
    .where(and(...conditions))
    .orderBy(desc(d.createdAt), desc(d.id))
    .limit(params.limit);
}

export async function countDeliveries(db: Db, webhookId: string | null): Promise<number> {
  const d = webhookDeliveries;
  const [row] = await db
    .select({ n: count() })
    .from(d)
    .where(webhookId ? eq(d.webhookId, webhookId) : undefined);
  return Number(row.n);
}
