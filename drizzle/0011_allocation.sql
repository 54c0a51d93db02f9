CREATE TABLE "experiment_overrides" (
	"experiment_id" uuid NOT NULL,
	"user_id" text NOT NULL,
	"variant_id" uuid NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "experiment_overrides_experiment_id_user_id_pk" PRIMARY KEY("experiment_id","user_id")
);
--> statement-breakpoint
CREATE TABLE "layers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"key" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"hash_seed" text NOT NULL,
	"archived_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "layers_key_unique" UNIQUE("key"),
	CONSTRAINT "layers_key_slug" CHECK ("layers"."key" ~ '^[a-z0-9][a-z0-9_.-]{0,127}$')
);
--> statement-breakpoint
ALTER TABLE "experiments" ADD COLUMN "targeting" jsonb;--> statement-breakpoint
ALTER TABLE "experiments" ADD COLUMN "layer_id" uuid;--> statement-breakpoint
ALTER TABLE "experiments" ADD COLUMN "layer_ranges" jsonb;--> statement-breakpoint
ALTER TABLE "experiment_overrides" ADD CONSTRAINT "experiment_overrides_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_overrides" ADD CONSTRAINT "experiment_overrides_variant_id_experiment_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."experiment_variants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "experiment_overrides_variant_idx" ON "experiment_overrides" USING btree ("variant_id");--> statement-breakpoint
ALTER TABLE "experiments" ADD CONSTRAINT "experiments_layer_id_layers_id_fk" FOREIGN KEY ("layer_id") REFERENCES "public"."layers"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "experiments_layer_idx" ON "experiments" USING btree ("layer_id");--> statement-breakpoint
ALTER TABLE "experiments" ADD CONSTRAINT "experiments_layer_ranges" CHECK (("experiments"."layer_id" IS NULL) = ("experiments"."layer_ranges" IS NULL));--> statement-breakpoint
ALTER TABLE "experiments" ADD CONSTRAINT "experiments_targeting_object" CHECK (jsonb_typeof("experiments"."targeting") = 'object');