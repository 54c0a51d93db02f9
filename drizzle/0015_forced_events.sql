CREATE TABLE "experiment_forced_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"experiment_id" uuid NOT NULL,
	"variant_id" uuid NOT NULL,
	"user_id" text NOT NULL,
	"kind" text NOT NULL,
	"event_id" uuid NOT NULL,
	"metric_name" text,
	"value" double precision,
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "experiment_forced_events_event_id_unique" UNIQUE("event_id"),
	CONSTRAINT "experiment_forced_events_metric" CHECK (("experiment_forced_events"."kind" = 'conversion') = ("experiment_forced_events"."metric_name" IS NOT NULL AND "experiment_forced_events"."value" IS NOT NULL))
);
--> statement-breakpoint
ALTER TABLE "experiment_forced_events" ADD CONSTRAINT "experiment_forced_events_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_forced_events" ADD CONSTRAINT "experiment_forced_events_variant_id_experiment_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."experiment_variants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "experiment_forced_events_experiment_user_idx" ON "experiment_forced_events" USING btree ("experiment_id","user_id");