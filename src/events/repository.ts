/**
 * SQL for the raw exposure and conversion events: one statement inserts a batch, whatever its size.
 * Folding them into the maintained aggregates is src/aggregates/fold.ts.
 */
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { columnNames, jsonbParam, type Db } from '../db/client';
import { parseRows } from '../db/rows';
import {
  experimentConversions as conversions,
  experimentEventIds as eventIds,
  experimentExposures as exposures,
  experimentForcedEvents,
} from '../db/schema';

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
  /** Exposures only: the unit's CUPED pre-period values by metric key (only its first exposure's count). */
  covariates: Record<string, number> | null;
  /** Exposures only: the admitted segment levels (src/aggregates/segments.ts). */
  dimensions: Record<string, string> | null;
}

/**
 * Inserts events, skipping event ids already recorded (under either kind: one id is one event) and repeated
 * within the batch (the first occurrence is the event); returns the ids it inserted, in canonical
 * (lower-case) form. Each id is claimed in experiment_event_ids first, with ON CONFLICT DO NOTHING: a
 * concurrent batch claiming the same id waits for this one's transaction and then finds it taken, so
 * exactly one of them records the event.
 *
 * Runs before the ingestion lock, so batches of one experiment insert concurrently; every caller claims
 * ids in the same order (ascending), which is what keeps that deadlock-free. Callers must not hold an
 * ingestion lock here (docs/design.md, "Ingestion without deadlocks").
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
      "metricName" text, "value" float8, "occurredAt" timestamptz, "metadata" jsonb, "covariates" jsonb, "dimensions" jsonb)) WITH ORDINALITY AS t
   ORDER BY "eventId", ordinality
), claimed AS (
  INSERT INTO ${eventIds} (${columnNames(eventIds.eventId)})
  SELECT "eventId" FROM input ORDER BY "eventId"
  ON CONFLICT (${columnNames(eventIds.eventId)}) DO NOTHING
  RETURNING ${eventIds.eventId} AS "eventId"
), fresh AS (
  SELECT input.* FROM input JOIN claimed USING ("eventId")
), ins_exposures AS (
  INSERT INTO ${exposures} (${columnNames(
    exposures.experimentId,
    exposures.variantId,
    exposures.userId,
    exposures.eventId,
    exposures.occurredAt,
    exposures.metadata,
    exposures.covariates,
    exposures.dimensions,
  )})
  SELECT "experimentId", "variantId", "userId", "eventId", "occurredAt", coalesce("metadata", '{}'::jsonb),
         "covariates", "dimensions"
    FROM fresh WHERE "kind" = 'exposure'
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
    FROM fresh WHERE "kind" = 'conversion'
)
SELECT "eventId"::text AS "eventId" FROM claimed`,
    z.object({ eventId: z.string() }),
  );
  return rows.map((r) => r.eventId);
}

/**
 * Inserts events of forced units (experiment_forced_events), skipping event ids already recorded there and
 * repeats within the batch; returns the ids it inserted, in canonical (lower-case) form. Nothing is folded:
 * forced units stay out of the maintained aggregates.
 */
export async function insertForcedEvents(db: Db, events: readonly EventRow[]): Promise<string[]> {
  if (events.length === 0) return [];
  const f = experimentForcedEvents;
  const rows = await parseRows(
    db,
    sql`/* insertForcedEvents */
INSERT INTO ${f} (${columnNames(
      f.experimentId,
      f.variantId,
      f.userId,
      f.kind,
      f.eventId,
      f.metricName,
      f.value,
      f.occurredAt,
      f.metadata,
    )})
SELECT DISTINCT ON ("eventId") "experimentId", "variantId", "userId", "kind", "eventId", "metricName", "value",
       "occurredAt", coalesce("metadata", '{}'::jsonb)
  FROM ROWS FROM (jsonb_to_recordset(${jsonbParam(events)}) AS (
    "kind" text, "eventId" uuid, "experimentId" uuid, "variantId" uuid, "userId" text,
    "metricName" text, "value" float8, "occurredAt" timestamptz, "metadata" jsonb)) WITH ORDINALITY AS t
 ORDER BY "eventId", ordinality
ON CONFLICT (${columnNames(f.eventId)}) DO NOTHING
RETURNING ${f.eventId}::text AS "eventId"`,
    z.object({ eventId: z.string() }),
  );
  return rows.map((r) => r.eventId);
}
