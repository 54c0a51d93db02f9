/** SQL for assignments: the sticky record of which variant each unit got. */
import { and, eq, inArray, sql } from 'drizzle-orm';
import { jsonParam, type Db } from '../db/client';
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
): Promise<{ assignment: AssignmentRow; created: boolean }> {
  const [inserted] = await db
    .insert(experimentAssignments)
    .values(params)
    .onConflictDoNothing({ target: [experimentAssignments.experimentId, experimentAssignments.userId] })
    .returning();
  if (inserted) return { assignment: inserted, created: true };
  const existing = await getAssignment(db, params.experimentId, params.userId);
  if (!existing) throw new Error('assignment vanished between insert and read');
  return { assignment: existing, created: false };
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

/** Inserts many assignments, skipping pairs already assigned; returns the rows this call inserted. */
export async function recordAssignments(
  db: Db,
  rows: readonly { experimentId: string; userId: string; variantId: string }[],
): Promise<AssignmentRow[]> {
  if (rows.length === 0) return [];
  return db
    .insert(experimentAssignments)
    .values([...rows])
    .onConflictDoNothing({ target: [experimentAssignments.experimentId, experimentAssignments.userId] })
    .returning();
}
