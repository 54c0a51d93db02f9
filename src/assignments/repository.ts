/** SQL for assignments: the sticky record of which variant each unit got. */
import { inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import { columnNames, jsonbParam, jsonParam, type Db } from '../db/client';
import { dbDate, parseRows } from '../db/rows';
import { experimentAssignments, experimentSchedules } from '../db/schema';

export type AssignmentRow = typeof experimentAssignments.$inferSelect;

/** A unit in an experiment: what an assignment is unique on. */
export interface AssignmentPair {
  experimentId: string;
  userId: string;
}

/** The one key of a pair in maps and caches (experiment ids are UUIDs: the first NUL ends the id). */
export const assignmentKey = (experimentId: string, userId: string) => `${experimentId}\u0000${userId}`;

/** All assignments of some users, for `User.assignments` (batched by the loader). */
export async function getAssignmentsByUserIds(db: Db, userIds: readonly string[]): Promise<AssignmentRow[]> {
  if (userIds.length === 0) return [];
  return db
    .select()
    .from(experimentAssignments)
    .where(inArray(experimentAssignments.userId, [...userIds]))
    .orderBy(sql`${experimentAssignments.assignedAt} desc`);
}

/** Stored assignments for (experiment, user) pairs in one statement, for the `assignment` query loader. */
export async function getAssignmentsByPairs(
  db: Db,
  pairs: readonly AssignmentPair[],
): Promise<AssignmentRow[]> {
  if (pairs.length === 0) return [];
  return db
    .select()
    .from(experimentAssignments)
    .where(
      sql`(${experimentAssignments.experimentId}, ${experimentAssignments.userId}) IN (SELECT p.e, p.u FROM json_to_recordset(${jsonParam(pairs.map((p) => ({ e: p.experimentId, u: p.userId })))}) AS p(e uuid, u text))`,
    );
}

/** A unit to resolve: its stored assignment, else (when variantId is set) a new one with that variant. */
export interface AssignmentRequest extends AssignmentPair {
  /** The variant bucketing gives a new unit; null when it would not enroll (then only a read). */
  variantId: string | null;
}

export interface ResolvedAssignment {
  assignment: AssignmentRow;
  created: boolean;
}

/** A new unit refused because its experiment enrolled as many units as its schedule's cap allows. */
export const CAP_REACHED = 'CAP_REACHED' as const;
export type Resolution = ResolvedAssignment | typeof CAP_REACHED;

const resolvedRow = z.object({
  id: z.string(),
  experimentId: z.string(),
  userId: z.string(),
  variantId: z.string(),
  assignedAt: dbDate,
  created: z.boolean(),
});
const resultRow = z.union([
  resolvedRow.extend({ capped: z.literal(false) }),
  z.object({ experimentId: z.string(), userId: z.string(), capped: z.literal(true) }),
]);

/**
 * Resolves many units in one statement: stored rows win; units without one are inserted (in a fixed
 * order, so two instances inserting overlapping units wait on each other in the same order and cannot
 * deadlock). A stored unit costs a read and no write. Returns a map keyed by assignmentKey; a unit is
 * missing only if it stays unassigned (variantId null and nothing stored), and is CAP_REACHED when its
 * experiment's unit cap (scheduleExperiment's stopAfterUnits) left no room for it.
 *
 * The cap is enforced here, from the database rather than from any cache: the statement locks the
 * schedule rows of the capped experiments among its new units (in id order, all before inserting anything:
 * the `room` aggregate must be complete before the first insert), inserts at most the room each leaves,
 * and adds what it inserted to the row's count, so concurrent statements on any number of connections
 * and instances take turns on a capped experiment and never enrol more than the cap. Experiments without
 * a schedule row cost the statement one probe of the (small) schedules table, and no lock.
 */
export async function resolveAssignments(
  db: Db,
  requests: readonly AssignmentRequest[],
): Promise<Map<string, Resolution>> {
  const out = new Map<string, Resolution>();
  if (requests.length === 0) return out;
  const input = requests.map((r) => ({ e: r.experimentId, u: r.userId, v: r.variantId }));
  const a = experimentAssignments;
  const c = experimentSchedules;
  const rows = await parseRows(
    db,
    sql`/* resolveAssignments */
WITH input AS (
  SELECT * FROM jsonb_to_recordset(${jsonbParam(input)}) AS t(e uuid, u text, v uuid)
), stored AS (
  SELECT ${a.id} AS "id", ${a.experimentId} AS "experimentId", ${a.userId} AS "userId",
         ${a.variantId} AS "variantId", ${a.assignedAt} AS "assignedAt"
    FROM ${a} JOIN input i ON ${a.experimentId} = i.e AND ${a.userId} = i.u
), fresh AS (
  SELECT i.e, i.u, i.v, row_number() OVER (PARTITION BY i.e ORDER BY i.u) AS n FROM input i
   WHERE i.v IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM stored s WHERE s."experimentId" = i.e AND s."userId" = i.u)
), room AS (
  SELECT coalesce(jsonb_object_agg(l.e, l.room), '{}') AS r FROM (
    SELECT ${c.experimentId}::text AS e, ${c.stopAfterUnits} - ${c.enrolledUnits} AS room FROM ${c}
     WHERE ${c.stopAfterUnits} IS NOT NULL AND ${c.experimentId} IN (SELECT f.e FROM fresh f)
     ORDER BY ${c.experimentId}
       FOR UPDATE
  ) l
), admitted AS (
  SELECT f.*, (room.r ->> f.e::text)::bigint AS room FROM fresh f CROSS JOIN room
), inserted AS (
  INSERT INTO ${a} (${columnNames(a.experimentId, a.userId, a.variantId)})
  SELECT f.e, f.u, f.v FROM admitted f WHERE f.room IS NULL OR f.n <= f.room
   ORDER BY f.e, f.u
  ON CONFLICT (${columnNames(a.experimentId, a.userId)}) DO NOTHING
  RETURNING ${a.id} AS "id", ${a.experimentId} AS "experimentId", ${a.userId} AS "userId",
            ${a.variantId} AS "variantId", ${a.assignedAt} AS "assignedAt"
), counted AS (
  UPDATE ${c} SET ${columnNames(c.enrolledUnits)} = ${c.enrolledUnits} + k.n
    FROM (SELECT "experimentId" AS e, count(*) AS n FROM inserted GROUP BY 1) k
   WHERE ${c.experimentId} = k.e AND ${c.stopAfterUnits} IS NOT NULL
)
SELECT *, false AS created, false AS capped FROM stored
UNION ALL
SELECT *, true, false FROM inserted
UNION ALL
SELECT NULL, f.e, f.u, NULL, NULL, false, true FROM admitted f WHERE f.n > f.room`,
    resultRow,
  );
  for (const row of rows) {
    if (row.capped) {
      out.set(assignmentKey(row.experimentId, row.userId), CAP_REACHED);
      continue;
    }
    const { created, capped: _, ...assignment } = row;
    out.set(assignmentKey(assignment.experimentId, assignment.userId), { assignment, created });
  }
  // A unit another transaction inserted after this statement's snapshot was skipped by ON CONFLICT
  // without being visible to it; a second statement (new snapshot) reads the winner's row.
  // So may a unit refused for the cap: it is enrolled, not refused.
  const raced = requests.filter((r) => {
    const resolved = out.get(assignmentKey(r.experimentId, r.userId));
    return r.variantId !== null && (resolved === undefined || resolved === CAP_REACHED);
  });
  if (raced.length > 0) {
    for (const row of await getAssignmentsByPairs(db, raced)) {
      out.set(assignmentKey(row.experimentId, row.userId), { assignment: row, created: false });
    }
  }
  return out;
}
