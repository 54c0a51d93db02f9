/** SQL for exposure and conversion events. Idempotent on the client's event id. */
import type { Db } from '../db/client';
import { experimentConversions, experimentExposures } from '../db/schema';

export interface EventParams {
  experimentId: string;
  variantId: string;
  userId: string;
  eventId: string;
  occurredAt: Date;
  metadata: Record<string, unknown>;
}

export interface ConversionParams extends EventParams {
  metricName: string;
  value: number;
}

/** Exposure or conversion; returns duplicate = true when the event id was already recorded. */
export async function insertEvent(
  db: Db,
  kind: 'exposure' | 'conversion',
  params: EventParams | ConversionParams,
): Promise<{ duplicate: boolean }> {
  const table = kind === 'exposure' ? experimentExposures : experimentConversions;
  const rows = await db
    .insert(table)
    .values(params as ConversionParams)
    .onConflictDoNothing({ target: table.eventId })
    .returning({ id: table.id });
  return { duplicate: rows.length === 0 };
}
