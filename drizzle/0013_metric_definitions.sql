CREATE TYPE "public"."metric_direction" AS ENUM('INCREASE', 'DECREASE');--> statement-breakpoint
CREATE TYPE "public"."metric_kind" AS ENUM('BINOMIAL', 'MEAN', 'RATIO');--> statement-breakpoint
CREATE TYPE "public"."metric_role" AS ENUM('PRIMARY', 'SECONDARY', 'GUARDRAIL');--> statement-breakpoint
CREATE TABLE "experiment_metric_roles" (
	"experiment_id" uuid NOT NULL,
	"metric_id" uuid NOT NULL,
	"role" "metric_role" NOT NULL,
	"tolerated_harm" double precision,
	"position" integer NOT NULL,
	CONSTRAINT "experiment_metric_roles_experiment_id_metric_id_pk" PRIMARY KEY("experiment_id","metric_id")
);
--> statement-breakpoint
CREATE TABLE "experiment_ratio_stats" (
	"experiment_id" uuid NOT NULL,
	"variant_id" uuid NOT NULL,
	"numerator" text NOT NULL,
	"denominator" text NOT NULL,
	"sum_products" double precision DEFAULT 0 NOT NULL,
	CONSTRAINT "experiment_ratio_stats_experiment_id_variant_id_numerator_denominator_pk" PRIMARY KEY("experiment_id","variant_id","numerator","denominator")
);
--> statement-breakpoint
CREATE TABLE "metrics" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"key" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"kind" "metric_kind" NOT NULL,
	"event_name" text NOT NULL,
	"denominator_event_name" text,
	"direction" "metric_direction" DEFAULT 'INCREASE' NOT NULL,
	"cap_value" double precision,
	"conversion_window_hours" double precision,
	"archived_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "metrics_key_unique" UNIQUE("key"),
	CONSTRAINT "metrics_key_slug" CHECK ("metrics"."key" ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
	CONSTRAINT "metrics_ratio_denominator" CHECK (("metrics"."kind" = 'RATIO') = ("metrics"."denominator_event_name" IS NOT NULL)),
	CONSTRAINT "metrics_cap_positive" CHECK ("metrics"."cap_value" IS NULL OR "metrics"."cap_value" > 0),
	CONSTRAINT "metrics_window_positive" CHECK ("metrics"."conversion_window_hours" IS NULL OR "metrics"."conversion_window_hours" > 0)
);
--> statement-breakpoint
ALTER TABLE "experiment_metric_roles" ADD CONSTRAINT "experiment_metric_roles_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_metric_roles" ADD CONSTRAINT "experiment_metric_roles_metric_id_metrics_id_fk" FOREIGN KEY ("metric_id") REFERENCES "public"."metrics"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_ratio_stats" ADD CONSTRAINT "experiment_ratio_stats_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_ratio_stats" ADD CONSTRAINT "experiment_ratio_stats_variant_id_experiment_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."experiment_variants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "experiment_metric_roles_metric_idx" ON "experiment_metric_roles" USING btree ("metric_id");--> statement-breakpoint
CREATE INDEX "metrics_created_at_id_idx" ON "metrics" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);