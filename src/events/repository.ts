/**
 * SQL for exposure and conversion events. A batch is three statements whatever its size: one inserts the
 * raw events, one takes the per-experiment ingestion locks, one folds the inserted events into the
 * maintained aggregates. The lock serialises the folds of one experiment, so no aggregate update is lost;
 * the inserts, the larger part of the work, run concurrently.
 */
import { sql } from 'drizzle-orm';
import { jsonbParam, jsonParam, queryRows, type Db } from '../db/client';
import { ANY_CONVERSION_METRIC, EXPOSURE_METRIC } from './stats-repository';

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
}

/**
 * Takes the ingestion locks of some experiments, in a fixed order so concurrent batches cannot
 * deadlock. Held until the transaction ends; the next statement then sees every earlier batch.
 */
export async function lockExperimentsForIngest(db: Db, experimentIds: readonly string[]): Promise<void> {
  const ids = [...new Set(experimentIds)].sort();
  if (ids.length === 0) return;
  await db.execute(sql`/* lockExperimentsForIngest */
    SELECT pg_advisory_xact_lock(hashtextextended('sona.ingest:' || s.id, 0))
      FROM (SELECT value AS id FROM json_array_elements_text(${jsonParam(ids)}) ORDER BY 1) s`);
}

/** An event the batch inserted, as the fold needs it. */
type InsertedEvent = Pick<
  EventRow,
  'kind' | 'eventId' | 'experimentId' | 'variantId' | 'userId' | 'metricName' | 'value'
>;

/**
 * Inserts events, skipping event ids already recorded under the same kind and repeated within the batch
 * (the first occurrence is the event); returns the ids it inserted. An id already recorded under the
 * other kind (one id is one event) is inserted here and taken out again by applyToAggregates, under the
 * lock, where every such row of the experiment is visible: checking here too would cost an index probe
 * per event for what is a client bug.
 *
 * Runs before the ingestion lock, so batches of one experiment insert concurrently. That is deadlock-free
 * because every caller inserts in the same order: exposures before conversions (one plan: the final
 * UNION ALL reads ins_exposures to the end first), each by ascending event_id. The only waits in this
 * statement are ON CONFLICT waiting for the transaction that holds an uncommitted row with the same
 * event_id in the same table, and the variant check's FOR KEY SHARE (which only a deleter of the variant
 * blocks, and deleters never wait for inserters). So a transaction waiting here holds only entries that
 * come before the one it waits for, and so does the one it waits for if it waits here too: along any chain
 * of waits the (table, event_id) strictly increases, so it never closes. A transaction waiting for the
 * ingestion lock after its insert waits for the holder's fold, which waits for nobody (only lock holders
 * write the aggregate rows of their experiments). Callers must therefore not hold an ingestion lock when
 * they insert: unordered replays of each other's ids under the lock deadlocked before.
 */
export async function insertEvents(db: Db, events: readonly EventRow[]): Promise<string[]> {
  if (events.length === 0) return [];
  const rows = await queryRows<{ eventId: string }>(
    db,
    sql`/* insertEvents */
WITH input AS (
  SELECT DISTINCT ON ("eventId") *
    FROM ROWS FROM (jsonb_to_recordset(${jsonbParam(events)}) AS (
      "kind" text, "eventId" uuid, "experimentId" uuid, "variantId" uuid, "userId" text,
      "metricName" text, "value" float8, "occurredAt" timestamptz, "metadata" jsonb)) WITH ORDINALITY AS t
   ORDER BY "eventId", ordinality
), ins_exposures AS (
  INSERT INTO experiment_exposures (experiment_id, variant_id, user_id, event_id, occurred_at, metadata)
  SELECT "experimentId", "variantId", "userId", "eventId", "occurredAt", coalesce("metadata", '{}'::jsonb)
    FROM input WHERE "kind" = 'exposure'
   ORDER BY "eventId"
  ON CONFLICT (event_id) DO NOTHING
  RETURNING event_id
), ins_conversions AS (
  INSERT INTO experiment_conversions (experiment_id, variant_id, user_id, event_id, occurred_at, metadata, metric_name, value)
  SELECT "experimentId", "variantId", "userId", "eventId", "occurredAt", coalesce("metadata", '{}'::jsonb), "metricName", "value"
    FROM input WHERE "kind" = 'conversion'
   ORDER BY "eventId"
  ON CONFLICT (event_id) DO NOTHING
  RETURNING event_id
)
SELECT event_id::text AS "eventId" FROM ins_exposures
UNION ALL
SELECT event_id::text FROM ins_conversions`,
  );
  return rows.map((r) => r.eventId);
}

/**
 * Folds inserted events into the per-unit totals and per-variant sufficient statistics in one
 * statement. Must run under lockExperimentsForIngest: the lock makes the stored totals it reads current,
 * so concurrent batches never lose an update. Written without joins between intermediate results (one
 * grouping and one window instead), so its cost stays linear in the batch size; stored totals are read by
 * an index lookup per touched unit, whatever the table's size.
 *
 * It first settles ids recorded under the other kind (see insertEvents), earlier or by a concurrent batch
 * of the same experiment: such a batch committed before this one took the lock, so its row is visible now
 * and wins. This batch deletes its own copy, leaves it out of the numbers and returns its id (a duplicate).
 */
export async function applyToAggregates(db: Db, inserted: readonly InsertedEvent[]): Promise<Set<string>> {
  if (inserted.length === 0) return new Set();
  const rows = await queryRows<{ eventId: string }>(
    db,
    sql`/* applyToAggregates */
WITH input AS (
  SELECT t.*,
         -- Scalar subqueries (event_id is unique) so each is one index probe: an EXISTS may be planned
         -- as a hash of the whole other table.
         CASE WHEN t."kind" = 'exposure'
              THEN (SELECT true FROM experiment_conversions c WHERE c.event_id = t."eventId") IS NOT NULL
              ELSE (SELECT true FROM experiment_exposures x WHERE x.event_id = t."eventId") IS NOT NULL
         END AS clash
    FROM jsonb_to_recordset(${jsonbParam(inserted)}) AS t(
      "kind" text, "eventId" uuid, "experimentId" uuid, "variantId" uuid, "userId" text, "metricName" text,
      "value" float8)
), undo_exposures AS (
  DELETE FROM experiment_exposures
   WHERE event_id = ANY (ARRAY(SELECT "eventId" FROM input WHERE clash AND "kind" = 'exposure'))
), undo_conversions AS (
  DELETE FROM experiment_conversions
   WHERE event_id = ANY (ARRAY(SELECT "eventId" FROM input WHERE clash AND "kind" = 'conversion'))
), ins AS (
  -- Exposures count as the metric \`exposure\` worth 1.
  SELECT "experimentId", "variantId", "userId",
         CASE WHEN "kind" = 'exposure' THEN ${EXPOSURE_METRIC}::text ELSE "metricName" END AS "metricName",
         CASE WHEN "kind" = 'exposure' THEN 1::float8 ELSE "value" END AS "value"
    FROM input WHERE NOT clash
), deltas AS (
  -- What this batch adds per unit and metric (every conversion also counts towards $any).
  SELECT experiment_id, user_id, metric_name, min(variant_id::text) AS variant_id,
         sum(value) AS d_total, count(*) AS d_events
    FROM (SELECT "experimentId" AS experiment_id, "variantId" AS variant_id, "userId" AS user_id,
                 "metricName" AS metric_name, "value" AS value FROM ins
          UNION ALL
          SELECT "experimentId", "variantId", "userId", ${ANY_CONVERSION_METRIC}, "value"
            FROM ins WHERE "metricName" <> ${EXPOSURE_METRIC}) x
   GROUP BY experiment_id, user_id, metric_name
), upserted AS (
  -- The per-unit totals after the batch. A row is new exactly when its event count is this batch's
  -- (every stored row has at least one event), and its total before the batch is the total less the delta.
  INSERT INTO experiment_user_metrics AS um (experiment_id, user_id, metric_name, variant_id, events, total)
  SELECT experiment_id, user_id, metric_name, variant_id::uuid, d_events, d_total FROM deltas
   ORDER BY experiment_id, user_id, metric_name
  ON CONFLICT (experiment_id, user_id, metric_name)
  DO UPDATE SET events = um.events + excluded.events, total = um.total + excluded.total
  RETURNING um.experiment_id, um.user_id, um.metric_name, um.variant_id, um.events, um.total
), changed AS (
  SELECT u.experiment_id, u.user_id, u.metric_name, u.variant_id, u.total AS new_total, d.d_total, d.d_events,
         u.events = d.d_events AS is_new,
         CASE WHEN u.events = d.d_events THEN 0::float8 ELSE u.total - d.d_total END AS old_total
    FROM upserted u
    JOIN deltas d ON d.experiment_id = u.experiment_id AND d.user_id = u.user_id AND d.metric_name = u.metric_name
), units AS (
  -- Each changed row with its unit's exposure: exposed by this batch, and exposed before it. A unit the
  -- batch did not expose was exposed before iff it has an exposure row, which this statement does not
  -- change (its snapshot has it). Window functions, not a join back to a grouping: one pass, linear.
  SELECT c.*,
         bool_or(c.metric_name = ${EXPOSURE_METRIC}) OVER w AS exposed_now,
         CASE WHEN bool_or(c.metric_name = ${EXPOSURE_METRIC}) OVER w
              THEN bool_or(c.metric_name = ${EXPOSURE_METRIC} AND NOT c.is_new) OVER w
              ELSE (SELECT true FROM experiment_user_metrics x
                     WHERE x.experiment_id = c.experiment_id AND x.user_id = c.user_id
                       AND x.metric_name = ${EXPOSURE_METRIC}) IS NOT NULL
         END AS was_exposed
    FROM changed c
  WINDOW w AS (PARTITION BY c.experiment_id, c.user_id)
), untouched AS (
  -- Totals of units exposed for the first time that the batch did not change: they join exposed_* as they
  -- are (read from the snapshot, which is current for them). One index scan per such unit (LATERAL with
  -- OFFSET 0 keeps the planner from hashing a scan of the whole table).
  SELECT um.experiment_id, um.variant_id, um.metric_name, um.total
    FROM (SELECT DISTINCT experiment_id, user_id FROM units WHERE exposed_now AND NOT was_exposed) n
   CROSS JOIN LATERAL (SELECT s.experiment_id, s.user_id, s.variant_id, s.metric_name, s.total
                         FROM experiment_user_metrics s
                        WHERE s.experiment_id = n.experiment_id AND s.user_id = n.user_id
                       OFFSET 0) um
   WHERE NOT EXISTS (SELECT 1 FROM deltas d WHERE d.experiment_id = um.experiment_id
                        AND d.user_id = um.user_id AND d.metric_name = um.metric_name)
), stat_deltas AS (
  SELECT experiment_id, variant_id, metric_name, d_events AS events,
         CASE WHEN is_new THEN 1 ELSE 0 END AS units,
         d_total AS sum,
         new_total * new_total - old_total * old_total AS sum_squares,
         CASE WHEN was_exposed THEN CASE WHEN is_new THEN 1 ELSE 0 END
              WHEN exposed_now THEN 1 ELSE 0 END AS exposed_units,
         CASE WHEN was_exposed THEN d_total WHEN exposed_now THEN new_total ELSE 0 END AS exposed_sum,
         CASE WHEN was_exposed THEN new_total * new_total - old_total * old_total
              WHEN exposed_now THEN new_total * new_total ELSE 0 END AS exposed_sum_squares
    FROM units
  UNION ALL
  SELECT experiment_id, variant_id, metric_name, 0, 0, 0, 0, 1, total, total * total FROM untouched
), upsert_stats AS (
  INSERT INTO experiment_variant_stats AS s (experiment_id, variant_id, metric_name, events, units, sum,
                                             sum_squares, exposed_units, exposed_sum, exposed_sum_squares)
  SELECT experiment_id, variant_id, metric_name, sum(events), sum(units), sum(sum), sum(sum_squares),
         sum(exposed_units), sum(exposed_sum), sum(exposed_sum_squares)
    FROM stat_deltas
   GROUP BY experiment_id, variant_id, metric_name
   ORDER BY experiment_id, variant_id, metric_name
  ON CONFLICT (experiment_id, variant_id, metric_name) DO UPDATE SET
    events = s.events + excluded.events,
    units = s.units + excluded.units,
    sum = s.sum + excluded.sum,
    sum_squares = s.sum_squares + excluded.sum_squares,
    exposed_units = s.exposed_units + excluded.exposed_units,
    exposed_sum = s.exposed_sum + excluded.exposed_sum,
    exposed_sum_squares = s.exposed_sum_squares + excluded.exposed_sum_squares
)
SELECT "eventId"::text AS "eventId" FROM input WHERE clash`,
  );
  return new Set(rows.map((r) => r.eventId));
}

/**
 * Writes a batch: raw events first, outside the lock (see insertEvents for why that cannot deadlock), then
 * under the ingestion locks of the experiments it inserted into, the aggregates. A batch of replays only
 * (nothing inserted) takes no lock. Returns the ids of the events it recorded, in canonical (lower-case)
 * form.
 */
export async function insertEventsAndAggregate(db: Db, events: readonly EventRow[]): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const insertedIds = new Set(await insertEvents(db, events));
  if (insertedIds.size === 0) return insertedIds;
  const seen = new Set<string>();
  const inserted: InsertedEvent[] = [];
  for (const e of events) {
    // PostgreSQL returns ids in canonical (lower-case) form; a client may send upper case.
    const eventId = e.eventId.toLowerCase();
    if (!insertedIds.has(eventId) || seen.has(eventId)) continue;
    seen.add(eventId);
    inserted.push({
      kind: e.kind,
      eventId,
      experimentId: e.experimentId,
      variantId: e.variantId,
      userId: e.userId,
      metricName: e.metricName,
      value: e.value,
    });
  }
  await lockExperimentsForIngest(
    db,
    inserted.map((e) => e.experimentId),
  );
  for (const id of await applyToAggregates(db, inserted)) insertedIds.delete(id);
  return insertedIds;
}

/** One event, with its lock and aggregates; `duplicate` when its event id was already recorded. */
export async function insertEvent(
  db: Db,
  kind: 'exposure' | 'conversion',
  params: Omit<EventRow, 'kind' | 'occurredAt' | 'metricName' | 'value'> & {
    occurredAt: Date;
    metricName?: string;
    value?: number;
  },
): Promise<{ duplicate: boolean }> {
  return db.transaction(async (tx) => {
    const inserted = await insertEventsAndAggregate(tx, [
      {
        ...params,
        kind,
        occurredAt: params.occurredAt.toISOString(),
        metricName: kind === 'conversion' ? (params.metricName ?? null) : null,
        value: kind === 'conversion' ? (params.value ?? 1) : null,
      },
    ]);
    return { duplicate: !inserted.has(params.eventId.toLowerCase()) };
  });
}
