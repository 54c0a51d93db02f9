DROP INDEX "experiment_conversions_experiment_user_idx";--> statement-breakpoint
DROP INDEX "experiment_exposures_experiment_user_idx";