ALTER TABLE "experiment_conversions" DROP CONSTRAINT "experiment_conversions_experiment_id_experiments_id_fk";
--> statement-breakpoint
ALTER TABLE "experiment_conversions" DROP CONSTRAINT "experiment_conversions_variant_id_experiment_variants_id_fk";
--> statement-breakpoint
ALTER TABLE "experiment_exposures" DROP CONSTRAINT "experiment_exposures_experiment_id_experiments_id_fk";
--> statement-breakpoint
ALTER TABLE "experiment_exposures" DROP CONSTRAINT "experiment_exposures_variant_id_experiment_variants_id_fk";
--> statement-breakpoint
ALTER TABLE "experiment_user_metrics" DROP CONSTRAINT "experiment_user_metrics_experiment_id_experiments_id_fk";
--> statement-breakpoint
ALTER TABLE "experiment_user_metrics" DROP CONSTRAINT "experiment_user_metrics_variant_id_experiment_variants_id_fk";
