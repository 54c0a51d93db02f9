/**
 * SQL for exposure and conversion events. One statement writes a whole batch and folds it into the
 * maintained aggregates, after a per-experiment lock that serialises aggregate updates (no lost update).
 */
import { sql } from 'drizzle-orm';
import { jsonParam, queryRows, type Db } from '../db/client';
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

/**
 * Inserts events (skipping event ids already recorded) and applies the inserted ones to the per-unit
 * totals and per-variant statistics, all in one statement. Returns the event ids actually inserted.
 * Must run after lockExperimentsForIngest in the same transaction.
 */
export async function insertEventsAndAggregate(db: Db, events: readonly EventRow[]): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const rows = await queryRows<{ event_id: string }>(
    db,
    sql`/* insertEventsAndAggregate */
WITH input AS (
  SELECT * FROM json_to_recordset(${jsonParam(events)}) AS t(
    "kind" text, "eventId" uuid, "experimentId" uuid, "variantId" uuid, "userId" text,
    "metricName" text, "value" float8, "occurredAt" timestamptz, "metadata" jsonb)
), ins_exposures AS (
  INSERT INTO experiment_exposures (experiment_id, variant_id, user_id, event_id, occurred_at, metadata)
  SELECT "experimentId", "variantId", "userId", "eventId", "occurredAt", coalesce("metadata", '{}'::jsonb)
    FROM input WHERE "kind" = 'exposure'
     -- Event ids are unique across exposures and conversions: one id is one event.
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
), inserted AS (
  SELECT * FROM ins_exposures UNION ALL SELECT * FROM ins_conversions
), deltas AS (
  -- What this batch adds per unit and metric (conversions also count towards $any).
  SELECT experiment_id, user_id, metric_name, min(variant_id::text)::uuid AS variant_id,
         sum(value) AS d_total, count(*) AS d_events
    FROM (SELECT experiment_id, variant_id, user_id, metric_name, value FROM inserted
          UNION ALL
          SELECT experiment_id, variant_id, user_id, ${ANY_CONVERSION_METRIC}, value FROM ins_conversions) x
   GROUP BY experiment_id, user_id, metric_name
), touched AS (
  SELECT experiment_id, user_id, min(variant_id::text)::uuid AS variant_id,
         bool_or(metric_name = ${EXPOSURE_METRIC}) AS exposed_now
    FROM deltas GROUP BY experiment_id, user_id
), prev AS (
  -- Every stored total of the touched units, as it was before this batch (the lock makes it current).
  SELECT um.experiment_id, um.user_id, um.metric_name, um.total
    FROM experiment_user_metrics um
    JOIN touched t ON t.experiment_id = um.experiment_id AND t.user_id = um.user_id
), was_exposed AS (
  SELECT experiment_id, user_id FROM prev WHERE metric_name = ${EXPOSURE_METRIC}
), changes AS (
  -- Metrics this batch touches: old and new total.
  SELECT d.experiment_id, d.variant_id, d.user_id, d.metric_name, p.total AS old_total,
         coalesce(p.total, 0) + d.d_total AS new_total, d.d_events
    FROM deltas d
    LEFT JOIN prev p ON p.experiment_id = d.experiment_id AND p.user_id = d.user_id AND p.metric_name = d.metric_name
  UNION ALL
  -- Untouched metrics of units exposed for the first time: they now count towards exposed_*.
  SELECT p.experiment_id, t.variant_id, p.user_id, p.metric_name, p.total, p.total, 0
    FROM prev p
    JOIN touched t ON t.experiment_id = p.experiment_id AND t.user_id = p.user_id AND t.exposed_now
   WHERE NOT EXISTS (SELECT 1 FROM deltas d WHERE d.experiment_id = p.experiment_id AND d.user_id = p.user_id
                                             AND d.metric_name = p.metric_name)
     AND NOT EXISTS (SELECT 1 FROM was_exposed w WHERE w.experiment_id = p.experiment_id AND w.user_id = p.user_id)
), classified AS (
  SELECT c.*, (w.user_id IS NOT NULL) AS was_exp, t.exposed_now OR (w.user_id IS NOT NULL) AS now_exp
    FROM changes c
    JOIN touched t ON t.experiment_id = c.experiment_id AND t.user_id = c.user_id
    LEFT JOIN was_exposed w ON w.experiment_id = c.experiment_id AND w.user_id = c.user_id
), upsert_units AS (
  INSERT INTO experiment_user_metrics AS um (experiment_id, user_id, metric_name, variant_id, events, total)
  SELECT experiment_id, user_id, metric_name, variant_id, d_events, d_total FROM deltas
   ORDER BY experiment_id, user_id, metric_name
  ON CONFLICT (experiment_id, user_id, metric_name)
  DO UPDATE SET events = um.events + excluded.events, total = um.total + excluded.total
  RETURNING 1
), upsert_stats AS (
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
    FROM classified
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
  RETURNING 1
)
-- Data-modifying CTEs run to completion whether or not the final SELECT reads them.
SELECT event_id::text AS event_id FROM inserted`,
  );
  return new Set(rows.map((r) => r.event_id));
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
    await lockExperimentsForIngest(tx, [params.experimentId]);
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
