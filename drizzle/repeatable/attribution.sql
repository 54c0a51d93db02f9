-- Attribution: which conversions count, defined once for the fold (src/aggregates/fold.ts) and the rebuild.
--
-- An event's time is its occurred_at, but never later than when it was recorded (a client clock running ahead
-- cannot date a conversion past the experiment's end after the fact). A unit's window opens at its first
-- exposure (the earliest exposure time) and closes when the experiment completed, or window_hours after the
-- first exposure when the metric has a conversion window, whichever is first; both ends count. A unit never
-- exposed has no window: none of its conversions count. Paused periods count (the unit stays treated).
CREATE OR REPLACE FUNCTION event_time(occurred_at timestamptz, recorded_at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
  SELECT least(occurred_at, recorded_at)
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION conversion_in_window(at timestamptz, first_exposure timestamptz, ended_at timestamptz,
                                                window_hours double precision)
RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT first_exposure IS NOT NULL AND at >= first_exposure
     AND (ended_at IS NULL OR at <= ended_at)
     AND (window_hours IS NULL OR at <= first_exposure + window_hours * interval '1 hour')
$$;
