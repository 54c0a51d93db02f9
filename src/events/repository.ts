/**
 * SQL for the raw exposure and conversion events: one statement inserts a batch, whatever its size.
 * Folding them into the maintained aggregates is src/aggregates/fold.ts.
 */
import { type SQL, sql } from 'drizzle-orm';
import { z } from 'zod';
import { batchStatement, columnNames, jsonbParam, queryPreparedRows, type Db } from '../db/client';
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
 * How a batch of events travels to PostgreSQL: one jsonb array of objects with one-letter keys, a field that
 * is null (or empty metadata) left out (jsonb_to_recordset reads a missing key as NULL). Every byte is
 * written to the socket and parsed by PostgreSQL, once for the insert and once for the fold: this is about
 * half the text of the objects as they are (measured: sending them was ~6 ms of server CPU per 1,000 events).
 */
const WIRE = {
  kind: ['k', 'text'],
  eventId: ['i', 'uuid'],
  experimentId: ['x', 'uuid'],
  variantId: ['v', 'uuid'],
  userId: ['u', 'text'],
  metricName: ['m', 'text'],
  value: ['n', 'float8'],
  occurredAt: ['o', 'timestamptz'],
  metadata: ['d', 'jsonb'],
  covariates: ['c', 'jsonb'],
  dimensions: ['s', 'jsonb'],
} as const satisfies Record<keyof EventRow, readonly [string, string]>;
type EventField = keyof EventRow;

/** The batch as its statement's parameter: only `fields`, each under its wire key, nulls left out. */
export function eventBatch<F extends EventField>(events: readonly Pick<EventRow, F>[], fields: readonly F[]) {
  return events.map((event) => {
    const wire: Record<string, unknown> = {};
    for (const field of fields) {
      const value = event[field];
      if (value === null || value === undefined) continue;
      if (field === 'metadata' && Object.keys(value as object).length === 0) continue;
      wire[WIRE[field][0]] = value;
    }
    return wire;
  });
}

/** `k text, i uuid, …`: the column definition list jsonb_to_recordset reads a batch of `fields` with. */
export function eventRecordType(fields: readonly EventField[]): SQL {
  return sql.raw(fields.map((f) => `${WIRE[f][0]} ${WIRE[f][1]}`).join(', '));
}

/** `alias.k AS "kind", …`: a batch's columns under the fields' names. */
export function eventColumns(alias: string, fields: readonly EventField[]): SQL {
  return sql.raw(fields.map((f) => `${alias}.${WIRE[f][0]} AS "${f}"`).join(', '));
}

const EVENT_FIELDS = Object.keys(WIRE) as EventField[];
/** Every event field but these, in the wire order. */
export const eventFieldsBut = <F extends EventField>(...left: F[]) =>
  EVENT_FIELDS.filter((f) => !left.includes(f as F)) as Exclude<EventField, F>[];

const INSERTED_FIELDS = EVENT_FIELDS;
const eventIdText = z.string();

const insertStatement = batchStatement(
  (batch) => sql`/* insertEvents */
WITH input AS (
  SELECT DISTINCT ON ("eventId") *
    FROM (SELECT ${eventColumns('t', INSERTED_FIELDS)}, t.ordinality
            FROM ROWS FROM (jsonb_to_recordset(${batch}) AS (${eventRecordType(INSERTED_FIELDS)}))
                 WITH ORDINALITY AS t) t
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
-- The ids already recorded (a replay): usually none, so usually no row comes back.
SELECT "eventId"::text AS "eventId" FROM input WHERE "eventId" NOT IN (SELECT "eventId" FROM claimed)`,
);

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
export async function insertEvents(db: Db, events: readonly EventRow[]): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  // Prepared on PostgreSQL: its text never changes (the batch is its one parameter).
  const rows = await queryPreparedRows<{ eventId: string }>(
    db,
    insertStatement(eventBatch(events, INSERTED_FIELDS)),
    'insertEvents',
  );
  const already = new Set(rows.map((r) => eventIdText.parse(r.eventId)));
  const inserted = new Set<string>();
  for (const event of events) {
    const id = event.eventId.toLowerCase();
    if (!already.has(id)) inserted.add(id);
  }
  return inserted;
}

/** Forced units' events keep no CUPED covariates or segment levels (they are never folded). */
const FORCED_FIELDS = eventFieldsBut('covariates', 'dimensions');

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
  FROM (SELECT ${eventColumns('t', FORCED_FIELDS)}, t.ordinality
          FROM ROWS FROM (jsonb_to_recordset(${jsonbParam(eventBatch(events, FORCED_FIELDS))})
                          AS (${eventRecordType(FORCED_FIELDS)})) WITH ORDINALITY AS t) t
 ORDER BY "eventId", ordinality
ON CONFLICT (${columnNames(f.eventId)}) DO NOTHING
RETURNING ${f.eventId}::text AS "eventId"`,
    z.object({ eventId: z.string() }),
  );
  return rows.map((r) => r.eventId);
}
