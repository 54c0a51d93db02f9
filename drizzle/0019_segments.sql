CREATE TABLE "experiment_dimension_levels" (
	"experiment_id" uuid NOT NULL,
	"dimension" text NOT NULL,
	"level" text NOT NULL,
	CONSTRAINT "experiment_dimension_levels_experiment_id_dimension_level_pk" PRIMARY KEY("experiment_id","dimension","level")
);
--> statement-breakpoint
CREATE TABLE "experiment_period_stats" (
	"experiment_id" uuid NOT NULL,
	"metric_name" text NOT NULL,
	"variant_id" uuid NOT NULL,
	"period_start" timestamp with time zone NOT NULL,
	"units" bigint DEFAULT 0 NOT NULL,
	"sum" double precision DEFAULT 0 NOT NULL,
	"sum_squares" double precision DEFAULT 0 NOT NULL,
	"converted_units" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "experiment_period_stats_experiment_id_metric_name_variant_id_period_start_pk" PRIMARY KEY("experiment_id","metric_name","variant_id","period_start")
);
--> statement-breakpoint
CREATE TABLE "experiment_segment_stats" (
	"experiment_id" uuid NOT NULL,
	"dimension" text NOT NULL,
	"metric_name" text NOT NULL,
	"variant_id" uuid NOT NULL,
	"level" text NOT NULL,
	"units" bigint DEFAULT 0 NOT NULL,
	"sum" double precision DEFAULT 0 NOT NULL,
	"sum_squares" double precision DEFAULT 0 NOT NULL,
	"converted_units" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "experiment_segment_stats_experiment_id_dimension_metric_name_variant_id_level_pk" PRIMARY KEY("experiment_id","dimension","metric_name","variant_id","level")
);
--> statement-breakpoint
CREATE TABLE "experiment_unit_segments" (
	"experiment_id" uuid NOT NULL,
	"user_id" text NOT NULL,
	"first_at" timestamp with time zone NOT NULL,
	"first_event_id" uuid NOT NULL,
	"dimensions" jsonb,
	CONSTRAINT "experiment_unit_segments_experiment_id_user_id_pk" PRIMARY KEY("experiment_id","user_id")
);
--> statement-breakpoint
ALTER TABLE "experiment_exposures" ADD COLUMN "dimensions" jsonb;--> statement-breakpoint
ALTER TABLE "experiment_dimension_levels" ADD CONSTRAINT "experiment_dimension_levels_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_period_stats" ADD CONSTRAINT "experiment_period_stats_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_period_stats" ADD CONSTRAINT "experiment_period_stats_variant_id_experiment_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."experiment_variants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_segment_stats" ADD CONSTRAINT "experiment_segment_stats_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_segment_stats" ADD CONSTRAINT "experiment_segment_stats_variant_id_experiment_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."experiment_variants"("id") ON DELETE cascade ON UPDATE no action;