-- What foreign keys on the event tables would promise, at a cost per statement, not per row (the keys
-- were dropped in migration 0007: a row-level check per event was the largest cost of ingestion).
--
-- 1. An event must name a variant that exists and belongs to its experiment (stricter than the two keys
--    were). One set-based check per INSERT or UPDATE statement over its transition table, SQLSTATE 23503
--    like a key. It takes FOR KEY SHARE on the variants, as a key check would, so a variant (or its
--    experiment) cannot be deleted before the writing transaction ends; that is one lock per variant and
--    batch instead of one per row, and no multixact per row when batches run concurrently.
-- 2. Deleting a variant deletes its events, their ids (experiment_event_ids) and per-unit totals (ON DELETE
--    CASCADE did). Deleting an experiment cascades to its variants, so to their events too.
--    experiment_variant_stats keeps its keys: its rows are few and rarely inserted.
-- The event tables are partitioned (migration 0020): statement triggers on the partitioned table see the rows
-- of every partition in their transition tables.
CREATE OR REPLACE FUNCTION check_event_variants()
RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  missing record;
BEGIN
  PERFORM 1 FROM experiment_variants v
    WHERE v.id IN (SELECT DISTINCT n.variant_id FROM new_events n)
    ORDER BY v.id
    FOR KEY SHARE;
  SELECT n.experiment_id, n.variant_id INTO missing
    FROM (SELECT DISTINCT experiment_id, variant_id FROM new_events) n
   WHERE NOT EXISTS (SELECT 1 FROM experiment_variants v
                      WHERE v.id = n.variant_id AND v.experiment_id = n.experiment_id)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "%" violates constraint "%_variant_fk"', TG_TABLE_NAME, TG_TABLE_NAME
      USING ERRCODE = 'foreign_key_violation',
            DETAIL = format('Variant %s of experiment %s is not present in table "experiment_variants".',
                            missing.variant_id, missing.experiment_id),
            TABLE = TG_TABLE_NAME,
            CONSTRAINT = TG_TABLE_NAME || '_variant_fk';
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER experiment_exposures_variant_fk_insert AFTER INSERT ON experiment_exposures
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION check_event_variants();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER experiment_exposures_variant_fk_update AFTER UPDATE ON experiment_exposures
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION check_event_variants();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER experiment_conversions_variant_fk_insert AFTER INSERT ON experiment_conversions
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION check_event_variants();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER experiment_conversions_variant_fk_update AFTER UPDATE ON experiment_conversions
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION check_event_variants();
--> statement-breakpoint
CREATE OR REPLACE FUNCTION delete_variant_events()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- By (experiment_id, variant_id): the leading columns of an index on each table.
  WITH gone AS (
    DELETE FROM experiment_exposures WHERE experiment_id = OLD.experiment_id AND variant_id = OLD.id
    RETURNING event_id
  )
  DELETE FROM experiment_event_ids WHERE event_id IN (SELECT event_id FROM gone);
  WITH gone AS (
    DELETE FROM experiment_conversions WHERE experiment_id = OLD.experiment_id AND variant_id = OLD.id
    RETURNING event_id
  )
  DELETE FROM experiment_event_ids WHERE event_id IN (SELECT event_id FROM gone);
  -- A unit whose exposure row goes loses its key too (experiment_unit_segments, which has no foreign key):
  -- an exposure in another variant later gives it a new one. Its period and segment statistics rows go with
  -- the variant (foreign keys).
  WITH gone AS (
    DELETE FROM experiment_user_metrics WHERE experiment_id = OLD.experiment_id AND variant_id = OLD.id
    RETURNING user_id, metric_name
  )
  DELETE FROM experiment_unit_segments
   WHERE experiment_id = OLD.experiment_id
     AND user_id IN (SELECT user_id FROM gone WHERE metric_name = {{EXPOSURE_METRIC}});
  RETURN OLD;
END;
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER experiment_variants_delete_events AFTER DELETE ON experiment_variants
  FOR EACH ROW EXECUTE FUNCTION delete_variant_events();
