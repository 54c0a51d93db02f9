/**
 * SQL for exposure and conversion events. A batch is a lock and two set-based statements whatever its
 * size: one inserts the raw events, one folds them into the maintained aggregates. The per-experiment
 * lock serialises batches of one experiment, so no aggregate update is lost.
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

/** An event the batch actually inserted, as the aggregates see it (exposures as metric `exposure`). */
export interface InsertedEvent {
  eventId: string;
  experimentId: string;
  variantId: string;
  userId: string;
  metricName: string;
  value: number;
}

/** Inserts events, skipping event ids already recorded (in either table: one id is one event). */
export async function insertEvents(db: Db, events: readonly EventRow[]): Promise<InsertedEvent[]> {
  if (events.length === 0) return [];
  return queryRows<InsertedEvent>(
    db,
    sql`/* insertEvents */
WITH input AS (
  SELECT * FROM jsonb_to_recordset(${jsonbParam(events)}) AS t(
    "kind" text, "eventId" uuid, "experimentId" uuid, "variantId" uuid, "userId" text,
    "metricName" text, "value" float8, "occurredAt" timestamptz, "metadata" jsonb)
), ins_exposures AS (
  INSERT INTO experiment_exposures (experiment_id, variant_id, user_id, event_id, occurred_at, metadata)
  SELECT "experimentId", "variantId", "userId", "eventId", "occurredAt", coalesce("metadata", '{}'::jsonb)
    FROM input WHERE "kind" = 'exposure'
     AND NOT EXISTS (SELECT 1 FROM experiment_conversions c WHERE c.event_id = input."eventId")
  ON CONFLICT (event_id) DO NOTHING
  RETURNING event_id, experiment_id, variant_id, user_id, ${EXPOSURE_METRIC}::text AS metric_name, 1::float8 AS value
), ins_conversions AS (
  INSERT INTO experiment_conversions (experiment_id, variant_id, user_id, event_id, occurred_at, metadata, metric_name, value)
  SELECT "experimentId", "variantId", "userId", "eventId", "occurredAt", coalesce("metadata", '{}'::jsonb), "metricName", "value"
    FROM input WHERE "kind" = 'conversion'
     AND NOT EXISTS (SELECT 1 FROM experiment_exposures x WHERE x.event_id = input."eventId")
  ON CONFLICT (event_id) DO NOTHING
  RETURNING event_id, experiment_id, variant_id, user_id, metric_name, value
)
SELECT event_id::text AS "eventId", experiment_id::text AS "experimentId", variant_id::text AS "variantId",
       user_id AS "userId", metric_name AS "metricName", value
  FROM (SELECT * FROM ins_exposures UNION ALL SELECT * FROM ins_conversions) inserted`,
  );
}

/**
 * Folds inserted events into the per-unit totals and per-variant sufficient statistics in one
 * statement. Must run under lockExperimentsForIngest: the lock makes the stored totals it reads current,
 * so concurrent batches never lose an update. Written without joins between intermediate results (one
 * grouping and one window instead), so its cost stays linear in the batch size.
 */
export async function applyToAggregates(db: Db, inserted: readonly InsertedEvent[]): Promise<void> {
  if (inserted.length === 0) return;
  await db.execute(sql`/* applyToAggregates */
WITH ins AS (
  SELECT * FROM jsonb_to_recordset(${jsonbParam(inserted)}) AS t(
    "experimentId" uuid, "variantId" uuid, "userId" text, "metricName" text, "value" float8)
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
), prev AS (
  -- Every stored total of the units this batch touches, as it was before the batch.
  SELECT um.experiment_id, um.user_id, um.metric_name, um.total
    FROM experiment_user_metrics um
   WHERE (um.experiment_id, um.user_id) IN (SELECT DISTINCT experiment_id, user_id FROM deltas)
), merged AS (
  -- One row per (unit, metric) that the batch touches or the unit already had.
  SELECT experiment_id, user_id, metric_name, max(variant_id) AS variant_id, max(old_total) AS old_total,
         sum(d_total) AS d_total, sum(d_events) AS d_events, bool_or(is_delta) AS has_delta
    FROM (SELECT experiment_id, user_id, metric_name, variant_id, NULL::float8 AS old_total, d_total, d_events,
                 true AS is_delta
            FROM deltas
          UNION ALL
          SELECT experiment_id, user_id, metric_name, NULL, total, NULL, 0, false FROM prev) r
   GROUP BY experiment_id, user_id, metric_name
), units AS (
  SELECT m.*,
         bool_or(metric_name = ${EXPOSURE_METRIC} AND old_total IS NOT NULL) OVER w AS was_exp,
         bool_or(metric_name = ${EXPOSURE_METRIC} AND has_delta) OVER w AS exposed_now,
         max(variant_id) OVER w AS unit_variant
    FROM merged m
  WINDOW w AS (PARTITION BY experiment_id, user_id)
), changes AS (
  -- Touched metrics, plus every metric of units exposed for the first time (they join exposed_*).
  SELECT experiment_id, unit_variant::uuid AS variant_id, metric_name, old_total,
         coalesce(old_total, 0) + coalesce(d_total, 0) AS new_total, coalesce(d_events, 0) AS d_events,
         was_exp, was_exp OR exposed_now AS now_exp
    FROM units
   WHERE has_delta OR (exposed_now AND NOT was_exp)
), upsert_units AS (
  INSERT INTO experiment_user_metrics AS um (experiment_id, user_id, metric_name, variant_id, events, total)
  SELECT experiment_id, user_id, metric_name, variant_id::uuid, d_events, d_total FROM deltas
   ORDER BY experiment_id, user_id, metric_name
  ON CONFLICT (experiment_id, user_id, metric_name)
  DO UPDATE SET events = um.events + excluded.events, total = um.total + excluded.total
)
INSERT INTO experiment_variant_stats AS s (experiment_id, variant_id, metric_name, events, units, sum, sum_squares,
                                           exposed_units, exposed_sum, exposed_sum_squares)
SELECT experiment_id, variant_id, metric_name,
       sum(d_events),
       count(*) FILTER (WHERE old_total IS NULL),
       sum(new_total - coalesce(old_total, 0)),
       sum(new_total * new_total - coalesce(old_total, 0) * coalesce(old_total, 0)),
       count(*) FILTER (WHERE (was_exp AND old_total IS NULL) OR (NOT was_exp AND now_exp)),
       coalesce(sum(CASE WHEN was_exp THEN new_total - coalesce(old_total, 0) WHEN now_exp THEN new_total ELSE 0 END), 0),
       coalesce(sum(CASE WHEN was_exp THEN new_total * new_total - coalesce(old_total, 0) * coalesce(old_total, 0)
                         WHEN now_exp THEN new_total * new_total ELSE 0 END), 0)
  FROM changes
 GROUP BY experiment_id, variant_id, metric_name
 ORDER BY experiment_id, variant_id, metric_name
ON CONFLICT (experiment_id, variant_id, metric_name) DO UPDATE SET
  events = s.events + excluded.events,
  units = s.units + excluded.units,
  sum = s.sum + excluded.sum,
  sum_squares = s.sum_squares + excluded.sum_squares,
  exposed_units = s.exposed_units + excluded.exposed_units,
  exposed_sum = s.exposed_sum + excluded.exposed_sum,
  exposed_sum_squares = s.exposed_sum_squares + excluded.exposed_sum_squares`);
}

/**
 * Writes a batch under the ingestion locks of its experiments: raw events, then the aggregates. The lock
 * comes first on purpose: inserting before it let two batches replaying each other's event ids wait on
 * each other's unique-index entries in opposite orders (a deadlock that lost both batches).
 */
export async function insertEventsAndAggregate(db: Db, events: readonly EventRow[]): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  await lockExperimentsForIngest(
    db,
    events.map((e) => e.experimentId),
  );
  const inserted = await insertEvents(db, events);
  await applyToAggregates(db, inserted);
  return new Set(inserted.map((e) => e.eventId));
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
    return { duplicate: !inserted.has(params.eventId) };
  });
}
