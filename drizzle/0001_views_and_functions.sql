-- Hand-written: the ad-hoc analysis view and the per-variant summary function.
-- Exposures and conversions in one relation, for SQL users and BI tools. Exposures appear as the
-- metric `exposure` with value 1.
CREATE OR REPLACE VIEW experiment_metrics AS
  SELECT experiment_id, variant_id, user_id, 'exposure'::text AS metric_name,
         1::double precision AS metric_value, recorded_at, metadata
    FROM experiment_exposures
  UNION ALL
  SELECT experiment_id, variant_id, user_id, metric_name, value AS metric_value, recorded_at, metadata
    FROM experiment_conversions;
--> statement-breakpoint
-- One row per variant (in bucketing order), also for variants with no events yet.
-- conversion_rate = exposed users with at least one conversion / exposed users: a proportion of units
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
  WITH exposed AS (
    SELECT e.variant_id AS vid, count(*) AS exposures, count(DISTINCT e.user_id) AS unique_users
      FROM experiment_exposures e
     WHERE e.experiment_id = exp_id
     GROUP BY e.variant_id
  ), converted AS (
    SELECT c.variant_id AS vid, count(*) AS conversions, avg(c.value) AS avg_value,
           count(DISTINCT c.user_id) FILTER (WHERE EXISTS (
             SELECT 1 FROM experiment_exposures e
              WHERE e.experiment_id = exp_id AND e.variant_id = c.variant_id AND e.user_id = c.user_id
           )) AS converted_users
      FROM experiment_conversions c
     WHERE c.experiment_id = exp_id
     GROUP BY c.variant_id
  )
  SELECT v.id, v.name,
         coalesce(x.exposures, 0)::bigint,
         coalesce(x.unique_users, 0)::bigint,
         coalesce(c.conversions, 0)::bigint,
         CASE WHEN coalesce(x.unique_users, 0) = 0 THEN 0::double precision
              ELSE coalesce(c.converted_users, 0)::double precision / x.unique_users END,
         c.avg_value::double precision
    FROM experiment_variants v
    LEFT JOIN exposed x ON x.vid = v.id
    LEFT JOIN converted c ON c.vid = v.id
   WHERE v.experiment_id = exp_id
   ORDER BY v.position, v.id;
$$;
