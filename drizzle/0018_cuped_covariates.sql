CREATE TABLE "experiment_covariate_stats" (
	"experiment_id" uuid NOT NULL,
	"variant_id" uuid NOT NULL,
	"covariate" text NOT NULL,
	"units" bigint DEFAULT 0 NOT NULL,
	"sum" double precision DEFAULT 0 NOT NULL,
	"sum_squares" double precision DEFAULT 0 NOT NULL,
	"sum_products" double precision DEFAULT 0 NOT NULL,
	"converted_sum" double precision DEFAULT 0 NOT NULL,
	CONSTRAINT "experiment_covariate_stats_experiment_id_variant_id_covariate_pk" PRIMARY KEY("experiment_id","variant_id","covariate")
);
--> statement-breakpoint
ALTER TABLE "experiment_exposures" ADD COLUMN "covariates" jsonb;--> statement-breakpoint
ALTER TABLE "experiment_user_metrics" ADD COLUMN "first_event_id" uuid;--> statement-breakpoint
ALTER TABLE "experiment_user_metrics" ADD COLUMN "covariates" jsonb;--> statement-breakpoint
ALTER TABLE "experiment_covariate_stats" ADD CONSTRAINT "experiment_covariate_stats_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_covariate_stats" ADD CONSTRAINT "experiment_covariate_stats_variant_id_experiment_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."experiment_variants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- The first exposure's event id of every exposed unit (earliest event time, then lowest id), which the fold
-- compares with a later batch's first exposure to pick the unit's covariates. Exposures recorded before this
-- migration carry no covariates.
UPDATE "experiment_user_metrics" um
   SET "first_event_id" = f.event_id
  FROM (SELECT DISTINCT ON (experiment_id, user_id) experiment_id, user_id, event_id
          FROM "experiment_exposures"
         ORDER BY experiment_id, user_id, least(occurred_at, recorded_at), event_id) f
 WHERE um.experiment_id = f.experiment_id AND um.user_id = f.user_id AND um.metric_name = 'exposure';
