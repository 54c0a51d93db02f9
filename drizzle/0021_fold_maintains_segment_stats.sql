-- The period and segment statistics are maintained by the fold (src/aggregates/fold.ts) in its one statement,
-- no longer by statement-level triggers on experiment_user_metrics plus a statement after the fold (they cost
-- a key probe per changed row and a second pass over the batch's units). Drops what
-- drizzle/repeatable/segment_stats.sql no longer defines.
DROP TRIGGER IF EXISTS experiment_user_metrics_segments_insert ON experiment_user_metrics;
--> statement-breakpoint
DROP TRIGGER IF EXISTS experiment_user_metrics_segments_update ON experiment_user_metrics;
--> statement-breakpoint
DROP TRIGGER IF EXISTS experiment_user_metrics_segments_delete ON experiment_user_metrics;
--> statement-breakpoint
DROP FUNCTION IF EXISTS fold_user_metric_segments();
--> statement-breakpoint
DROP FUNCTION IF EXISTS move_unit_segments(uuid[], text[], timestamptz[], uuid[], jsonb[]);
--> statement-breakpoint
DROP FUNCTION IF EXISTS fold_segment_deltas(uuid[], text[], text[], uuid[], float8[], int[]);
