/** SQL for assignments: the sticky record of which variant each unit got. */
import { and, eq, inArray, sql } from 'drizzle-orm';
import { jsonbParam, jsonParam, queryRows, type Db } from '../db/client';
import { experimentAssignments } from '../db/schema';

export type AssignmentRow = typeof experimentAssignments.$inferSelect;

export async function getAssignment(
  db: Db,
  experimentId: string,
  userId: string,
): Promise<AssignmentRow | null> {
  const [row] = await db
    .select()
    .from(experimentAssignments)
    .where(
      and(eq(experimentAssignments.experimentId, experimentId), eq(experimentAssignments.userId, userId)),
    );
  return row ?? null;
}

/**
 * Inserts the assignment unless one exists, and returns the stored row either way. Concurrent first
 * requests race on the unique (experiment_id, user_id) index: exactly one insert wins and every caller
 * gets the winner's variant.
 */
export async function recordAssignment(
  db: Db,
  params: { experimentId: string; userId: string; variantId: string },
): Promise<ResolvedAssignment> {
  const resolved = (await resolveAssignments(db, [params])).get(
    assignmentKey(params.experimentId, params.userId),
  );
  if (!resolved) throw new Error('assignment vanished between insert and read');
  return resolved;
}

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
  pairs: readonly { experimentId: string; userId: string }[],
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
export interface AssignmentRequest {
  experimentId: string;
  userId: string;
  /** The variant bucketing gives a new unit; null when it would not enroll (then only a read). */
  variantId: string | null;
}

export interface ResolvedAssignment {
  assignment: AssignmentRow;
  created: boolean;
}

interface ResolvedRow {
  id: string;
  experimentId: string;
  userId: string;
  variantId: string;
  assignedAt: string | Date;
  created: boolean;
}

/**
 * Resolves many units in one statement: stored rows win; units without one are inserted (in a fixed
 * order, so two instances inserting overlapping units wait on each other in the same order and cannot
 * deadlock). A stored unit costs a read and no write. Returns a map keyed `${experimentId}\0${userId}`;
 * a unit is missing only if it stays unassigned (variantId null and nothing stored).
 */
export async function resolveAssignments(
  db: Db,
  requests: readonly AssignmentRequest[],
): Promise<Map<string, ResolvedAssignment>> {
  const out = new Map<string, ResolvedAssignment>();
  if (requests.length === 0) return out;
  const input = requests.map((r) => ({ e: r.experimentId, u: r.userId, v: r.variantId }));
  const collect = (rows: ResolvedRow[]) => {
    for (const { created, assignedAt, ...row } of rows) {
      out.set(assignmentKey(row.experimentId, row.userId), {
        assignment: { ...row, assignedAt: new Date(assignedAt) },
        created,
      });
    }
  };
  collect(
    await queryRows<ResolvedRow>(
      db,
      sql`/* resolveAssignments */
WITH input AS (
  SELECT * FROM jsonb_to_recordset(${jsonbParam(input)}) AS t(e uuid, u text, v uuid)
), stored AS (
  SELECT a.* FROM experiment_assignments a JOIN input i ON a.experiment_id = i.e AND a.user_id = i.u
), inserted AS (
  INSERT INTO experiment_assignments (experiment_id, user_id, variant_id)
  SELECT i.e, i.u, i.v FROM input i
   WHERE i.v IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM stored s WHERE s.experiment_id = i.e AND s.user_id = i.u)
   ORDER BY i.e, i.u
  ON CONFLICT (experiment_id, user_id) DO NOTHING
  RETURNING *
)
SELECT id, experiment_id AS "experimentId", user_id AS "userId", variant_id AS "variantId",
       assigned_at AS "assignedAt", false AS created FROM stored
UNION ALL
SELECT id, experiment_id, user_id, variant_id, assigned_at, true FROM inserted`,
    ),
  );
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

export const assignmentKey = (experimentId: string, userId: string) => `${experimentId}\u0000${userId}`;
