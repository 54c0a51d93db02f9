-- The monthly partitions of the raw event tables (experiment_exposures, experiment_conversions), by
-- recorded_at in UTC; created by migration 0020. The service keeps months ahead created
-- (src/events/partitions.ts: at every migration run and by the job runner's partition job) and, with
-- EVENT_RETENTION_DAYS, drops the oldest. pg_partman is not used: the embedded PGlite has no extensions
-- for it, and these two functions are all the service needs.

-- Every partition of the event tables with its bounds [from_at, to_at); from_at is NULL for the legacy
-- partition (MINVALUE: everything recorded before partitioning).
CREATE OR REPLACE FUNCTION event_partitions()
RETURNS TABLE (parent text, name text, from_at timestamptz, to_at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT p.relname::text, c.relname::text,
         substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']*)''\)')::timestamptz,
         substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']*)''\)')::timestamptz
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
   WHERE p.relname IN ('experiment_exposures', 'experiment_conversions')
     AND p.relnamespace = 'public'::regnamespace
   ORDER BY 1, 4
$$;
--> statement-breakpoint
-- Creates the monthly partition of each event table for every month from from_at's to to_at's that no
-- partition covers yet; returns how many it created. Idempotent, and safe beside a concurrent call (a
-- partition created meanwhile is skipped).
CREATE OR REPLACE FUNCTION ensure_event_partitions(from_at timestamptz, to_at timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  month timestamptz := date_trunc('month', from_at, 'UTC');
  next_month timestamptz;
  tbl text;
  created integer := 0;
BEGIN
  WHILE month <= to_at LOOP
    next_month := (month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
    FOREACH tbl IN ARRAY ARRAY['experiment_exposures', 'experiment_conversions'] LOOP
      CONTINUE WHEN EXISTS (SELECT 1 FROM event_partitions() p
                             WHERE p.parent = tbl AND coalesce(p.from_at < next_month, true) AND p.to_at > month);
      BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       tbl || '_p' || to_char(month AT TIME ZONE 'UTC', 'YYYY_MM'), tbl, month, next_month);
        created := created + 1;
      EXCEPTION WHEN duplicate_table OR invalid_object_definition OR unique_violation THEN
        -- Another session created it (or an overlapping one) first.
        NULL;
      END;
    END LOOP;
    month := next_month;
  END LOOP;
  RETURN created;
END;
$$;
