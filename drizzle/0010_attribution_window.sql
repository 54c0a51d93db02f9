CREATE TABLE "experiment_metric_settings" (
	"experiment_id" uuid NOT NULL,
	"metric_name" text NOT NULL,
	"conversion_window_hours" double precision,
	CONSTRAINT "experiment_metric_settings_experiment_id_metric_name_pk" PRIMARY KEY("experiment_id","metric_name"),
	CONSTRAINT "experiment_metric_settings_window_positive" CHECK ("experiment_metric_settings"."conversion_window_hours" IS NULL OR "experiment_metric_settings"."conversion_window_hours" > 0)
);
--> statement-breakpoint
ALTER TABLE "experiment_user_metrics" ADD COLUMN "first_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "experiment_variant_stats" ADD COLUMN "converted_units" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "experiment_variant_stats" ADD COLUMN "recorded_events" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "experiment_metric_settings" ADD CONSTRAINT "experiment_metric_settings_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "experiment_conversions_experiment_user_idx" ON "experiment_conversions" USING btree ("experiment_id","user_id");--> statement-breakpoint
-- Hand-written: the aggregates recomputed with attribution windows (what rebuild_experiment_stats computes from
-- now on, drizzle/repeatable/rebuild_experiment_stats.sql, written out here because the repeatable files are
-- applied after the migrations). No experiment has a conversion window yet: a conversion counts from its
-- unit's first exposure until the experiment completed.
DELETE FROM "experiment_variant_stats";
--> statement-breakpoint
DELETE FROM "experiment_user_metrics";
--> statement-breakpoint
INSERT INTO "experiment_user_metrics" (experiment_id, user_id, metric_name, variant_id, events, total, first_at)
SELECT experiment_id, user_id, 'exposure', (array_agg(variant_id ORDER BY occurred_at, variant_id))[1],
       count(*), count(*), min(least(occurred_at, recorded_at))
  FROM "experiment_exposures"
 GROUP BY experiment_id, user_id;
--> statement-breakpoint
INSERT INTO "experiment_user_metrics" (experiment_id, user_id, metric_name, variant_id, events, total)
SELECT c.experiment_id, c.user_id, CASE WHEN grouping(c.metric_name) = 1 THEN '$any' ELSE c.metric_name END,
       (array_agg(c.variant_id ORDER BY c.occurred_at, c.variant_id))[1], count(*), sum(c.value)
  FROM "experiment_conversions" c
  JOIN "experiment_user_metrics" x
    ON x.experiment_id = c.experiment_id AND x.user_id = c.user_id AND x.metric_name = 'exposure'
  JOIN "experiments" e ON e.id = c.experiment_id
 WHERE least(c.occurred_at, c.recorded_at) >= x.first_at
   AND (e.end_at IS NULL OR least(c.occurred_at, c.recorded_at) <= e.end_at)
 GROUP BY GROUPING SETS ((c.experiment_id, c.user_id, c.metric_name), (c.experiment_id, c.user_id));
--> statement-breakpoint
INSERT INTO "experiment_variant_stats" (experiment_id, variant_id, metric_name, events, units, sum, sum_squares,
                                        exposed_units, exposed_sum, exposed_sum_squares, converted_units,
                                        recorded_events)
SELECT experiment_id, variant_id, metric_name, sum(events), sum(units), sum(total), sum(total_squares),
       sum(units), sum(total), sum(total_squares), sum(converted), sum(recorded)
  FROM (
    SELECT experiment_id, variant_id, metric_name, sum(events) AS events, count(*) AS units,
           sum(total) AS total, sum(total * total) AS total_squares, count(*) FILTER (WHERE total > 0) AS converted,
           0 AS recorded
      FROM "experiment_user_metrics"
     GROUP BY experiment_id, variant_id, metric_name
    UNION ALL
    SELECT experiment_id, variant_id, 'exposure', 0, 0, 0, 0, 0, count(*)
      FROM "experiment_exposures"
     GROUP BY experiment_id, variant_id
    UNION ALL
    SELECT experiment_id, variant_id, CASE WHEN grouping(metric_name) = 1 THEN '$any' ELSE metric_name END,
           0, 0, 0, 0, 0, count(*)
      FROM "experiment_conversions"
     GROUP BY GROUPING SETS ((experiment_id, variant_id, metric_name), (experiment_id, variant_id))
  ) s
 GROUP BY experiment_id, variant_id, metric_name;
