CREATE TYPE "public"."guardrail_action" AS ENUM('PAUSE', 'ZERO_TREATMENT_WEIGHTS');--> statement-breakpoint
CREATE TABLE "experiment_monitors" (
	"experiment_id" uuid PRIMARY KEY NOT NULL,
	"guardrail_action" "guardrail_action" DEFAULT 'PAUSE' NOT NULL,
	"checked_at" timestamp (3) with time zone,
	"stats_fingerprint" text,
	"decided_at" timestamp (3) with time zone,
	"srm_detected" boolean DEFAULT false NOT NULL,
	"significant_metrics" text[] DEFAULT '{}'::text[] NOT NULL,
	"breached_metrics" text[] DEFAULT '{}'::text[] NOT NULL,
	"last_error" text,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "experiment_monitors" ADD CONSTRAINT "experiment_monitors_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "experiment_monitors_checked_at_idx" ON "experiment_monitors" USING btree ("checked_at");