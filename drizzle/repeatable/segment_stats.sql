-- Results over time and segment breakdowns: per-variant sufficient statistics of the per-unit totals
-- (experiment_user_metrics), split by a property of the unit fixed by its first exposure
-- (experiment_unit_segments): the hour (UTC) of its first exposure (experiment_period_stats) and the level of
-- each dimension its first exposure carried (experiment_segment_stats). A unit contributes its total of a
-- metric, its square, and whether it is > 0, in the variant of its row, exactly as to experiment_variant_stats.
--
-- rebuild_segment_stats below is the definition: it recomputes the keys from raw exposures and both tables
-- from the per-unit totals (rebuilt from raw events first by rebuild_experiment_stats). The fold
-- (src/aggregates/fold.ts) maintains them incrementally in its one statement: each changed per-unit row's
-- old contribution leaves the unit's old key and its new one joins the unit's new key, and a unit whose first
-- exposure changes gets its new key row; tests hold the two together (tests/integration/segments.test.ts).
-- A variant's rows go with it (foreign keys); an experiment's keys go through the trigger at the end.

-- Hour buckets in UTC whatever the session's TimeZone (date_trunc would follow it).
CREATE OR REPLACE FUNCTION segment_period(at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
  SELECT date_bin('1 hour', at, timestamptz '2000-01-01 00:00:00+00')
$$;
--> statement-breakpoint
-- Recomputes the keys and both statistics tables of some experiments (all when NULL) from raw exposures and
-- experiment_user_metrics. Takes the ingestion locks.
CREATE OR REPLACE FUNCTION rebuild_segment_stats(exp_ids uuid[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  ids uuid[];
BEGIN
  SELECT coalesce(array_agg(id), '{}') INTO ids FROM experiments WHERE exp_ids IS NULL OR id = ANY (exp_ids);
  PERFORM lock_experiments_for_ingest(ids);
  DELETE FROM experiment_period_stats WHERE experiment_id = ANY (ids);
  DELETE FROM experiment_segment_stats WHERE experiment_id = ANY (ids);
  DELETE FROM experiment_unit_segments WHERE experiment_id = ANY (ids);

  INSERT INTO experiment_unit_segments (experiment_id, user_id, first_at, first_event_id, dimensions)
  SELECT DISTINCT ON (experiment_id, user_id) experiment_id, user_id, event_time(occurred_at, recorded_at),
         event_id, dimensions
    FROM experiment_exposures
   WHERE experiment_id = ANY (ids) AND event_id IS NOT NULL
   ORDER BY experiment_id, user_id, event_time(occurred_at, recorded_at), event_id;

  INSERT INTO experiment_period_stats
         (experiment_id, metric_name, variant_id, period_start, units, sum, sum_squares, converted_units)
  SELECT um.experiment_id, um.metric_name, um.variant_id, segment_period(k.first_at), count(*), sum(um.total),
         sum(um.total * um.total), count(*) FILTER (WHERE um.total > 0)
    FROM experiment_user_metrics um
    JOIN experiment_unit_segments k ON k.experiment_id = um.experiment_id AND k.user_id = um.user_id
   WHERE um.experiment_id = ANY (ids)
   GROUP BY 1, 2, 3, 4;

  INSERT INTO experiment_segment_stats
         (experiment_id, dimension, metric_name, variant_id, level, units, sum, sum_squares, converted_units)
  SELECT um.experiment_id, l.key, um.metric_name, um.variant_id, l.value, count(*), sum(um.total),
         sum(um.total * um.total), count(*) FILTER (WHERE um.total > 0)
    FROM experiment_user_metrics um
    JOIN experiment_unit_segments k ON k.experiment_id = um.experiment_id AND k.user_id = um.user_id
   CROSS JOIN LATERAL jsonb_each_text(k.dimensions) l
   WHERE um.experiment_id = ANY (ids) AND k.dimensions IS NOT NULL
   GROUP BY 1, 2, 3, 4, 5;
END;
$$;
--> statement-breakpoint
-- Every aggregate from raw events: the fold's (rebuild_experiment_stats), then those above, which read the
-- per-unit totals it rebuilt.
CREATE OR REPLACE FUNCTION rebuild_all_stats(exp_ids uuid[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM rebuild_experiment_stats(exp_ids);
  PERFORM rebuild_segment_stats(exp_ids);
END;
$$;
--> statement-breakpoint
-- experiment_unit_segments has no foreign key (see src/db/schema.ts): an experiment's rows go with it.
CREATE OR REPLACE FUNCTION delete_experiment_unit_segments()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM experiment_unit_segments WHERE experiment_id IN (SELECT id FROM deleted_experiments);
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER experiments_delete_unit_segments AFTER DELETE ON experiments
  REFERENCING OLD TABLE AS deleted_experiments FOR EACH STATEMENT
  EXECUTE FUNCTION delete_experiment_unit_segments();
