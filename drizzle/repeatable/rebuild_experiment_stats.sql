-- Recomputes the maintained aggregates from raw events: rebuild_experiment_stats(NULL) every experiment
-- that exists now, with ids only those. What the aggregates mean (the incremental fold in
-- src/aggregates/fold.ts maintains the same numbers, and a test proves both agree): per unit,
-- {{EXPOSURE_METRIC}} counts exposures (first_at: the first exposure's time), each metric sums its conversion
-- values within the unit's attribution window (conversion_in_window, attribution.sql), and
-- {{ANY_CONVERSION_METRIC}} sums all of those; a unit has a row for a metric only when it has a counted event.
-- A row's variant is that of its earliest counted event. Per variant: units, sum and sum of squares of those
-- per-unit totals (every unit with a row is exposed, so exposed_* are the same numbers), units with a total
-- > 0 (converted_units), and every event recorded, counted or not (recorded_events). Per variant and phase:
-- exposed units whose assignment falls in the phase (experiment_phase_ranges). Per variant and RATIO event pair
-- the experiment lists (experiment_ratio_pairs): Σ over units of numerator total × denominator total, each unit
-- in the variant of its numerator row. Conversion windows: experiment_metric_windows (metric_definitions.sql).
-- CUPED: a unit's covariates are those of its first exposure (earliest event time, then lowest event id; kept on
-- its {{EXPOSURE_METRIC}} row with that event's id). Per variant and covariate key: the units with the
-- covariate, Σc and Σc² (variant of the exposure row), and over units with a total x of the key's event
-- (covariate_event_name), Σx·c and Σc where x > 0 (variant of the metric row).
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
  DELETE FROM experiment_ratio_stats WHERE experiment_id = ANY (ids);
  DELETE FROM experiment_covariate_stats WHERE experiment_id = ANY (ids);
  DELETE FROM experiment_user_metrics WHERE experiment_id = ANY (ids);

  INSERT INTO experiment_user_metrics (experiment_id, user_id, metric_name, variant_id, events, total, first_at,
                                       first_event_id, covariates)
  SELECT experiment_id, user_id, {{EXPOSURE_METRIC}}, (array_agg(variant_id ORDER BY occurred_at, variant_id))[1],
         count(*), count(*), min(event_time(occurred_at, recorded_at)),
         (array_agg(event_id ORDER BY event_time(occurred_at, recorded_at), event_id))[1],
         (array_agg(covariates ORDER BY event_time(occurred_at, recorded_at), event_id))[1]
    FROM experiment_exposures
   WHERE experiment_id = ANY (ids)
   GROUP BY experiment_id, user_id;

  INSERT INTO experiment_user_metrics (experiment_id, user_id, metric_name, variant_id, events, total)
  SELECT c.experiment_id, c.user_id,
         CASE WHEN grouping(c.metric_name) = 1 THEN {{ANY_CONVERSION_METRIC}} ELSE c.metric_name END,
         (array_agg(c.variant_id ORDER BY c.occurred_at, c.variant_id))[1], count(*), sum(c.value)
    FROM experiment_conversions c
    JOIN experiment_user_metrics x
      ON x.experiment_id = c.experiment_id AND x.user_id = c.user_id AND x.metric_name = {{EXPOSURE_METRIC}}
    JOIN experiments e ON e.id = c.experiment_id
    LEFT JOIN experiment_metric_windows m ON m.experiment_id = c.experiment_id AND m.metric_name = c.metric_name
   WHERE c.experiment_id = ANY (ids)
     AND conversion_in_window(event_time(c.occurred_at, c.recorded_at), x.first_at, e.end_at,
                              m.conversion_window_hours)
   GROUP BY GROUPING SETS ((c.experiment_id, c.user_id, c.metric_name), (c.experiment_id, c.user_id));

  INSERT INTO experiment_variant_stats (experiment_id, variant_id, metric_name, events, units, sum, sum_squares,
                                        exposed_units, exposed_sum, exposed_sum_squares, converted_units,
                                        recorded_events)
  SELECT experiment_id, variant_id, metric_name, sum(events), sum(units), sum(total), sum(total_squares),
         sum(units), sum(total), sum(total_squares), sum(converted), sum(recorded)
    FROM (
      SELECT experiment_id, variant_id, metric_name, sum(events) AS events, count(*) AS units,
             sum(total) AS total, sum(total * total) AS total_squares, count(*) FILTER (WHERE total > 0) AS converted,
             0 AS recorded
        FROM experiment_user_metrics
       WHERE experiment_id = ANY (ids)
       GROUP BY experiment_id, variant_id, metric_name
      UNION ALL
      SELECT experiment_id, variant_id, {{EXPOSURE_METRIC}}, 0, 0, 0, 0, 0, count(*)
        FROM experiment_exposures
       WHERE experiment_id = ANY (ids)
       GROUP BY experiment_id, variant_id
      UNION ALL
      SELECT experiment_id, variant_id,
             CASE WHEN grouping(metric_name) = 1 THEN {{ANY_CONVERSION_METRIC}} ELSE metric_name END,
             0, 0, 0, 0, 0, count(*)
        FROM experiment_conversions
       WHERE experiment_id = ANY (ids)
       GROUP BY GROUPING SETS ((experiment_id, variant_id, metric_name), (experiment_id, variant_id))
    ) s
   GROUP BY experiment_id, variant_id, metric_name;

  INSERT INTO experiment_ratio_stats (experiment_id, variant_id, numerator, denominator, sum_products)
  SELECT n.experiment_id, n.variant_id, p.numerator, p.denominator, sum(n.total * d.total)
    FROM experiment_ratio_pairs p
    JOIN experiment_user_metrics n ON n.experiment_id = p.experiment_id AND n.metric_name = p.numerator
    JOIN experiment_user_metrics d
      ON d.experiment_id = n.experiment_id AND d.user_id = n.user_id AND d.metric_name = p.denominator
   WHERE p.experiment_id = ANY (ids)
   GROUP BY n.experiment_id, n.variant_id, p.numerator, p.denominator;

  INSERT INTO experiment_covariate_stats (experiment_id, variant_id, covariate, units, sum, sum_squares,
                                          sum_products, converted_sum)
  SELECT experiment_id, variant_id, covariate, sum(units), sum(c), sum(c_squared), sum(product), sum(converted)
    FROM (
      SELECT x.experiment_id, x.variant_id, k.key AS covariate, 1 AS units, k.value::float8 AS c,
             k.value::float8 * k.value::float8 AS c_squared, 0::float8 AS product, 0::float8 AS converted
        FROM experiment_user_metrics x
       CROSS JOIN LATERAL jsonb_each_text(x.covariates) k
       WHERE x.experiment_id = ANY (ids) AND x.metric_name = {{EXPOSURE_METRIC}} AND x.covariates IS NOT NULL
      UNION ALL
      SELECT m.experiment_id, m.variant_id, k.key, 0, 0, 0, m.total * k.value::float8,
             CASE WHEN m.total > 0 THEN k.value::float8 ELSE 0 END
        FROM experiment_user_metrics x
       CROSS JOIN LATERAL jsonb_each_text(x.covariates) k
        JOIN experiment_user_metrics m
          ON m.experiment_id = x.experiment_id AND m.user_id = x.user_id
         AND m.metric_name = covariate_event_name(k.key)
       WHERE x.experiment_id = ANY (ids) AND x.metric_name = {{EXPOSURE_METRIC}} AND x.covariates IS NOT NULL
    ) s
   GROUP BY experiment_id, variant_id, covariate;

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
