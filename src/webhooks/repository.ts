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

/**
 * Claims the pending deliveries due at `now` (at most `limit`, the longest due first): their next attempt
 * moves to `leaseUntil`, so no other run takes them while this one sends them outside any transaction. A
 * run that dies before recording an attempt leaves its deliveries due again when the lease ends: at least
 * once. Rows another transaction holds are skipped.
 */
export async function claimDueDeliveries(
  db: Db,
  now: Date,
  limit: number,
  leaseUntil: Date,
): Promise<DueDelivery[]> {
  const d = webhookDeliveries;
  const rows = await parseRows(
    db,
    sql`/* claimDueDeliveries */
      WITH due AS (
        SELECT ${d.id} AS id, ${d.nextAttemptAt} AS due_at FROM ${d}
         WHERE ${d.status} = 'pending' AND ${d.nextAttemptAt} <= ${now.toISOString()}::timestamptz
         ORDER BY ${d.nextAttemptAt}, ${d.id}
         LIMIT ${limit}
           FOR UPDATE SKIP LOCKED
      )
      UPDATE ${d} SET ${sql.identifier(d.nextAttemptAt.name)} = ${leaseUntil.toISOString()}::timestamptz
        FROM due, ${webhooks}
       WHERE ${d.id} = due.id AND ${webhooks.id} = ${d.webhookId}
      RETURNING ${d.id} AS "id", ${d.event} AS "event", ${d.payload} AS "payload", ${d.attempts} AS "attempts",
                ${d.createdAt} AS "createdAt", ${webhooks.url} AS "url",
                ${webhooks.secretCiphertext} AS "secretCiphertext", due.due_at AS "dueAt"`,
    dueRow.extend({ dueAt: dbDate }),
  );
  // RETURNING has no order: send the longest due first, as they were chosen.
  rows.sort((x, y) => x.dueAt.getTime() - y.dueAt.getTime() || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  return rows.map(({ dueAt: _, ...row }) => row);
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
