/** SQL for experiment schedules. */
import { eq, inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../db/client';
import { parseRows } from '../db/rows';
import { experimentAssignments, experiments, experimentSchedules } from '../db/schema';

export type ScheduleRow = typeof experimentSchedules.$inferSelect;

export interface ScheduleParams {
  startAt: Date | null;
  stopAt: Date | null;
  stopAfterUnits: number | null;
  enrolledUnits: number;
}

export async function getSchedulesByExperimentIds(db: Db, ids: readonly string[]): Promise<ScheduleRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(experimentSchedules)
    .where(inArray(experimentSchedules.experimentId, [...ids]));
}

/** Sets an experiment's schedule, starting its bookkeeping afresh (no attempts, nothing done yet). */
export async function upsertSchedule(
  db: Db,
  experimentId: string,
  params: ScheduleParams,
): Promise<ScheduleRow> {
  const values = {
    ...params,
    startedAt: null,
    stoppedAt: null,
    attempts: 0,
    lastAttemptAt: null,
    failureReason: null,
    failedAt: null,
    updatedAt: sql`now()`,
  };
  const [row] = await db
    .insert(experimentSchedules)
    .values({ experimentId, ...values })
    .onConflictDoUpdate({ target: experimentSchedules.experimentId, set: values })
    .returning();
  return row;
}

export async function deleteSchedule(db: Db, experimentId: string): Promise<ScheduleRow | null> {
  const [row] = await db
    .delete(experimentSchedules)
    .where(eq(experimentSchedules.experimentId, experimentId))
    .returning();
  return row ?? null;
}

/**
 * Blocks new assignments (of every experiment) until the transaction ends, after those in flight finished,
 * so a cap set on a running experiment starts from an exact count: every assignment statement that
 * begins later sees the schedule row and counts its units there.
 */
export async function lockAssignments(db: Db): Promise<void> {
  await db.execute(sql`/* lockAssignments */ LOCK TABLE ${experimentAssignments} IN SHARE MODE`);
}

export async function countAssignments(db: Db, experimentId: string): Promise<number> {
  const [row] = await parseRows(
    db,
    sql`/* countAssignments */ SELECT count(*)::int AS n FROM ${experimentAssignments}
         WHERE ${experimentAssignments.experimentId} = ${experimentId}`,
    z.object({ n: z.number() }),
  );
  return row.n;
}

export type ScheduledAction = 'start' | 'complete';

export interface DueSchedule {
  experimentId: string;
  action: ScheduledAction;
  attempts: number;
}

/**
 * Schedules whose next transition is due at `now`: a start whose time has come, else a stop whose time
 * has come or whose unit cap is reached (once the start, if any, is done). A failed attempt waits
 * `retryBaseMs × 2^(attempts − 1)` before the next; a schedule that failed for good is left alone. The
 * rows are locked (others skip them), so two runs never act on one schedule.
 */
export async function lockDueSchedules(db: Db, now: Date, retryBaseMs: number): Promise<DueSchedule[]> {
  const s = experimentSchedules;
  const at = sql`${now.toISOString()}::timestamptz`;
  return parseRows(
    db,
    sql`/* lockDueSchedules */
      SELECT ${s.experimentId} AS "experimentId", ${s.attempts} AS "attempts",
             CASE WHEN ${s.startAt} IS NOT NULL AND ${s.startedAt} IS NULL THEN 'start' ELSE 'complete' END AS "action"
        FROM ${s} JOIN ${experiments} ON ${experiments.id} = ${s.experimentId}
       WHERE ${s.failedAt} IS NULL AND ${s.stoppedAt} IS NULL
         AND (${s.lastAttemptAt} IS NULL
              OR ${s.lastAttemptAt} + ${retryBaseMs} * interval '1 millisecond' * power(2, greatest(${s.attempts} - 1, 0)) <= ${at})
         AND CASE WHEN ${s.startAt} IS NOT NULL AND ${s.startedAt} IS NULL THEN ${s.startAt} <= ${at}
                  ELSE ${s.stopAt} <= ${at} OR ${s.enrolledUnits} >= ${s.stopAfterUnits} END
       ORDER BY ${s.experimentId}
       FOR UPDATE OF ${s} SKIP LOCKED`,
    z.object({ experimentId: z.string(), attempts: z.number(), action: z.enum(['start', 'complete']) }),
  );
}

/** Records that the scheduler carried out the action (the transition committed with this). */
export async function markDone(
  db: Db,
  experimentId: string,
  action: ScheduledAction,
  at: Date,
): Promise<void> {
  await db
    .update(experimentSchedules)
    .set({
      ...(action === 'start' ? { startedAt: at } : { stoppedAt: at }),
      attempts: 0,
      lastAttemptAt: at,
      failureReason: null,
      updatedAt: sql`now()`,
    })
    .where(eq(experimentSchedules.experimentId, experimentId));
}

/** Records a failed attempt; `final` when no attempt is left. */
export async function markFailed(
  db: Db,
  experimentId: string,
  params: { at: Date; reason: string; attempts: number; final: boolean },
): Promise<ScheduleRow> {
  const [row] = await db
    .update(experimentSchedules)
    .set({
      attempts: params.attempts,
      lastAttemptAt: params.at,
      failureReason: params.reason,
      failedAt: params.final ? params.at : null,
      updatedAt: sql`now()`,
    })
    .where(eq(experimentSchedules.experimentId, experimentId))
    .returning();
  return row;
}
