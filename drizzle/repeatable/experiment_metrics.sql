-- Exposures and conversions in one relation, for SQL users and BI tools. Exposures appear as the
-- metric {{EXPOSURE_METRIC}} with value 1.
CREATE OR REPLACE VIEW experiment_metrics AS
  SELECT experiment_id, variant_id, user_id, {{EXPOSURE_METRIC}}::text AS metric_name,
         1::double precision AS metric_value, recorded_at, metadata
    FROM experiment_exposures
  UNION ALL
  SELECT experiment_id, variant_id, user_id, metric_name, value AS metric_value, recorded_at, metadata
    FROM experiment_conversions;
