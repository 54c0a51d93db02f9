/**
 * The incremental fold: events a batch inserted, added to the per-unit totals (experiment_user_metrics),
 * the per-variant sufficient statistics (experiment_variant_stats) and the exposed units per phase
 * (experiment_phase_stats), the cross products of RATIO metrics (experiment_ratio_stats), the CUPED covariate
 * statistics (experiment_covariate_stats), and the same per-variant statistics per first-exposure hour and per
 * dimension level (experiment_period_stats, experiment_segment_stats, with each unit's key in
 * experiment_unit_segments) in the batch's transaction. Two statements whatever the batch size: one takes the
 * per-experiment ingestion locks, one folds. The numbers must equal what rebuild_experiment_stats and
 * rebuild_segment_stats compute from raw events (drizzle/repeatable/), which is the definition of what they
 * mean, attribution windows included; tests/integration/aggregates.test.ts, attribution.test.ts and
 * segments.test.ts hold the two together.
 *
 * Attribution (drizzle/repeatable/attribution.sql): a conversion counts only inside its unit's window, which
 * opens at the unit's first exposure. A conversion that arrives before its unit's exposure is stored but not
 * counted; when an exposure opens the window, or moves its start earlier (exposures arriving out of order),
 * the fold re-counts that unit's stored conversions from the raw rows (an index scan of the unit's rows),
 * so every arrival order ends with the same numbers.
 */
import { type SQL, sql } from 'drizzle-orm';
import { alias, type AnyPgColumn } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import { batchStatement, columnNames, jsonParam, queryPreparedRows, tableAs, type Db } from '../db/client';
import {
  experimentAssignments as assignments,
  experimentConversions as conversions,
  experimentCovariateStats as covariateStats,
  experimentDimensionLevels as dimensionLevels,
  experimentPeriodStats as periodStats,
  experimentPhaseStats as phaseStats,
  experimentRatioStats as ratioStats,
  experimentSegmentStats as segmentStats,
  experimentUnitSegments as unitSegments,
  experiments,
  experimentUserMetrics as userMetrics,
  experimentVariantStats as variantStats,
} from '../db/schema';
import {
  type EventRow,
  eventBatch,
  eventColumns,
  eventFieldsBut,
  eventRecordType,
} from '../events/repository';
import { ANY_CONVERSION_METRIC, EXPOSURE_METRIC } from './constants';

/** An event a batch inserted, as the fold needs it; its id in canonical (lower-case) form. */
export type FoldEvent = Pick<
  EventRow,
  | 'kind'
  | 'eventId'
  | 'experimentId'
  | 'variantId'
  | 'userId'
  | 'metricName'
  | 'value'
  | 'occurredAt'
  | 'covariates'
  | 'dimensions'
>;

/**
 * Takes the ingestion locks of some experiments (lock_experiments_for_ingest: fixed order, held until the
 * transaction ends). The next statement then sees every earlier holder's rows.
 */
export async function lockExperimentsForIngest(db: Db, experimentIds: readonly string[]): Promise<void> {
  if (experimentIds.length === 0) return;
  await db.execute(sql`/* lockExperimentsForIngest */
    SELECT lock_experiments_for_ingest(ARRAY(SELECT value::uuid FROM json_array_elements_text(${jsonParam([...new Set(experimentIds)])})))`);
}

/**
 * Folds inserted events into the aggregates under the ingestion locks of their experiments, so
 * concurrent batches never lose an update. Returns the ids it took out as duplicates: since insertEvents
 * claims every id once for both kinds (experiment_event_ids), that set is empty (the statement's `clash`
 * column is always false). The caller must
 * have inserted the events before, without holding any ingestion lock (docs/design.md, "Ingestion
 * without deadlocks").
 */
export async function foldIntoAggregates(db: Db, inserted: readonly FoldEvent[]): Promise<Set<string>> {
  if (inserted.length === 0) return new Set();
  await lockExperimentsForIngest(
    db,
    inserted.map((e) => e.experimentId),
  );
  // Prepared on PostgreSQL: the statement's text never changes (the batch is one jsonb parameter), and
  // planning it cost ~10 ms per batch, most of a 100-event batch's time in PostgreSQL.
  const rows = z
    .array(z.object({ eventId: z.string() }))
    .parse(
      await queryPreparedRows<unknown>(
        db,
        foldStatement(eventBatch(inserted, FOLDED_FIELDS)),
        'foldIntoAggregates',
      ),
    );
  return new Set(rows.map((r) => r.eventId));
}

const um = alias(userMetrics, 'um');
const s = alias(variantStats, 's');
const ps = alias(phaseStats, 'ps');
const rs = alias(ratioStats, 'rs');
const cs = alias(covariateStats, 'cs');
const us = alias(unitSegments, 'us');
const pd = alias(periodStats, 'pd');
const sg = alias(segmentStats, 'sg');
/** The columns of a period or segment statistics row, each written as the sum of a delta. */
const keyColumns = (t: typeof pd | typeof sg) => [t.units, t.sum, t.sumSquares, t.convertedUnits] as const;
/** `col = col + excluded.col` for each column: an upsert adding deltas. */
const addExcluded = (columns: readonly AnyPgColumn[]) =>
  sql.join(
    columns.map((col) => sql`${columnNames(col)} = ${col} + excluded.${columnNames(col)}`),
    sql`,\n    `,
  );
/** The CUPED columns, each written as the sum of a delta. */
const covariateColumns = [cs.units, cs.sum, cs.sumSquares, cs.sumProducts, cs.convertedSum] as const;
const e = experiments;
/** Each event name's conversion window in its experiment (drizzle/repeatable/metric_definitions.sql). */
const m = {
  view: sql.raw('experiment_metric_windows m'),
  experimentId: sql.raw('m.experiment_id'),
  metricName: sql.raw('m.metric_name'),
  conversionWindowHours: sql.raw('m.conversion_window_hours'),
};
const c = conversions;
/** The per-variant columns, each written as the sum of a delta. */
const statColumns = [
  s.events,
  s.units,
  s.sum,
  s.sumSquares,
  s.exposedUnits,
  s.exposedSum,
  s.exposedSumSquares,
  s.convertedUnits,
  s.recordedEvents,
] as const;

/** The metric name of a GROUPING SETS row: the metric, or the any-conversion total over the unit's metrics. */
const groupedMetric = (column: SQL) =>
  sql`CASE WHEN grouping(${column}) = 1 THEN ${ANY_CONVERSION_METRIC}::text ELSE ${column} END`;

/**
 * One statement. Every stored row it needs is read by an index probe per touched unit (the unit's exposure
 * row, the rows it changes, the raw conversions of a unit whose window opens), so its cost stays linear in
 * the batch, whatever the tables' size. Per-unit rows are written with their new values and the per-variant
 * statistics change by (new contribution − old contribution) of every changed row.
 */
/** What the fold reads of an event: all but its metadata. */
const FOLDED_FIELDS = eventFieldsBut('metadata');

const foldStatement = batchStatement((batch) => {
  const window = (at: SQL, firstAt: SQL) =>
    sql`conversion_in_window(${at}, ${firstAt}, ${e.endAt}, ${m.conversionWindowHours})`;
  return sql`/* foldIntoAggregates */
WITH input AS (
  SELECT ${eventColumns('t', FOLDED_FIELDS)},
         -- The event's time (event_time: never later than its recording, which is this transaction's now()).
         event_time(t.o, now()) AS at,
         -- insertEvents claims every id in experiment_event_ids before writing the event, so an id is never
         -- stored under both kinds any more: nothing clashes. (The steps that deleted the later copy of a
         -- clashing id are gone: without an index on event_id, which the partitioned tables no longer
         -- have, each would scan every partition.)
         false AS clash
    FROM jsonb_to_recordset(${batch}) AS t(${eventRecordType(FOLDED_FIELDS)})
), ins AS (
  SELECT * FROM input WHERE NOT clash
), dimensioned AS (
  -- The batch's experiments that admitted a dimension level: only their units can have stored levels to read.
  SELECT b.experiment_id
    FROM (SELECT DISTINCT "experimentId" AS experiment_id FROM ins) b
   WHERE EXISTS (SELECT FROM ${dimensionLevels} WHERE ${dimensionLevels.experimentId} = b.experiment_id)
), units AS (
  -- Each unit the batch touches, with its stored exposure row (one index probe) and its window's start after
  -- the batch. "reopened": the batch opens the window or moves its start earlier, so the unit's conversions
  -- are re-counted from the raw rows; otherwise the batch's conversions add to the stored totals.
  -- Its covariates and its key (the hour and the dimensions of experiment_period_stats and
  -- experiment_segment_stats) are those of its first exposure (earliest event time, then lowest event id): the
  -- batch's first exposure's when that comes before the stored one, else the stored ones. The stored hour is
  -- that of the exposure row's first_at; the stored dimensions are read (one index probe) only for a unit
  -- with an exposure row in an experiment with dimensions: a new unit's key comes from the batch.
  SELECT f.*,
         CASE WHEN f.first_replaced THEN f.batch_first_id ELSE f.old_first_id END AS first_event_id,
         CASE WHEN f.first_replaced THEN f.batch_covariates ELSE f.old_covariates END AS new_covariates,
         segment_period(f.old_first_at) AS old_period, segment_period(f.first_at) AS new_period,
         CASE WHEN f.first_replaced THEN f.batch_dimensions ELSE f.old_dimensions END AS new_dimensions
    FROM (
  SELECT n.*, x.first_at AS old_first_at, coalesce(x.events, 0) AS old_exposures, x.variant_id::text AS old_variant,
         least(x.first_at, n.batch_first_at) AS first_at,
         coalesce(n.batch_first_at < x.first_at, n.batch_first_at IS NOT NULL) AS reopened,
         x.first_event_id AS old_first_id, x.covariates AS old_covariates, k.dimensions AS old_dimensions,
         n.batch_first_at IS NOT NULL
           AND (x.first_at IS NULL OR (n.batch_first_at, n.batch_first_id) < (x.first_at, x.first_event_id))
           IS TRUE AS first_replaced
    FROM (SELECT "experimentId" AS experiment_id, "userId" AS user_id,
                 min(at) FILTER (WHERE "kind" = 'exposure') AS batch_first_at,
                 count(*) FILTER (WHERE "kind" = 'exposure') AS batch_exposures,
                 min("variantId"::text) FILTER (WHERE "kind" = 'exposure') AS exposure_variant,
                 (array_agg("eventId" ORDER BY at, "eventId") FILTER (WHERE "kind" = 'exposure'))[1] AS batch_first_id,
                 (array_agg("covariates" ORDER BY at, "eventId") FILTER (WHERE "kind" = 'exposure'))[1]
                   AS batch_covariates,
                 (array_agg("dimensions" ORDER BY at, "eventId") FILTER (WHERE "kind" = 'exposure'))[1]
                   AS batch_dimensions
            FROM ins GROUP BY "experimentId", "userId") n
    LEFT JOIN dimensioned d ON d.experiment_id = n.experiment_id
    LEFT JOIN LATERAL (SELECT ${userMetrics.firstAt}, ${userMetrics.events}, ${userMetrics.variantId},
                              ${userMetrics.firstEventId}, ${userMetrics.covariates}
                         FROM ${userMetrics}
                        WHERE ${userMetrics.experimentId} = n.experiment_id AND ${userMetrics.userId} = n.user_id
                          AND ${userMetrics.metricName} = ${EXPOSURE_METRIC}
                       OFFSET 0) x ON true
    LEFT JOIN LATERAL (SELECT ${unitSegments.dimensions} FROM ${unitSegments}
                        WHERE x.first_at IS NOT NULL AND d.experiment_id IS NOT NULL
                          AND ${unitSegments.experimentId} = n.experiment_id AND ${unitSegments.userId} = n.user_id
                       OFFSET 0) k ON true
         ) f
), added AS (
  -- The batch's conversions inside the window of a unit whose window did not move, per unit and metric.
  SELECT i."experimentId" AS experiment_id, i."userId" AS user_id, ${groupedMetric(sql`i."metricName"`)} AS metric_name,
         min(i."variantId"::text) AS variant_id, count(*) AS d_events, sum(i."value") AS d_total
    FROM ins i
    JOIN units u ON u.experiment_id = i."experimentId" AND u.user_id = i."userId"
    JOIN ${e} ON ${e.id} = i."experimentId"
    LEFT JOIN ${m.view} ON ${m.experimentId} = i."experimentId" AND ${m.metricName} = i."metricName"
   WHERE i."kind" = 'conversion' AND NOT u.reopened AND ${window(sql`i.at`, sql`u.first_at`)}
   GROUP BY GROUPING SETS ((i."experimentId", i."userId", i."metricName"), (i."experimentId", i."userId"))
), recounted AS (
  -- A reopened unit's conversions inside its new window, from the raw rows (the batch's included; a row this
  -- statement takes out as a duplicate excluded). Its variant: that of its earliest counted event.
  SELECT ${c.experimentId} AS experiment_id, ${c.userId} AS user_id, ${groupedMetric(sql`${c.metricName}`)} AS metric_name,
         ((array_agg(${c.variantId} ORDER BY ${c.occurredAt}, ${c.variantId}))[1])::text AS variant_id,
         count(*) AS events, sum(${c.value}) AS total
    FROM units u
    -- One index scan per reopened unit (LATERAL with OFFSET 0 keeps the planner from hashing a scan of the
    -- experiment's conversions).
   CROSS JOIN LATERAL (SELECT * FROM ${c} WHERE ${c.experimentId} = u.experiment_id AND ${c.userId} = u.user_id
                       OFFSET 0) ${c}
    JOIN ${e} ON ${e.id} = u.experiment_id
    LEFT JOIN ${m.view} ON ${m.experimentId} = ${c.experimentId} AND ${m.metricName} = ${c.metricName}
   WHERE u.reopened
     AND ${c.eventId} <> ALL (ARRAY(SELECT "eventId" FROM input WHERE clash AND "kind" = 'conversion'))
     AND ${window(sql`event_time(${c.occurredAt}, ${c.recordedAt})`, sql`u.first_at`)}
   GROUP BY GROUPING SETS ((${c.experimentId}, ${c.userId}, ${c.metricName}), (${c.experimentId}, ${c.userId}))
), replaced AS (
  -- A reopened unit's stored conversion rows, which its re-count replaces.
  SELECT stored.* FROM units u
   CROSS JOIN LATERAL (SELECT ${userMetrics.experimentId} AS experiment_id, ${userMetrics.userId} AS user_id,
                              ${userMetrics.metricName} AS metric_name, ${userMetrics.variantId}::text AS variant_id,
                              ${userMetrics.events} AS events, ${userMetrics.total} AS total
                         FROM ${userMetrics}
                        WHERE ${userMetrics.experimentId} = u.experiment_id AND ${userMetrics.userId} = u.user_id
                          AND ${userMetrics.metricName} <> ${EXPOSURE_METRIC}
                       OFFSET 0) stored
   WHERE u.reopened
), changes AS (
  -- Every per-unit row the batch changes: its old and new values (events 0: no row) and variants.
  SELECT experiment_id, user_id, ${EXPOSURE_METRIC}::text AS metric_name, old_variant,
         old_exposures AS old_events, old_exposures::float8 AS old_total,
         coalesce(old_variant, exposure_variant) AS new_variant,
         old_exposures + batch_exposures AS new_events, (old_exposures + batch_exposures)::float8 AS new_total,
         first_at, first_event_id, new_covariates AS covariates
    FROM units WHERE batch_exposures > 0
  UNION ALL
  SELECT coalesce(r.experiment_id, o.experiment_id), coalesce(r.user_id, o.user_id),
         coalesce(r.metric_name, o.metric_name), o.variant_id, coalesce(o.events, 0), coalesce(o.total, 0),
         r.variant_id, coalesce(r.events, 0), coalesce(r.total, 0), NULL, NULL, NULL
    FROM recounted r
    FULL JOIN replaced o
      ON o.experiment_id = r.experiment_id AND o.user_id = r.user_id AND o.metric_name = r.metric_name
  UNION ALL
  SELECT a.experiment_id, a.user_id, a.metric_name, x.variant_id::text, coalesce(x.events, 0), coalesce(x.total, 0),
         coalesce(x.variant_id::text, a.variant_id), coalesce(x.events, 0) + a.d_events,
         coalesce(x.total, 0) + a.d_total, NULL, NULL, NULL
    FROM added a
    LEFT JOIN LATERAL (SELECT ${userMetrics.variantId} AS variant_id, ${userMetrics.events} AS events,
                              ${userMetrics.total} AS total
                         FROM ${userMetrics}
                        WHERE ${userMetrics.experimentId} = a.experiment_id AND ${userMetrics.userId} = a.user_id
                          AND ${userMetrics.metricName} = a.metric_name
                       OFFSET 0) x ON true
), written AS (
  INSERT INTO ${tableAs(userMetrics, um)} (${columnNames(um.experimentId, um.userId, um.metricName, um.variantId, um.events, um.total, um.firstAt, um.firstEventId, um.covariates)})
  SELECT experiment_id, user_id, metric_name, new_variant::uuid, new_events, new_total, first_at, first_event_id::uuid,
         covariates
    FROM changes WHERE new_events > 0
   ORDER BY experiment_id, user_id, metric_name
  ON CONFLICT (${columnNames(um.experimentId, um.userId, um.metricName)}) DO UPDATE SET
    ${columnNames(um.variantId)} = excluded.${columnNames(um.variantId)},
    ${columnNames(um.events)} = excluded.${columnNames(um.events)},
    ${columnNames(um.total)} = excluded.${columnNames(um.total)},
    ${columnNames(um.firstAt)} = excluded.${columnNames(um.firstAt)},
    ${columnNames(um.firstEventId)} = excluded.${columnNames(um.firstEventId)},
    ${columnNames(um.covariates)} = excluded.${columnNames(um.covariates)}
), dropped AS (
  -- Rows of a reopened unit left without a counted event (its window's end moved before them), found by
  -- primary-key probes and deleted by their row ids: a join on the key could be planned as a scan of the
  -- table. No other part of this statement touches them (the upsert writes only rows with events).
  DELETE FROM ${userMetrics}
   WHERE ctid = ANY (ARRAY(
     SELECT x.ctid FROM changes ch
      CROSS JOIN LATERAL (SELECT ctid FROM ${userMetrics}
                           WHERE ${userMetrics.experimentId} = ch.experiment_id AND ${userMetrics.userId} = ch.user_id
                             AND ${userMetrics.metricName} = ch.metric_name
                          OFFSET 0) x
      WHERE ch.new_events = 0 AND ch.old_events > 0))
), upsert_phase_stats AS (
  -- A unit exposed for the first time joins the exposed units of its variant in the phase it was assigned in
  -- (one index probe on its assignment; the phases of an experiment are few).
  INSERT INTO ${tableAs(phaseStats, ps)} (${columnNames(ps.experimentId, ps.variantId, ps.phase, ps.exposedUnits)})
  SELECT ch.experiment_id, ch.new_variant::uuid, r.phase, count(*)
    FROM changes ch
   CROSS JOIN LATERAL (SELECT ${assignments.assignedAt} AS assigned_at FROM ${assignments}
                        WHERE ${assignments.experimentId} = ch.experiment_id AND ${assignments.userId} = ch.user_id
                       OFFSET 0) a
   CROSS JOIN LATERAL experiment_phase_ranges(ch.experiment_id) r
   WHERE ch.metric_name = ${EXPOSURE_METRIC} AND ch.old_events = 0
     AND a.assigned_at >= r.from_at AND a.assigned_at < r.to_at
   GROUP BY ch.experiment_id, ch.new_variant, r.phase
   ORDER BY ch.experiment_id, ch.new_variant, r.phase
  ON CONFLICT (${columnNames(ps.experimentId, ps.variantId, ps.phase)}) DO UPDATE
    SET ${columnNames(ps.exposedUnits)} = ${ps.exposedUnits} + excluded.${columnNames(ps.exposedUnits)}
), stat_deltas AS (
  -- Each changed row leaves its old variant's statistics and joins its new variant's; every recorded event
  -- counts in recorded_events. Every unit with a row is exposed, so exposed_* move with units/sum/sum_squares.
  SELECT experiment_id, old_variant AS variant_id, metric_name, -old_events AS events, -1 AS units,
         -old_total AS sum, -old_total * old_total AS sum_squares,
         CASE WHEN old_total > 0 THEN -1 ELSE 0 END AS converted, 0 AS recorded
    FROM changes WHERE old_events > 0
  UNION ALL
  SELECT experiment_id, new_variant, metric_name, new_events, 1, new_total, new_total * new_total,
         CASE WHEN new_total > 0 THEN 1 ELSE 0 END, 0
    FROM changes WHERE new_events > 0
  UNION ALL
  SELECT "experimentId"::uuid, "variantId"::text, CASE WHEN "kind" = 'exposure' THEN ${EXPOSURE_METRIC}::text ELSE "metricName" END,
         0, 0, 0, 0, 0, 1
    FROM ins
  UNION ALL
  SELECT "experimentId", "variantId"::text, ${ANY_CONVERSION_METRIC}, 0, 0, 0, 0, 0, 1
    FROM ins WHERE "kind" = 'conversion'
), upsert_stats AS (
  INSERT INTO ${tableAs(variantStats, s)} (${columnNames(s.experimentId, s.variantId, s.metricName, ...statColumns)})
  SELECT experiment_id, variant_id::uuid, metric_name, sum(events), sum(units), sum(sum), sum(sum_squares),
         sum(units), sum(sum), sum(sum_squares), sum(converted), sum(recorded)
    FROM stat_deltas
   GROUP BY experiment_id, variant_id, metric_name
   ORDER BY experiment_id, variant_id, metric_name
  ON CONFLICT (${columnNames(s.experimentId, s.variantId, s.metricName)}) DO UPDATE SET
    ${sql.join(
      statColumns.map((col) => sql`${columnNames(col)} = ${col} + excluded.${columnNames(col)}`),
      sql`,\n    `,
    )}
), ratio_units AS (
  -- Units whose numerator or denominator total of a RATIO pair the experiment lists changes.
  SELECT DISTINCT ch.experiment_id, ch.user_id, p.numerator, p.denominator
    FROM changes ch
    JOIN experiment_ratio_pairs p
      ON p.experiment_id = ch.experiment_id AND ch.metric_name IN (p.numerator, p.denominator)
), ratio_terms AS (
  -- The unit's old product (stored rows: the statement's snapshot) and its new one (a changed row's new
  -- total, else the stored row), each in the variant of the numerator row.
  SELECT ru.experiment_id, ru.numerator, ru.denominator,
         onum.variant_id::text AS old_variant, onum.total * oden.total AS old_product,
         CASE WHEN cn.user_id IS NULL THEN onum.variant_id::text WHEN cn.new_events > 0 THEN cn.new_variant END AS new_variant,
         CASE WHEN cn.user_id IS NULL THEN onum.total WHEN cn.new_events > 0 THEN cn.new_total END
           * CASE WHEN cd.user_id IS NULL THEN oden.total WHEN cd.new_events > 0 THEN cd.new_total END AS new_product
    FROM ratio_units ru
    LEFT JOIN changes cn
      ON cn.experiment_id = ru.experiment_id AND cn.user_id = ru.user_id AND cn.metric_name = ru.numerator
    LEFT JOIN changes cd
      ON cd.experiment_id = ru.experiment_id AND cd.user_id = ru.user_id AND cd.metric_name = ru.denominator
    LEFT JOIN LATERAL (SELECT ${userMetrics.variantId} AS variant_id, ${userMetrics.total} AS total FROM ${userMetrics}
                        WHERE ${userMetrics.experimentId} = ru.experiment_id AND ${userMetrics.userId} = ru.user_id
                          AND ${userMetrics.metricName} = ru.numerator OFFSET 0) onum ON true
    LEFT JOIN LATERAL (SELECT ${userMetrics.total} AS total FROM ${userMetrics}
                        WHERE ${userMetrics.experimentId} = ru.experiment_id AND ${userMetrics.userId} = ru.user_id
                          AND ${userMetrics.metricName} = ru.denominator OFFSET 0) oden ON true
), ratio_deltas AS (
  SELECT experiment_id, old_variant AS variant_id, numerator, denominator, -old_product AS d
    FROM ratio_terms WHERE old_product IS NOT NULL
  UNION ALL
  SELECT experiment_id, new_variant, numerator, denominator, new_product
    FROM ratio_terms WHERE new_product IS NOT NULL
), upsert_ratio_stats AS (
  INSERT INTO ${tableAs(ratioStats, rs)} (${columnNames(rs.experimentId, rs.variantId, rs.numerator, rs.denominator, rs.sumProducts)})
  SELECT experiment_id, variant_id::uuid, numerator, denominator, sum(d)
    FROM ratio_deltas
   GROUP BY experiment_id, variant_id, numerator, denominator
   ORDER BY experiment_id, variant_id, numerator, denominator
  ON CONFLICT (${columnNames(rs.experimentId, rs.variantId, rs.numerator, rs.denominator)}) DO UPDATE
    SET ${columnNames(rs.sumProducts)} = ${rs.sumProducts} + excluded.${columnNames(rs.sumProducts)}
), covariate_units AS (
  -- CUPED: units whose covariates change (their first exposure arrives, or an earlier one does), in the
  -- variant of their exposure row.
  SELECT experiment_id, old_variant, coalesce(old_variant, exposure_variant) AS new_variant, old_covariates,
         new_covariates
    FROM units
   WHERE batch_exposures > 0 AND new_covariates IS DISTINCT FROM old_covariates
), covariate_terms AS (
  -- Each (unit, covariate) whose product c·x with its event's total x may change: the unit's covariate changes,
  -- or its total of the covariate's event does (a row of changes).
  SELECT t.*, ch.user_id IS NOT NULL AS x_changed, ch.new_events, ch.new_total, ch.new_variant
    FROM (SELECT u.experiment_id, u.user_id, k.covariate,
                 -- covariate_event_name (metric_definitions.sql), as a join: called per row, the function's
                 -- lookup ran inside the hash and index conditions below.
                 coalesce(m.event_name, k.covariate) AS metric_name,
                 (u.old_covariates ->> k.covariate)::float8 AS old_c,
                 (u.new_covariates ->> k.covariate)::float8 AS new_c
            FROM units u
           CROSS JOIN LATERAL jsonb_object_keys(coalesce(u.old_covariates, '{}') || coalesce(u.new_covariates, '{}'))
                 AS k(covariate)
            LEFT JOIN metrics m ON m.key = k.covariate
           WHERE u.old_covariates IS NOT NULL OR u.new_covariates IS NOT NULL) t
    LEFT JOIN changes ch ON ch.experiment_id = t.experiment_id AND ch.user_id = t.user_id AND ch.metric_name = t.metric_name
   WHERE t.old_c IS DISTINCT FROM t.new_c OR ch.user_id IS NOT NULL
), covariate_products AS (
  -- The old product (stored row: the statement's snapshot) and the new one, each in its metric row's variant.
  SELECT t.experiment_id, t.covariate,
         o.variant_id::text AS old_variant, t.old_c * o.total AS old_product,
         CASE WHEN o.total > 0 THEN t.old_c ELSE 0 END AS old_converted,
         CASE WHEN NOT t.x_changed THEN o.variant_id::text WHEN t.new_events > 0 THEN t.new_variant END AS new_variant,
         t.new_c * CASE WHEN NOT t.x_changed THEN o.total WHEN t.new_events > 0 THEN t.new_total END AS new_product,
         CASE WHEN (CASE WHEN NOT t.x_changed THEN o.total WHEN t.new_events > 0 THEN t.new_total END) > 0
              THEN t.new_c ELSE 0 END AS new_converted
    FROM covariate_terms t
    LEFT JOIN LATERAL (SELECT ${userMetrics.variantId} AS variant_id, ${userMetrics.total} AS total FROM ${userMetrics}
                        WHERE ${userMetrics.experimentId} = t.experiment_id AND ${userMetrics.userId} = t.user_id
                          AND ${userMetrics.metricName} = t.metric_name OFFSET 0) o ON true
), covariate_deltas AS (
  SELECT cu.experiment_id, cu.old_variant AS variant_id, k.key AS covariate, -1 AS units, -k.value::float8 AS sum,
         -(k.value::float8 * k.value::float8) AS sum_squares, 0::float8 AS sum_products, 0::float8 AS converted_sum
    FROM covariate_units cu CROSS JOIN LATERAL jsonb_each_text(cu.old_covariates) k
   WHERE cu.old_covariates IS NOT NULL
  UNION ALL
  SELECT cu.experiment_id, cu.new_variant, k.key, 1, k.value::float8, k.value::float8 * k.value::float8, 0, 0
    FROM covariate_units cu CROSS JOIN LATERAL jsonb_each_text(cu.new_covariates) k
   WHERE cu.new_covariates IS NOT NULL
  UNION ALL
  SELECT experiment_id, old_variant, covariate, 0, 0, 0, -old_product, -old_converted
    FROM covariate_products WHERE old_product IS NOT NULL
  UNION ALL
  SELECT experiment_id, new_variant, covariate, 0, 0, 0, new_product, new_converted
    FROM covariate_products WHERE new_product IS NOT NULL
), upsert_covariate_stats AS (
  INSERT INTO ${tableAs(covariateStats, cs)} (${columnNames(cs.experimentId, cs.variantId, cs.covariate, ...covariateColumns)})
  SELECT experiment_id, variant_id::uuid, covariate, sum(units), sum(sum), sum(sum_squares), sum(sum_products),
         sum(converted_sum)
    FROM covariate_deltas
   GROUP BY experiment_id, variant_id, covariate
   ORDER BY experiment_id, variant_id, covariate
  ON CONFLICT (${columnNames(cs.experimentId, cs.variantId, cs.covariate)}) DO UPDATE SET
    ${sql.join(
      covariateColumns.map((col) => sql`${columnNames(col)} = ${col} + excluded.${columnNames(col)}`),
      sql`,\n    `,
    )}
), upsert_unit_segments AS (
  -- A unit's key follows its first exposure.
  INSERT INTO ${tableAs(unitSegments, us)} (${columnNames(us.experimentId, us.userId, us.firstAt, us.firstEventId, us.dimensions)})
  SELECT experiment_id, user_id, first_at, first_event_id::uuid, new_dimensions
    FROM units WHERE first_replaced
   ORDER BY experiment_id, user_id
  ON CONFLICT (${columnNames(us.experimentId, us.userId)}) DO UPDATE SET
    ${sql.join(
      [us.firstAt, us.firstEventId, us.dimensions].map(
        (col) => sql`${columnNames(col)} = excluded.${columnNames(col)}`,
      ),
      sql`, `,
    )}
), moved AS (
  -- Stored rows the batch leaves unchanged but whose unit changes key: an exposure at the same time as the
  -- stored first one with a lower event id and other dimensions. (A unit whose first exposure moves earlier is
  -- reopened: all its rows are in changes already.)
  SELECT u.experiment_id, u.user_id, stored.*
    FROM units u
   CROSS JOIN LATERAL (SELECT ${userMetrics.metricName} AS metric_name, ${userMetrics.variantId}::text AS variant_id,
                              ${userMetrics.total} AS total
                         FROM ${userMetrics}
                        WHERE ${userMetrics.experimentId} = u.experiment_id AND ${userMetrics.userId} = u.user_id
                       OFFSET 0) stored
   WHERE u.first_replaced AND NOT u.reopened AND u.old_dimensions IS DISTINCT FROM u.new_dimensions
     AND NOT EXISTS (SELECT FROM changes ch WHERE ch.experiment_id = u.experiment_id AND ch.user_id = u.user_id
                        AND ch.metric_name = stored.metric_name)
), key_deltas AS (
  -- Each changed row's contribution leaves the unit's old key and its new one joins the unit's new key (a unit
  -- without an exposure row had no key); a moved unit's other rows leave and join whole. The contribution is
  -- the one a unit makes to experiment_variant_stats, in the row's variant.
  SELECT ch.experiment_id, ch.metric_name, ch.old_variant AS variant_id, u.old_period AS period,
         u.old_dimensions AS dimensions, -1 AS units, -ch.old_total AS sum, -ch.old_total * ch.old_total AS sum_squares,
         CASE WHEN ch.old_total > 0 THEN -1 ELSE 0 END AS converted
    FROM changes ch JOIN units u ON u.experiment_id = ch.experiment_id AND u.user_id = ch.user_id
   WHERE ch.old_events > 0 AND u.old_first_at IS NOT NULL
  UNION ALL
  SELECT ch.experiment_id, ch.metric_name, ch.new_variant, u.new_period, u.new_dimensions, 1, ch.new_total,
         ch.new_total * ch.new_total, CASE WHEN ch.new_total > 0 THEN 1 ELSE 0 END
    FROM changes ch JOIN units u ON u.experiment_id = ch.experiment_id AND u.user_id = ch.user_id
   WHERE ch.new_events > 0
  UNION ALL
  SELECT mv.experiment_id, mv.metric_name, mv.variant_id, u.old_period, u.old_dimensions, -1, -mv.total,
         -mv.total * mv.total, CASE WHEN mv.total > 0 THEN -1 ELSE 0 END
    FROM moved mv JOIN units u ON u.experiment_id = mv.experiment_id AND u.user_id = mv.user_id
  UNION ALL
  SELECT mv.experiment_id, mv.metric_name, mv.variant_id, u.new_period, u.new_dimensions, 1, mv.total,
         mv.total * mv.total, CASE WHEN mv.total > 0 THEN 1 ELSE 0 END
    FROM moved mv JOIN units u ON u.experiment_id = mv.experiment_id AND u.user_id = mv.user_id
), upsert_period_stats AS (
  INSERT INTO ${tableAs(periodStats, pd)} (${columnNames(pd.experimentId, pd.metricName, pd.variantId, pd.periodStart, ...keyColumns(pd))})
  SELECT experiment_id, metric_name, variant_id::uuid, period, sum(units), sum(sum), sum(sum_squares), sum(converted)
    FROM key_deltas
   GROUP BY experiment_id, metric_name, variant_id, period
   ORDER BY experiment_id, metric_name, variant_id, period
  ON CONFLICT (${columnNames(pd.experimentId, pd.metricName, pd.variantId, pd.periodStart)}) DO UPDATE SET
    ${addExcluded(keyColumns(pd))}
), upsert_segment_stats AS (
  INSERT INTO ${tableAs(segmentStats, sg)} (${columnNames(sg.experimentId, sg.dimension, sg.metricName, sg.variantId, sg.level, ...keyColumns(sg))})
  SELECT kd.experiment_id, l.key, kd.metric_name, kd.variant_id::uuid, l.value, sum(kd.units), sum(kd.sum),
         sum(kd.sum_squares), sum(kd.converted)
    FROM key_deltas kd
   CROSS JOIN LATERAL jsonb_each_text(kd.dimensions) l
   WHERE kd.dimensions IS NOT NULL
   GROUP BY 1, 2, 3, 4, 5
   ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (${columnNames(sg.experimentId, sg.dimension, sg.metricName, sg.variantId, sg.level)}) DO UPDATE SET
    ${addExcluded(keyColumns(sg))}
)
SELECT "eventId"::text AS "eventId" FROM input WHERE clash`;
});
