CREATE TABLE "experiment_schedules" (
	"experiment_id" uuid PRIMARY KEY NOT NULL,
	"start_at" timestamp (3) with time zone,
	"stop_at" timestamp (3) with time zone,
	"stop_after_units" bigint,
	"enrolled_units" bigint DEFAULT 0 NOT NULL,
	"started_at" timestamp (3) with time zone,
	"stopped_at" timestamp (3) with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_attempt_at" timestamp (3) with time zone,
	"failure_reason" text,
	"failed_at" timestamp (3) with time zone,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "experiment_schedules_stop_after_start" CHECK ("experiment_schedules"."stop_at" IS NULL OR "experiment_schedules"."start_at" IS NULL OR "experiment_schedules"."stop_at" > "experiment_schedules"."start_at"),
	CONSTRAINT "experiment_schedules_cap_positive" CHECK ("experiment_schedules"."stop_after_units" IS NULL OR "experiment_schedules"."stop_after_units" > 0),
	CONSTRAINT "experiment_schedules_attempts_nonnegative" CHECK ("experiment_schedules"."attempts" >= 0),
	CONSTRAINT "experiment_schedules_cap_respected" CHECK ("experiment_schedules"."stop_after_units" IS NULL OR "experiment_schedules"."enrolled_units" <= "experiment_schedules"."stop_after_units")
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"name" text PRIMARY KEY NOT NULL,
	"runs" bigint DEFAULT 0 NOT NULL,
	"last_started_at" timestamp (3) with time zone,
	"last_finished_at" timestamp (3) with time zone,
	"last_instance" text,
	"last_error" text
);
--> statement-breakpoint
CREATE TABLE "webhook_deliveries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"webhook_id" uuid NOT NULL,
	"event" text NOT NULL,
	"payload" jsonb NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"last_attempt_at" timestamp (3) with time zone,
	"last_status_code" integer,
	"last_error" text,
	"delivered_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "webhook_deliveries_status" CHECK ("webhook_deliveries"."status" IN ('pending', 'delivered', 'failed'))
);
--> statement-breakpoint
CREATE TABLE "webhooks" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"url" text NOT NULL,
	"events" text[] NOT NULL,
	"min_units" integer DEFAULT 0 NOT NULL,
	"min_days" double precision DEFAULT 0 NOT NULL,
	"secret_ciphertext" text NOT NULL,
	"secret_prefix" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "experiment_schedules" ADD CONSTRAINT "experiment_schedules_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_webhook_id_webhooks_id_fk" FOREIGN KEY ("webhook_id") REFERENCES "public"."webhooks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "webhook_deliveries_due_idx" ON "webhook_deliveries" USING btree ("next_attempt_at") WHERE "webhook_deliveries"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "webhook_deliveries_webhook_idx" ON "webhook_deliveries" USING btree ("webhook_id","created_at" DESC NULLS LAST);