/**
 * SQL for the phases of an experiment (its weight history, as GrowthBook's phases). Starting opens phase 1;
 * a change of weights or traffic while the experiment runs or is paused closes the open phase and opens the
 * next; completing closes the last. Callers hold the experiment's row lock (the service's mustLock), so
 * phases of one experiment are written one at a time. Times come from the database's clock after that lock
 * (clock_timestamp), the clock assignments are stamped with, so phases follow each other in time and a unit
 * assigned before a change stays in the phase that bucketed it.
 */
import { asc, inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../db/client';
import { dbDate, dbNumber, parseRows } from '../db/rows';
import {
  experimentAssignments,
  experimentPhaseStats,
  experimentPhases,
  experiments,
  experimentVariants,
} from '../db/schema';

export type PhaseRow = typeof experimentPhases.$inferSelect;

const p = experimentPhases;
const e = experiments;
const v = experimentVariants;
const a = experimentAssignments;
const ps = experimentPhaseStats;

/**
 * Closes the open phase (if any) and opens the next one with the experiment's traffic allocation and
 * variant weights as they are now, in one statement. Returns the new phase's index.
 */
export async function openPhase(db: Db, experimentId: string): Promise<number> {
  const [row] = await parseRows(
    db,
    sql`/* openPhase */
WITH t AS (SELECT clock_timestamp() AS at), closed AS (
  UPDATE ${p} SET ended_at = (SELECT at FROM t)
   WHERE ${p.experimentId} = ${experimentId} AND ${p.endedAt} IS NULL
)
INSERT INTO ${p} (experiment_id, index, started_at, traffic_allocation, weights)
SELECT ${e.id},
       coalesce((SELECT max(${p.index}) FROM ${p} WHERE ${p.experimentId} = ${e.id}), 0) + 1,
       (SELECT at FROM t), ${e.trafficAllocation},
       coalesce((SELECT jsonb_agg(jsonb_build_object('variantId', ${v.id}, 'weight', ${v.weight})
                                  ORDER BY ${v.position}, ${v.id})
                   FROM ${v} WHERE ${v.experimentId} = ${e.id}), '[]'::jsonb)
  FROM ${e}
 WHERE ${e.id} = ${experimentId}
RETURNING ${p.index} AS "index"`,
    z.object({ index: dbNumber }),
  );
  return row.index;
}

/**
 * The database's clock now (the clock events' recorded_at and assignments' assigned_at use), rounded up to
 * the millisecond (a JavaScript Date holds no more), so it is never before the moment it was read.
 */
export async function databaseNow(db: Db): Promise<Date> {
  const [row] = await parseRows(
    db,
    sql`/* databaseNow */
      SELECT date_trunc('milliseconds', clock_timestamp()) + interval '1 millisecond' AS "at"`,
    z.object({ at: dbDate }),
  );
  return row.at;
}

/** Ends the open phase at `at` (the experiment completed). */
export async function closePhase(db: Db, experimentId: string, at: Date): Promise<void> {
  await db.execute(sql`/* closePhase */
    UPDATE ${p} SET ended_at = ${at.toISOString()}::timestamptz
     WHERE ${p.experimentId} = ${experimentId} AND ${p.endedAt} IS NULL`);
}

/** Phases of some experiments, in order. */
export async function getPhasesByExperimentIds(db: Db, ids: readonly string[]): Promise<PhaseRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(p)
    .where(inArray(p.experimentId, [...ids]))
    .orderBy(asc(p.experimentId), asc(p.index));
}

const phaseWithUnitsRow = z.object({
  index: dbNumber,
  weights: z.array(z.object({ variantId: z.string(), weight: dbNumber })),
  units: z.record(z.string(), dbNumber),
});
export type PhaseWithUnits = z.output<typeof phaseWithUnitsRow>;

/**
 * The phases of an experiment, in order, each with its units per variant (by variant id): exposed units from
 * the maintained aggregates (O(variants × phases)), or, with `assigned`, every assigned unit (one grouped
 * scan of the experiment's assignments). A unit's phase is the one in force when it was assigned
 * (experiment_phase_ranges). One statement.
 */
export async function getPhasesWithUnits(
  db: Db,
  experimentId: string,
  options: { assigned: boolean },
): Promise<PhaseWithUnits[]> {
  const units = options.assigned
    ? sql`SELECT ${a.variantId} AS variant_id, r.phase, count(*) AS n
            FROM ${a}
            JOIN experiment_phase_ranges(${experimentId}::uuid) r
              ON ${a.assignedAt} >= r.from_at AND ${a.assignedAt} < r.to_at
           WHERE ${a.experimentId} = ${experimentId}
           GROUP BY ${a.variantId}, r.phase`
    : sql`SELECT ${ps.variantId} AS variant_id, ${ps.phase} AS phase, ${ps.exposedUnits} AS n
            FROM ${ps} WHERE ${ps.experimentId} = ${experimentId}`;
  return parseRows(
    db,
    sql`/* getPhasesWithUnits */
WITH u AS (${units})
SELECT ${p.index} AS "index", ${p.weights} AS "weights",
       coalesce((SELECT jsonb_object_agg(u.variant_id, u.n) FROM u WHERE u.phase = ${p.index}), '{}'::jsonb) AS "units"
  FROM ${p}
 WHERE ${p.experimentId} = ${experimentId}
 ORDER BY ${p.index}`,
    phaseWithUnitsRow,
  );
}
