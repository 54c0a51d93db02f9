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
ALTER TABLE "experiment_schedules" ADD CONSTRAINT "experiment_schedules_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;