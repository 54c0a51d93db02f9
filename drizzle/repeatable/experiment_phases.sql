-- The time range of each phase of an experiment, for attributing a unit to the phase it was assigned in
-- (the phase whose weights bucketed it): phase p covers [from_at, to_at). Phase 1 reaches back to -infinity
-- (an assignment stamped before the start by clock skew belongs to the first weights), the last phase to
-- +infinity (its end is when the experiment completed, after which nobody is assigned). An inlinable SQL
-- function, so the fold, the rebuild and the results join the same definition.
CREATE OR REPLACE FUNCTION experiment_phase_ranges(exp_id uuid)
RETURNS TABLE (phase integer, from_at timestamptz, to_at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT p.index,
         CASE WHEN p.index = 1 THEN '-infinity'::timestamptz ELSE p.started_at END,
         coalesce(lead(p.started_at) OVER (ORDER BY p.index), 'infinity'::timestamptz)
    FROM experiment_phases p
   WHERE p.experiment_id = exp_id
$$;
