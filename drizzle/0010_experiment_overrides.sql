CREATE TABLE "experiment_overrides" (
	"experiment_id" uuid NOT NULL,
	"user_id" text NOT NULL,
	"variant_id" uuid NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "experiment_overrides_experiment_id_user_id_pk" PRIMARY KEY("experiment_id","user_id")
);
--> statement-breakpoint
ALTER TABLE "experiment_overrides" ADD CONSTRAINT "experiment_overrides_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_overrides" ADD CONSTRAINT "experiment_overrides_variant_id_experiment_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."experiment_variants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "experiment_overrides_variant_idx" ON "experiment_overrides" USING btree ("variant_id");