CREATE TABLE "experiment_phase_stats" (
	"experiment_id" uuid NOT NULL,
	"variant_id" uuid NOT NULL,
	"phase" integer NOT NULL,
	"exposed_units" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "experiment_phase_stats_experiment_id_variant_id_phase_pk" PRIMARY KEY("experiment_id","variant_id","phase")
);
--> statement-breakpoint
CREATE TABLE "experiment_phases" (
	"experiment_id" uuid NOT NULL,
	"index" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"ended_at" timestamp with time zone,
	"traffic_allocation" double precision NOT NULL,
	"weights" jsonb NOT NULL,
	CONSTRAINT "experiment_phases_experiment_id_index_pk" PRIMARY KEY("experiment_id","index"),
	CONSTRAINT "experiment_phases_index_positive" CHECK ("experiment_phases"."index" >= 1),
	CONSTRAINT "experiment_phases_weights_array" CHECK (jsonb_typeof("experiment_phases"."weights") = 'array')
);
--> statement-breakpoint
ALTER TABLE "experiment_phase_stats" ADD CONSTRAINT "experiment_phase_stats_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_phase_stats" ADD CONSTRAINT "experiment_phase_stats_variant_id_experiment_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."experiment_variants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiment_phases" ADD CONSTRAINT "experiment_phases_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- Hand-written backfill: an experiment that has started gets phase 1 with the weights and traffic it has now
-- (the history before this migration is unknown), ending when it completed.
INSERT INTO "experiment_phases" ("experiment_id", "index", "started_at", "ended_at", "traffic_allocation", "weights")
SELECT e.id, 1, e.start_at, CASE WHEN e.status IN ('completed', 'archived') THEN coalesce(e.end_at, e.updated_at) END,
       e.traffic_allocation,
       coalesce((SELECT jsonb_agg(jsonb_build_object('variantId', v.id, 'weight', v.weight) ORDER BY v.position, v.id)
                   FROM "experiment_variants" v WHERE v.experiment_id = e.id), '[]'::jsonb)
  FROM "experiments" e
 WHERE e.start_at IS NOT NULL;
--> statement-breakpoint
-- Every exposed unit with an assignment is in phase 1, the only phase so far.
INSERT INTO "experiment_phase_stats" ("experiment_id", "variant_id", "phase", "exposed_units")
SELECT um.experiment_id, um.variant_id, 1, count(*)
  FROM "experiment_user_metrics" um
  JOIN "experiment_assignments" a ON a.experiment_id = um.experiment_id AND a.user_id = um.user_id
 WHERE um.metric_name = 'exposure'
   AND EXISTS (SELECT 1 FROM "experiment_phases" p WHERE p.experiment_id = um.experiment_id)
 GROUP BY um.experiment_id, um.variant_id;
