/**
 * The incremental fold: events a batch inserted, added to the per-unit totals (experiment_user_metrics)
 * and the per-variant sufficient statistics (experiment_variant_stats) in the batch's transaction. Two
 * statements whatever the batch size: one takes the per-experiment ingestion locks, one folds. The
 * numbers must equal what rebuild_experiment_stats computes from raw events (drizzle/repeatable/), which
 * is the definition of what they mean; tests/integration/aggregates.test.ts holds the two together.
 */
import { sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import { columnNames, jsonbParam, jsonParam, tableAs, type Db } from '../db/client';
import { parseRows } from '../db/rows';
import {
  experimentAssignments as assignments,
  experimentConversions as conversions,
  experimentExposures as exposures,
  experimentPhaseStats as phaseStats,
  experimentUserMetrics as userMetrics,
  experimentVariantStats as variantStats,
} from '../db/schema';
import type { EventRow } from '../events/repository';
import { ANY_CONVERSION_METRIC, EXPOSURE_METRIC } from './constants';

/** An event a batch inserted, as the fold needs it; its id in canonical (lower-case) form. */
export type FoldEvent = Pick<
  EventRow,
  'kind' | 'eventId' | 'experimentId' | 'variantId' | 'userId' | 'metricName' | 'value'
>;

/**
 * Takes the ingestion locks of some experiments (lock_experiments_for_ingest: fixed order, held until the
 * transaction ends). The next statement then sees every earlier holder's rows.
 */
async function lockExperimentsForIngest(db: Db, experimentIds: readonly string[]): Promise<void> {
  if (experimentIds.length === 0) return;
  await db.execute(sql`/* lockExperimentsForIngest */
    SELECT lock_experiments_for_ingest(ARRAY(SELECT value::uuid FROM json_array_elements_text(${jsonParam([...new Set(experimentIds)])})))`);
}

/**
 * Folds inserted events into the aggregates under the ingestion locks of their experiments, so
 * concurrent batches never lose an update. Returns the ids it took out again: an id the batch inserted
 * under one kind while the other kind's table holds it too (recorded earlier, or by a concurrent batch
 * that committed before this one took the lock) is a duplicate; the other row wins. The caller must
 * have inserted the events before, without holding any ingestion lock (docs/design.md, "Ingestion
 * without deadlocks").
 */
export async function foldIntoAggregates(db: Db, inserted: readonly FoldEvent[]): Promise<Set<string>> {
  if (inserted.length === 0) return new Set();
  await lockExperimentsForIngest(
    db,
    inserted.map((e) => e.experimentId),
  );
  const rows = await parseRows(db, foldStatement(inserted), z.object({ eventId: z.string() }));
  return new Set(rows.map((r) => r.eventId));
}

const um = alias(userMetrics, 'um');
const ps = alias(phaseStats, 'ps');
const s = alias(variantStats, 's');
const additiveStats = [
  s.events,
  s.units,
  s.sum,
  s.sumSquares,
  s.exposedUnits,
  s.exposedSum,
  s.exposedSumSquares,
] as const;

/**
 * One statement, written without joins between intermediate results (one grouping and one window
 * instead), so its cost stays linear in the batch size; stored totals are read by an index lookup per
 * touched unit, whatever the table's size. The old total of a unit comes from its own upsert.
 */
function foldStatement(inserted: readonly FoldEvent[]) {
  return sql`/* foldIntoAggregates */
WITH input AS (
  SELECT t.*,
         -- Scalar subqueries (event_id is unique) so each is one index probe: an EXISTS may be planned
         -- as a hash of the whole other table.
         CASE WHEN t."kind" = 'exposure'
              THEN (SELECT true FROM ${conversions} WHERE ${conversions.eventId} = t."eventId") IS NOT NULL
              ELSE (SELECT true FROM ${exposures} WHERE ${exposures.eventId} = t."eventId") IS NOT NULL
         END AS clash
    FROM jsonb_to_recordset(${jsonbParam(inserted)}) AS t(
      "kind" text, "eventId" uuid, "experimentId" uuid, "variantId" uuid, "userId" text, "metricName" text,
      "value" float8)
), undo_exposures AS (
  DELETE FROM ${exposures}
   WHERE ${exposures.eventId} = ANY (ARRAY(SELECT "eventId" FROM input WHERE clash AND "kind" = 'exposure'))
), undo_conversions AS (
  DELETE FROM ${conversions}
   WHERE ${conversions.eventId} = ANY (ARRAY(SELECT "eventId" FROM input WHERE clash AND "kind" = 'conversion'))
), ins AS (
  -- An exposure counts towards the exposure metric, worth 1.
  SELECT "experimentId", "variantId", "userId",
         CASE WHEN "kind" = 'exposure' THEN ${EXPOSURE_METRIC}::text ELSE "metricName" END AS "metricName",
         CASE WHEN "kind" = 'exposure' THEN 1::float8 ELSE "value" END AS "value"
    FROM input WHERE NOT clash
), deltas AS (
  -- What this batch adds per unit and metric (every conversion also counts towards the any-conversion metric).
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
  INSERT INTO ${tableAs(userMetrics, um)} (${columnNames(um.experimentId, um.userId, um.metricName, um.variantId, um.events, um.total)})
  SELECT experiment_id, user_id, metric_name, variant_id::uuid, d_events, d_total FROM deltas
   ORDER BY experiment_id, user_id, metric_name
  ON CONFLICT (${columnNames(um.experimentId, um.userId, um.metricName)})
  DO UPDATE SET ${columnNames(um.events)} = ${um.events} + excluded.${columnNames(um.events)},
                ${columnNames(um.total)} = ${um.total} + excluded.${columnNames(um.total)}
  RETURNING ${um.experimentId}, ${um.userId}, ${um.metricName}, ${um.variantId}, ${um.events}, ${um.total}
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
              ELSE (SELECT true FROM ${userMetrics}
                     WHERE ${userMetrics.experimentId} = c.experiment_id AND ${userMetrics.userId} = c.user_id
                       AND ${userMetrics.metricName} = ${EXPOSURE_METRIC}) IS NOT NULL
         END AS was_exposed
    FROM changed c
  WINDOW w AS (PARTITION BY c.experiment_id, c.user_id)
), untouched AS (
  -- Totals of units exposed for the first time that the batch did not change: they join exposed_* as they
  -- are (read from the snapshot, which is current for them). One index scan per such unit (LATERAL with
  -- OFFSET 0 keeps the planner from hashing a scan of the whole table).
  SELECT stored.experiment_id, stored.variant_id, stored.metric_name, stored.total
    FROM (SELECT DISTINCT experiment_id, user_id FROM units WHERE exposed_now AND NOT was_exposed) n
   CROSS JOIN LATERAL (SELECT ${userMetrics.experimentId}, ${userMetrics.userId}, ${userMetrics.variantId},
                              ${userMetrics.metricName}, ${userMetrics.total}
                         FROM ${userMetrics}
                        WHERE ${userMetrics.experimentId} = n.experiment_id AND ${userMetrics.userId} = n.user_id
                       OFFSET 0) stored
   WHERE NOT EXISTS (SELECT 1 FROM deltas d WHERE d.experiment_id = stored.experiment_id
                        AND d.user_id = stored.user_id AND d.metric_name = stored.metric_name)
), upsert_phase_stats AS (
  -- A unit exposed for the first time joins the exposed units of its variant in the phase it was assigned in
  -- (one index probe on its assignment; the phases of an experiment are few).
  INSERT INTO ${tableAs(phaseStats, ps)} (${columnNames(ps.experimentId, ps.variantId, ps.phase, ps.exposedUnits)})
  SELECT c.experiment_id, c.variant_id, r.phase, count(*)
    FROM changed c
    JOIN ${assignments} ON ${assignments.experimentId} = c.experiment_id AND ${assignments.userId} = c.user_id
   CROSS JOIN LATERAL experiment_phase_ranges(c.experiment_id) r
   WHERE c.metric_name = ${EXPOSURE_METRIC} AND c.is_new
     AND ${assignments.assignedAt} >= r.from_at AND ${assignments.assignedAt} < r.to_at
   GROUP BY c.experiment_id, c.variant_id, r.phase
   ORDER BY c.experiment_id, c.variant_id, r.phase
  ON CONFLICT (${columnNames(ps.experimentId, ps.variantId, ps.phase)}) DO UPDATE
    SET ${columnNames(ps.exposedUnits)} = ${ps.exposedUnits} + excluded.${columnNames(ps.exposedUnits)}
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
  INSERT INTO ${tableAs(variantStats, s)} (${columnNames(s.experimentId, s.variantId, s.metricName, ...additiveStats)})
  SELECT experiment_id, variant_id, metric_name, sum(events), sum(units), sum(sum), sum(sum_squares),
         sum(exposed_units), sum(exposed_sum), sum(exposed_sum_squares)
    FROM stat_deltas
   GROUP BY experiment_id, variant_id, metric_name
   ORDER BY experiment_id, variant_id, metric_name
  ON CONFLICT (${columnNames(s.experimentId, s.variantId, s.metricName)}) DO UPDATE SET
    ${sql.join(
      additiveStats.map((c) => sql`${columnNames(c)} = ${c} + excluded.${columnNames(c)}`),
      sql`,\n    `,
    )}
)
SELECT "eventId"::text AS "eventId" FROM input WHERE clash`;
}
