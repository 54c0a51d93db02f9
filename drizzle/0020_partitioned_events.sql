-- Raw events partitioned by month of recorded_at (README, "Event retention"; docs/design.md, "Partitioned
-- events"). Hand-written: drizzle-kit's model has no partitioning. Its snapshot (meta/0020) holds what it can
-- see: the id table, the retention record, the event tables' primary keys (id, recorded_at) and no unique
-- event_id.
--
-- No row is copied: each existing table becomes the partition "<table>_legacy" of a new partitioned table,
-- holding everything recorded before the first month that gets its own partition (the month after the last
-- recorded event, or the current month when there is none). Attaching scans it once to check that bound and
-- builds its (id, recorded_at) index; its other indexes are adopted as they are. Monthly partitions from
-- there on are created by ensure_event_partitions (drizzle/repeatable/event_partitions.sql), which every
-- migration run and the service's partition job call.
CREATE TABLE "experiment_event_ids" (
	"event_id" uuid PRIMARY KEY NOT NULL
);
--> statement-breakpoint
CREATE TABLE "experiment_events_dropped" (
	"experiment_id" uuid PRIMARY KEY NOT NULL,
	"dropped_before" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "experiment_events_dropped" ADD CONSTRAINT "experiment_events_dropped_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;
--> statement-breakpoint
-- Every id recorded so far. The fold never left one id under both kinds, so the union has no repeats.
INSERT INTO "experiment_event_ids" ("event_id")
SELECT "event_id" FROM "experiment_exposures" WHERE "event_id" IS NOT NULL
UNION
SELECT "event_id" FROM "experiment_conversions" WHERE "event_id" IS NOT NULL;
--> statement-breakpoint
-- Bound to the tables by identity, not by name: recreated on the partitioned tables by their repeatable files
-- (forced below), as are the variant triggers (a partition may not keep a trigger with transition tables).
DROP VIEW IF EXISTS "experiment_metrics";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "experiment_exposures_variant_fk_insert" ON "experiment_exposures";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "experiment_exposures_variant_fk_update" ON "experiment_exposures";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "experiment_conversions_variant_fk_insert" ON "experiment_conversions";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "experiment_conversions_variant_fk_update" ON "experiment_conversions";
--> statement-breakpoint
DO $$
DECLARE
  tbl text;
  bound timestamptz;
  idx record;
BEGIN
  FOREACH tbl IN ARRAY ARRAY['experiment_exposures', 'experiment_conversions'] LOOP
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', tbl, tbl || '_event_id_unique');
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', tbl, tbl || '_pkey');
    EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl, tbl || '_legacy');
    -- Free the index names for the partitioned table's indexes, which adopt these below.
    FOR idx IN SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = tbl || '_legacy' LOOP
      EXECUTE format('ALTER INDEX %I RENAME TO %I', idx.indexname, 'legacy_' || idx.indexname);
    END LOOP;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS) PARTITION BY RANGE ("recorded_at")',
                   tbl, tbl || '_legacy');
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY ("id", "recorded_at")', tbl, tbl || '_id_recorded_at_pk');
    EXECUTE format('SELECT greatest(date_trunc(''month'', now(), ''UTC''),
                                    date_trunc(''month'', max("recorded_at"), ''UTC'') + interval ''1 month'')
                      FROM %I', tbl || '_legacy') INTO bound;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
                   tbl, tbl || '_legacy', bound);
  END LOOP;
END;
$$;
--> statement-breakpoint
-- The same definitions as before (src/db/schema.ts): each adopts the legacy partition's equal index.
CREATE INDEX "experiment_exposures_experiment_variant_idx" ON "experiment_exposures" USING btree ("experiment_id","variant_id");
--> statement-breakpoint
CREATE INDEX "experiment_conversions_experiment_variant_idx" ON "experiment_conversions" USING btree ("experiment_id","variant_id");
--> statement-breakpoint
CREATE INDEX "experiment_conversions_experiment_metric_idx" ON "experiment_conversions" USING btree ("experiment_id","metric_name");
--> statement-breakpoint
CREATE INDEX "experiment_conversions_experiment_user_idx" ON "experiment_conversions" USING btree ("experiment_id","user_id");
--> statement-breakpoint
-- Repeatable files whose objects the steps above dropped: applied again after this migration.
DO $$
BEGIN
  IF to_regclass('drizzle.__repeatable_sql') IS NOT NULL THEN
    DELETE FROM drizzle.__repeatable_sql WHERE name IN ('event_variant_triggers.sql', 'experiment_metrics.sql');
  END IF;
END;
$$;
