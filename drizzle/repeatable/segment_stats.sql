-- Results over time and segment breakdowns: per-variant sufficient statistics of the per-unit totals
-- (experiment_user_metrics), split by a property of the unit fixed by its first exposure
-- (experiment_unit_segments): the hour (UTC) of its first exposure (experiment_period_stats) and the level of
-- each dimension its first exposure carried (experiment_segment_stats). A unit contributes its total of a
-- metric, its square, and whether it is > 0, in the variant of its row, exactly as to experiment_variant_stats.
--
-- Maintenance, without touching the fold (src/aggregates/fold.ts): statement-level triggers on
-- experiment_user_metrics add (new total − old total) of every changed row at the unit's key as
-- experiment_unit_segments holds it when the statement ends; a unit without a key row counts nowhere yet.
-- After the fold, src/aggregates/segments.ts gives new units their key and moves a unit whose first exposure
-- changed (an earlier exposure arrived) with move_unit_segments: all its current rows leave the old key and
-- join the new one. rebuild_segment_stats recomputes everything from raw exposures and the per-unit totals
-- (rebuilt from raw events first by rebuild_experiment_stats); tests hold the two together.

-- Hour buckets in UTC whatever the session's TimeZone (date_trunc would follow it).
CREATE OR REPLACE FUNCTION segment_period(at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
  SELECT date_bin('1 hour', at, timestamptz '2000-01-01 00:00:00+00')
$$;
--> statement-breakpoint
-- Adds sign × (the row's contribution) at each row's unit key. Rows of units without a key are skipped.
-- PL/pgSQL rather than SQL: its statement's plan is kept for the session, where an SQL function's would be
-- planned again at every call (several per batch).
CREATE OR REPLACE FUNCTION fold_segment_deltas(exp_ids uuid[], user_ids text[], metric_names text[],
                                               variant_ids uuid[], totals float8[], signs int[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF exp_ids IS NULL THEN
    RETURN;
  END IF;
  -- A row's old and new values net out first, and each unit's key is probed once (not once per row).
  WITH x AS (
    SELECT experiment_id, user_id, metric_name, variant_id, sum(sign) AS units, sum(sign * total) AS sum,
           sum(sign * total * total) AS sum_squares, sum(CASE WHEN total > 0 THEN sign ELSE 0 END) AS converted
      FROM unnest(exp_ids, user_ids, metric_names, variant_ids, totals, signs)
             AS r(experiment_id, user_id, metric_name, variant_id, total, sign)
     GROUP BY 1, 2, 3, 4
  ), keys AS (
    SELECT k.experiment_id, k.user_id, k.first_at, k.dimensions
      FROM (SELECT DISTINCT experiment_id, user_id FROM x) u
      JOIN experiment_unit_segments k ON k.experiment_id = u.experiment_id AND k.user_id = u.user_id
  ), d AS (
    SELECT x.*, keys.first_at, keys.dimensions
      FROM x JOIN keys ON keys.experiment_id = x.experiment_id AND keys.user_id = x.user_id
  ), periods AS (
    INSERT INTO experiment_period_stats AS p
           (experiment_id, metric_name, variant_id, period_start, units, sum, sum_squares, converted_units)
    SELECT experiment_id, metric_name, variant_id, segment_period(first_at), sum(units), sum(sum),
           sum(sum_squares), sum(converted)
      FROM d
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (experiment_id, metric_name, variant_id, period_start) DO UPDATE SET
      units = p.units + excluded.units, sum = p.sum + excluded.sum,
      sum_squares = p.sum_squares + excluded.sum_squares,
      converted_units = p.converted_units + excluded.converted_units
  )
  INSERT INTO experiment_segment_stats AS s
         (experiment_id, dimension, metric_name, variant_id, level, units, sum, sum_squares, converted_units)
  SELECT d.experiment_id, l.key, d.metric_name, d.variant_id, l.value, sum(d.units), sum(d.sum),
         sum(d.sum_squares), sum(d.converted)
    FROM d
   CROSS JOIN LATERAL jsonb_each_text(d.dimensions) l
   WHERE d.dimensions IS NOT NULL
   GROUP BY 1, 2, 3, 4, 5
   ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (experiment_id, dimension, metric_name, variant_id, level) DO UPDATE SET
    units = s.units + excluded.units, sum = s.sum + excluded.sum,
    sum_squares = s.sum_squares + excluded.sum_squares,
    converted_units = s.converted_units + excluded.converted_units;
END;
$$;
--> statement-breakpoint
-- One function for the three triggers (transition tables cannot serve a trigger on several events): each
-- branch names only the transition tables its event has.
CREATE OR REPLACE FUNCTION fold_user_metric_segments()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting({{SEGMENTS_REBUILDING_SETTING}}, true) = 'on' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    PERFORM fold_segment_deltas(array_agg(experiment_id), array_agg(user_id), array_agg(metric_name),
                                array_agg(variant_id), array_agg(total), array_agg(1))
       FROM new_rows;
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM fold_segment_deltas(array_agg(experiment_id), array_agg(user_id), array_agg(metric_name),
                                array_agg(variant_id), array_agg(total), array_agg(sign))
       FROM (SELECT experiment_id, user_id, metric_name, variant_id, total, -1 AS sign FROM old_rows
             UNION ALL
             SELECT experiment_id, user_id, metric_name, variant_id, total, 1 FROM new_rows) r;
  ELSE
    -- Rows deleted with their variant (or experiment) leave nothing to update: their statistics rows went
    -- with the variant.
    PERFORM fold_segment_deltas(array_agg(o.experiment_id), array_agg(o.user_id), array_agg(o.metric_name),
                                array_agg(o.variant_id), array_agg(o.total), array_agg(-1))
       FROM old_rows o
      WHERE EXISTS (SELECT 1 FROM experiment_variants v WHERE v.id = o.variant_id);
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER experiment_user_metrics_segments_insert AFTER INSERT ON experiment_user_metrics
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fold_user_metric_segments();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER experiment_user_metrics_segments_update AFTER UPDATE ON experiment_user_metrics
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION fold_user_metric_segments();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER experiment_user_metrics_segments_delete AFTER DELETE ON experiment_user_metrics
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fold_user_metric_segments();
--> statement-breakpoint
-- Gives units their key from a batch's exposures (earliest event time, then event id, per unit), when the
-- unit has none or the batch's exposure comes first: the unit's current rows leave the old key and join the
-- new one. Runs after the fold, under the same ingestion lock.
CREATE OR REPLACE FUNCTION move_unit_segments(exp_ids uuid[], user_ids text[], ats timestamptz[],
                                              event_ids uuid[], dims jsonb[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  m_exp uuid[];
  m_user text[];
  m_at timestamptz[];
  m_event uuid[];
  m_dims jsonb[];
  r_exp uuid[];
  r_user text[];
  r_metric text[];
  r_variant uuid[];
  r_total float8[];
  any_keyed boolean;
BEGIN
  SELECT array_agg(c.experiment_id), array_agg(c.user_id), array_agg(c.at), array_agg(c.event_id),
         array_agg(c.dimensions), bool_or(k.user_id IS NOT NULL)
    INTO m_exp, m_user, m_at, m_event, m_dims, any_keyed
    FROM (SELECT DISTINCT ON (experiment_id, user_id) *
            FROM unnest(exp_ids, user_ids, ats, event_ids, dims)
                   AS x(experiment_id, user_id, at, event_id, dimensions)
           ORDER BY experiment_id, user_id, at, event_id) c
    LEFT JOIN experiment_unit_segments k ON k.experiment_id = c.experiment_id AND k.user_id = c.user_id
   WHERE k.user_id IS NULL OR (c.at, c.event_id) < (k.first_at, k.first_event_id);
  IF m_exp IS NULL THEN
    RETURN;
  END IF;
  SELECT array_agg(um.experiment_id), array_agg(um.user_id), array_agg(um.metric_name),
         array_agg(um.variant_id), array_agg(um.total)
    INTO r_exp, r_user, r_metric, r_variant, r_total
    FROM unnest(m_exp, m_user) AS u(experiment_id, user_id)
   CROSS JOIN LATERAL (SELECT * FROM experiment_user_metrics x
                        WHERE x.experiment_id = u.experiment_id AND x.user_id = u.user_id OFFSET 0) um;
  -- Out of the old key (units without one, new units, are skipped)…
  IF any_keyed THEN
    PERFORM fold_segment_deltas(r_exp, r_user, r_metric, r_variant, r_total,
                                array_fill(-1, ARRAY[coalesce(cardinality(r_exp), 0)]));
  END IF;
  INSERT INTO experiment_unit_segments AS k (experiment_id, user_id, first_at, first_event_id, dimensions)
  SELECT * FROM unnest(m_exp, m_user, m_at, m_event, m_dims)
   ORDER BY 1, 2
  ON CONFLICT (experiment_id, user_id) DO UPDATE SET
    first_at = excluded.first_at, first_event_id = excluded.first_event_id, dimensions = excluded.dimensions;
  -- …and into the new one.
  PERFORM fold_segment_deltas(r_exp, r_user, r_metric, r_variant, r_total,
                              array_fill(1, ARRAY[coalesce(cardinality(r_exp), 0)]));
END;
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
-- Every aggregate from raw events: the fold's (rebuild_experiment_stats), then those above. The segment
-- triggers stand aside while the per-unit totals are rebuilt (rebuild_segment_stats recomputes them).
CREATE OR REPLACE FUNCTION rebuild_all_stats(exp_ids uuid[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config({{SEGMENTS_REBUILDING_SETTING}}, 'on', true);
  PERFORM rebuild_experiment_stats(exp_ids);
  PERFORM set_config({{SEGMENTS_REBUILDING_SETTING}}, 'off', true);
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
