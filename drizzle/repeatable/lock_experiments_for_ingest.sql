-- The per-experiment ingestion lock, held until the transaction ends. Folding a batch into the
-- aggregates (src/aggregates/fold.ts) and rebuilding them (rebuild_experiment_stats) take it, so they
-- serialise per experiment and the next holder sees every earlier one's rows. Always in ascending order
-- of the ids as text, so two transactions locking overlapping sets cannot deadlock.
CREATE OR REPLACE FUNCTION lock_experiments_for_ingest(exp_ids uuid[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended({{INGEST_LOCK_PREFIX}} || s.id, 0))
     FROM (SELECT DISTINCT id::text AS id FROM unnest(exp_ids) AS t(id) ORDER BY 1) s;
END;
$$;
