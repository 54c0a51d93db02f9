-- Recomputes the maintained aggregates from raw events: rebuild_experiment_stats(NULL) every experiment
-- that exists now, with ids only those. What the aggregates mean (the incremental fold in
-- src/aggregates/fold.ts maintains the same numbers, and a test proves both agree): per unit,
-- {{EXPOSURE_METRIC}} counts exposures, each metric sums its conversion values, and {{ANY_CONVERSION_METRIC}}
-- sums all conversions. Per variant: units, sum and sum of squares of those per-unit totals, over all
-- units (units/sum/sum_squares) and over exposed units only (exposed_*). Per variant and phase: exposed units
-- whose assignment falls in the phase (experiment_phase_ranges).
--
-- It takes the ingestion lock of every experiment it rebuilds: without it, a rebuild while events arrive
-- (`npm run db:rebuild-stats` on a live database) fails with duplicate keys (rows a batch inserted after
-- its DELETE), and batches waiting on its rows deadlock.
CREATE OR REPLACE FUNCTION rebuild_experiment_stats(exp_ids uuid[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  ids uuid[];
BEGIN
  -- NULL means every experiment that exists now; an experiment created later is not touched.
  SELECT coalesce(array_agg(id), '{}') INTO ids FROM experiments WHERE exp_ids IS NULL OR id = ANY (exp_ids);
  PERFORM lock_experiments_for_ingest(ids);

  DELETE FROM experiment_variant_stats WHERE experiment_id = ANY (ids);
  DELETE FROM experiment_phase_stats WHERE experiment_id = ANY (ids);
  DELETE FROM experiment_user_metrics WHERE experiment_id = ANY (ids);

  INSERT INTO experiment_user_metrics (experiment_id, user_id, metric_name, variant_id, events, total)
  SELECT e.experiment_id, e.user_id, e.metric_name,
         (array_agg(e.variant_id ORDER BY e.occurred_at, e.variant_id))[1], count(*), sum(e.value)
    FROM (
      SELECT experiment_id, user_id, {{EXPOSURE_METRIC}}::text AS metric_name, variant_id, occurred_at,
             1::float8 AS value
        FROM experiment_exposures WHERE experiment_id = ANY (ids)
      UNION ALL
      SELECT experiment_id, user_id, metric_name, variant_id, occurred_at, value
        FROM experiment_conversions WHERE experiment_id = ANY (ids)
      UNION ALL
      SELECT experiment_id, user_id, {{ANY_CONVERSION_METRIC}}, variant_id, occurred_at, value
        FROM experiment_conversions WHERE experiment_id = ANY (ids)
    ) e
   GROUP BY e.experiment_id, e.user_id, e.metric_name;

  INSERT INTO experiment_variant_stats (experiment_id, variant_id, metric_name, events, units, sum, sum_squares,
                                        exposed_units, exposed_sum, exposed_sum_squares)
  SELECT um.experiment_id, um.variant_id, um.metric_name,
         sum(um.events), count(*), sum(um.total), sum(um.total * um.total),
         count(*) FILTER (WHERE ex.user_id IS NOT NULL),
         coalesce(sum(um.total) FILTER (WHERE ex.user_id IS NOT NULL), 0),
         coalesce(sum(um.total * um.total) FILTER (WHERE ex.user_id IS NOT NULL), 0)
    FROM experiment_user_metrics um
    LEFT JOIN experiment_user_metrics ex
      ON ex.experiment_id = um.experiment_id AND ex.user_id = um.user_id AND ex.metric_name = {{EXPOSURE_METRIC}}
   WHERE um.experiment_id = ANY (ids)
   GROUP BY um.experiment_id, um.variant_id, um.metric_name;

  INSERT INTO experiment_phase_stats (experiment_id, variant_id, phase, exposed_units)
  SELECT um.experiment_id, um.variant_id, r.phase, count(*)
    FROM experiment_user_metrics um
    JOIN experiment_assignments a ON a.experiment_id = um.experiment_id AND a.user_id = um.user_id
   CROSS JOIN LATERAL experiment_phase_ranges(um.experiment_id) r
   WHERE um.experiment_id = ANY (ids) AND um.metric_name = {{EXPOSURE_METRIC}}
     AND a.assigned_at >= r.from_at AND a.assigned_at < r.to_at
   GROUP BY um.experiment_id, um.variant_id, r.phase;
END;
$$;
