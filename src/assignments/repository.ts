/** SQL for assignments: the sticky record of which variant each unit got. */
import { inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import { columnNames, jsonbParam, jsonParam, type Db } from '../db/client';
import { dbDate, parseRows } from '../db/rows';
import { experimentAssignments } from '../db/schema';

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

const resolvedRow = z.object({
  id: z.string(),
  experimentId: z.string(),
  userId: z.string(),
  variantId: z.string(),
  assignedAt: dbDate,
  created: z.boolean(),
});

/**
 * Resolves many units in one statement: stored rows win; units without one are inserted (in a fixed
 * order, so two instances inserting overlapping units wait on each other in the same order and cannot
 * deadlock). A stored unit costs a read and no write. Returns a map keyed by assignmentKey; a unit is
 * missing only if it stays unassigned (variantId null and nothing stored).
 */
export async function resolveAssignments(
  db: Db,
  requests: readonly AssignmentRequest[],
): Promise<Map<string, ResolvedAssignment>> {
  const out = new Map<string, ResolvedAssignment>();
  if (requests.length === 0) return out;
  const input = requests.map((r) => ({ e: r.experimentId, u: r.userId, v: r.variantId }));
  const a = experimentAssignments;
  const rows = await parseRows(
    db,
    sql`/* resolveAssignments */
WITH input AS (
  SELECT * FROM jsonb_to_recordset(${jsonbParam(input)}) AS t(e uuid, u text, v uuid)
), stored AS (
  SELECT ${a.id} AS "id", ${a.experimentId} AS "experimentId", ${a.userId} AS "userId",
         ${a.variantId} AS "variantId", ${a.assignedAt} AS "assignedAt"
    FROM ${a} JOIN input i ON ${a.experimentId} = i.e AND ${a.userId} = i.u
), inserted AS (
  INSERT INTO ${a} (${columnNames(a.experimentId, a.userId, a.variantId)})
  SELECT i.e, i.u, i.v FROM input i
   WHERE i.v IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM stored s WHERE s."experimentId" = i.e AND s."userId" = i.u)
   ORDER BY i.e, i.u
  ON CONFLICT (${columnNames(a.experimentId, a.userId)}) DO NOTHING
  RETURNING ${a.id} AS "id", ${a.experimentId} AS "experimentId", ${a.userId} AS "userId",
            ${a.variantId} AS "variantId", ${a.assignedAt} AS "assignedAt"
)
SELECT *, false AS created FROM stored
UNION ALL
SELECT *, true FROM inserted`,
    resolvedRow,
  );
  for (const { created, ...assignment } of rows) {
    out.set(assignmentKey(assignment.experimentId, assignment.userId), { assignment, created });
  }
  // A unit another transaction inserted after this statement's snapshot was skipped by ON CONFLICT
  // without being visible to it; a second statement (new snapshot) reads the winner's row.
  const raced = requests.filter(
    (r) => r.variantId !== null && !out.has(assignmentKey(r.experimentId, r.userId)),
  );
  if (raced.length > 0) {
    for (const row of await getAssignmentsByPairs(db, raced)) {
      out.set(assignmentKey(row.experimentId, row.userId), { assignment: row, created: false });
    }
  }
  return out;
}
