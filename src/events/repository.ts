/**
 * SQL for the raw exposure and conversion events: one statement inserts a batch, whatever its size.
 * Folding them into the maintained aggregates is src/aggregates/fold.ts.
 */
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { columnNames, jsonbParam, type Db } from '../db/client';
import { parseRows } from '../db/rows';
import { experimentConversions as conversions, experimentExposures as exposures } from '../db/schema';

export interface EventRow {
  kind: 'exposure' | 'conversion';
  eventId: string;
  experimentId: string;
  variantId: string;
  userId: string;
  /** Conversions only. */
  metricName: string | null;
  value: number | null;
  occurredAt: string;
  metadata: Record<string, unknown>;
  /** Exposures only: the admitted segment levels (src/aggregates/segments.ts). */
  dimensions: Record<string, string> | null;
}

/**
 * Inserts events, skipping event ids already recorded under the same kind and repeated within the batch
 * (the first occurrence is the event); returns the ids it inserted, in canonical (lower-case) form. An
 * id already recorded under the other kind (one id is one event) is inserted here and taken out again by
 * the fold, under the ingestion lock, where every such row of the experiment is visible: checking here
 * too would cost an index probe per event for what is a client bug.
 *
 * Runs before the ingestion lock, so batches of one experiment insert concurrently; every caller inserts
 * in the same order (exposures before conversions, each by ascending event id), which is what keeps that
 * deadlock-free. Callers must not hold an ingestion lock here (docs/design.md, "Ingestion without
 * deadlocks").
 */
export async function insertEvents(db: Db, events: readonly EventRow[]): Promise<string[]> {
  if (events.length === 0) return [];
  const rows = await parseRows(
    db,
    sql`/* insertEvents */
WITH input AS (
  SELECT DISTINCT ON ("eventId") *
    FROM ROWS FROM (jsonb_to_recordset(${jsonbParam(events)}) AS (
      "kind" text, "eventId" uuid, "experimentId" uuid, "variantId" uuid, "userId" text,
      "metricName" text, "value" float8, "occurredAt" timestamptz, "metadata" jsonb, "dimensions" jsonb)) WITH ORDINALITY AS t
   ORDER BY "eventId", ordinality
), ins_exposures AS (
  INSERT INTO ${exposures} (${columnNames(
    exposures.experimentId,
    exposures.variantId,
    exposures.userId,
    exposures.eventId,
    exposures.occurredAt,
    exposures.metadata,
    exposures.dimensions,
  )})
  SELECT "experimentId", "variantId", "userId", "eventId", "occurredAt", coalesce("metadata", '{}'::jsonb),
         "dimensions"
    FROM input WHERE "kind" = 'exposure'
   ORDER BY "eventId"
  ON CONFLICT (${columnNames(exposures.eventId)}) DO NOTHING
  RETURNING ${exposures.eventId} AS "eventId"
), ins_conversions AS (
  INSERT INTO ${conversions} (${columnNames(
    conversions.experimentId,
    conversions.variantId,
    conversions.userId,
    conversions.eventId,
    conversions.occurredAt,
    conversions.metadata,
    conversions.metricName,
    conversions.value,
  )})
  SELECT "experimentId", "variantId", "userId", "eventId", "occurredAt", coalesce("metadata", '{}'::jsonb),
         "metricName", "value"
    FROM input WHERE "kind" = 'conversion'
   ORDER BY "eventId"
  ON CONFLICT (${columnNames(conversions.eventId)}) DO NOTHING
  RETURNING ${conversions.eventId} AS "eventId"
)
SELECT "eventId"::text AS "eventId" FROM ins_exposures
UNION ALL
SELECT "eventId"::text FROM ins_conversions`,
    z.object({ eventId: z.string() }),
  );
  return rows.map((r) => r.eventId);
}
