-- Hand-written: recompute the maintained aggregates from raw events, backfill them, and make the
-- summary function read them (its cost no longer grows with the number of events).
--
-- rebuild_experiment_stats(NULL) rebuilds everything; with ids, only those experiments. It is the one
-- definition of what the aggregates mean: ingestion maintains them incrementally and a test proves
-- both agree. Per unit: `exposure` counts exposures, each metric sums its conversion values, and `$any`
-- sums all conversions. Per variant: units, sum and sum of squares of those per-unit totals, over all
-- units (units/sum/sum_squares) and over exposed units only (exposed_*).
CREATE OR REPLACE FUNCTION rebuild_experiment_stats(exp_ids uuid[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM experiment_variant_stats WHERE exp_ids IS NULL OR experiment_id = ANY (exp_ids);
  DELETE FROM experiment_user_metrics WHERE exp_ids IS NULL OR experiment_id = ANY (exp_ids);

  INSERT INTO experiment_user_metrics (experiment_id, user_id, metric_name, variant_id, events, total)
  SELECT e.experiment_id, e.user_id, e.metric_name,
         (array_agg(e.variant_id ORDER BY e.occurred_at, e.variant_id))[1], count(*), sum(e.value)
    FROM (
      SELECT experiment_id, user_id, 'exposure'::text AS metric_name, variant_id, occurred_at, 1::float8 AS value
        FROM experiment_exposures WHERE exp_ids IS NULL OR experiment_id = ANY (exp_ids)
      UNION ALL
      SELECT experiment_id, user_id, metric_name, variant_id, occurred_at, value
        FROM experiment_conversions WHERE exp_ids IS NULL OR experiment_id = ANY (exp_ids)
      UNION ALL
      SELECT experiment_id, user_id, '$any', variant_id, occurred_at, value
        FROM experiment_conversions WHERE exp_ids IS NULL OR experiment_id = ANY (exp_ids)
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
      ON ex.experiment_id = um.experiment_id AND ex.user_id = um.user_id AND ex.metric_name = 'exposure'
   WHERE exp_ids IS NULL OR um.experiment_id = ANY (exp_ids)
   GROUP BY um.experiment_id, um.variant_id, um.metric_name;
END;
$$;
--> statement-breakpoint
SELECT rebuild_experiment_stats(NULL);
--> statement-breakpoint
-- Same columns and meaning as before (see 0001), now read from the maintained aggregates.
CREATE OR REPLACE FUNCTION get_experiment_summary(exp_id uuid)
RETURNS TABLE (
  variant_id uuid,
  variant_name text,
  exposures bigint,
  unique_users bigint,
  conversions bigint,
  conversion_rate double precision,
  avg_metric_value double precision
)
LANGUAGE sql STABLE AS $$
  SELECT v.id, v.name,
         coalesce(x.events, 0)::bigint,
         coalesce(x.units, 0)::bigint,
         coalesce(a.events, 0)::bigint,
         CASE WHEN coalesce(x.units, 0) = 0 THEN 0::double precision
              ELSE coalesce(a.exposed_units, 0)::double precision / x.units END,
         CASE WHEN coalesce(a.events, 0) = 0 THEN NULL ELSE a.sum / a.events END
    FROM experiment_variants v
    LEFT JOIN experiment_variant_stats x
      ON x.experiment_id = v.experiment_id AND x.variant_id = v.id AND x.metric_name = 'exposure'
    LEFT JOIN experiment_variant_stats a
      ON a.experiment_id = v.experiment_id AND a.variant_id = v.id AND a.metric_name = '$any'
   WHERE v.experiment_id = exp_id
   ORDER BY v.position, v.id;
$$;
