-- What an experiment's metric definitions (metrics, experiment_metric_roles) mean for the aggregates, defined
-- once for the fold (src/aggregates/fold.ts) and the rebuild (rebuild_experiment_stats).
--
-- experiment_metric_windows: the conversion window of each event name in an experiment. The experiment's own
-- setting (experiment_metric_settings, null meaning "until the end") wins; else the default of the metrics the
-- experiment lists that count the event (as numerator or denominator), the shortest when they differ; else none.
CREATE OR REPLACE VIEW experiment_metric_windows AS
  SELECT experiment_id, metric_name, conversion_window_hours
    FROM experiment_metric_settings
  UNION ALL
  SELECT r.experiment_id, ev.metric_name, min(m.conversion_window_hours)
    FROM experiment_metric_roles r
    JOIN metrics m ON m.id = r.metric_id
   CROSS JOIN LATERAL (VALUES (m.event_name), (m.denominator_event_name)) ev(metric_name)
   WHERE ev.metric_name IS NOT NULL AND m.conversion_window_hours IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM experiment_metric_settings s
                      WHERE s.experiment_id = r.experiment_id AND s.metric_name = ev.metric_name)
   GROUP BY r.experiment_id, ev.metric_name;
--> statement-breakpoint
-- experiment_ratio_pairs: the (numerator, denominator) event pairs of the RATIO metrics an experiment lists,
-- whose per-unit cross products experiment_ratio_stats maintains.
CREATE OR REPLACE VIEW experiment_ratio_pairs AS
  SELECT DISTINCT r.experiment_id, m.event_name AS numerator, m.denominator_event_name AS denominator
    FROM experiment_metric_roles r
    JOIN metrics m ON m.id = r.metric_id
   WHERE m.kind = 'RATIO';
--> statement-breakpoint
-- covariate_event_name: the event whose per-unit total a CUPED covariate adjusts. Covariates are keyed by metric
-- key: the event of the metric with that key, else the key itself (an undefined metric's name is its event).
-- experiment_covariate_stats' products follow it; changing what a key means rebuilds the experiments using it.
CREATE OR REPLACE FUNCTION covariate_event_name(covariate text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT m.event_name FROM metrics m WHERE m.key = covariate), covariate)
$$;
