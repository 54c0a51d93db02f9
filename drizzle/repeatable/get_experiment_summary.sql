-- One row per variant (in bucketing order), also for variants with no events yet, read from the
-- maintained aggregates (its cost does not grow with the number of events).
-- conversion_rate = exposed units with at least one conversion / exposed units: a proportion of units
-- (0..1), comparable across variants. avg_metric_value is the mean conversion value (NULL when there
-- are no conversions).
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
      ON x.experiment_id = v.experiment_id AND x.variant_id = v.id AND x.metric_name = {{EXPOSURE_METRIC}}
    LEFT JOIN experiment_variant_stats a
      ON a.experiment_id = v.experiment_id AND a.variant_id = v.id AND a.metric_name = {{ANY_CONVERSION_METRIC}}
   WHERE v.experiment_id = exp_id
   ORDER BY v.position, v.id;
$$;
