CREATE TYPE "public"."bandit_stage" AS ENUM('EXPLORE', 'EXPLOIT');--> statement-breakpoint
ALTER TYPE "public"."experiment_kind" ADD VALUE 'bandit';--> statement-breakpoint
CREATE TABLE "experiment_bandit_updates" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"experiment_id" uuid NOT NULL,
	"at" timestamp (3) with time zone NOT NULL,
	"phase" integer NOT NULL,
	"weights" jsonb NOT NULL,
	"best_arm_probabilities" jsonb NOT NULL,
	"estimates" jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "experiment_bandits" (
	"experiment_id" uuid PRIMARY KEY NOT NULL,
	"decision_metric_id" uuid NOT NULL,
	"exploration_hours" double precision NOT NULL,
	"update_every_minutes" integer NOT NULL,
	"min_weight" double precision NOT NULL,
	"min_units_per_variant" integer NOT NULL,
	"stage" "bandit_stage" DEFAULT 'EXPLORE' NOT NULL,
	"best_arm_probabilities" jsonb,
	"updated_at" timestamp (3) with time zone,
	"next_update_at" timestamp (3) with time zone,
	"last_checked_at" timestamp (3) with time zone,
	"waiting_reason" text,
	CONSTRAINT "experiment_bandits_exploration" CHECK ("experiment_bandits"."exploration_hours" >= 0),
	CONSTRAINT "experiment_bandits_cadence" CHECK ("experiment_bandits"."update_every_minutes" >= 15),
	CONSTRAINT "experiment_bandits_min_weight" CHECK ("experiment_bandits"."min_weight" >= 0 AND "experiment_bandits"."min_weight" < 1),
	CONSTRAINT "experiment_bandits_min_units" CHECK ("experiment_bandits"."min_units_per_variant" >= 2)
);
--> statement-breakpoint
ALTER TABLE "experiment_bandit_updates" ADD CONSTRAINT "experiment_bandit_updates_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_bandits" ADD CONSTRAINT "experiment_bandits_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_bandits" ADD CONSTRAINT "experiment_bandits_decision_metric_id_metrics_id_fk" FOREIGN KEY ("decision_metric_id") REFERENCES "public"."metrics"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "experiment_bandit_updates_experiment_at_idx" ON "experiment_bandit_updates" USING btree ("experiment_id","at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "experiment_bandits_next_update_idx" ON "experiment_bandits" USING btree ("next_update_at");--> statement-breakpoint
CREATE INDEX "experiment_bandits_metric_idx" ON "experiment_bandits" USING btree ("decision_metric_id");