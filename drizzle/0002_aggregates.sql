CREATE TABLE "experiment_user_metrics" (
	"experiment_id" uuid NOT NULL,
	"user_id" text NOT NULL,
	"metric_name" text NOT NULL,
	"variant_id" uuid NOT NULL,
	"events" bigint DEFAULT 0 NOT NULL,
	"total" double precision DEFAULT 0 NOT NULL,
	CONSTRAINT "experiment_user_metrics_experiment_id_user_id_metric_name_pk" PRIMARY KEY("experiment_id","user_id","metric_name")
);
--> statement-breakpoint
CREATE TABLE "experiment_variant_stats" (
	"experiment_id" uuid NOT NULL,
	"variant_id" uuid NOT NULL,
	"metric_name" text NOT NULL,
	"events" bigint DEFAULT 0 NOT NULL,
	"units" bigint DEFAULT 0 NOT NULL,
	"sum" double precision DEFAULT 0 NOT NULL,
	"sum_squares" double precision DEFAULT 0 NOT NULL,
	"exposed_units" bigint DEFAULT 0 NOT NULL,
	"exposed_sum" double precision DEFAULT 0 NOT NULL,
	"exposed_sum_squares" double precision DEFAULT 0 NOT NULL,
	CONSTRAINT "experiment_variant_stats_experiment_id_variant_id_metric_name_pk" PRIMARY KEY("experiment_id","variant_id","metric_name")
);
--> statement-breakpoint
ALTER TABLE "experiment_user_metrics" ADD CONSTRAINT "experiment_user_metrics_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_user_metrics" ADD CONSTRAINT "experiment_user_metrics_variant_id_experiment_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."experiment_variants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_variant_stats" ADD CONSTRAINT "experiment_variant_stats_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_variant_stats" ADD CONSTRAINT "experiment_variant_stats_variant_id_experiment_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."experiment_variants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "experiment_variant_stats_experiment_metric_idx" ON "experiment_variant_stats" USING btree ("experiment_id","metric_name");