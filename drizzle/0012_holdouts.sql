CREATE TYPE "public"."experiment_kind" AS ENUM('standard', 'holdout');--> statement-breakpoint
ALTER TABLE "experiments" ADD COLUMN "kind" "experiment_kind" DEFAULT 'standard' NOT NULL;--> statement-breakpoint
ALTER TABLE "experiments" ADD COLUMN "holdout_id" uuid;--> statement-breakpoint
ALTER TABLE "layers" ADD COLUMN "holdout_id" uuid;--> statement-breakpoint
ALTER TABLE "experiments" ADD CONSTRAINT "experiments_holdout_id_experiments_id_fk" FOREIGN KEY ("holdout_id") REFERENCES "public"."experiments"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "layers" ADD CONSTRAINT "layers_holdout_id_experiments_id_fk" FOREIGN KEY ("holdout_id") REFERENCES "public"."experiments"("id") ON DELETE set null ON UPDATE no action;