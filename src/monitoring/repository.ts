/** SQL for the monitoring job's per-experiment record (experiment_monitors). */
import { eq, inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../db/client';
import { parseRows } from '../db/rows';
import {
  experimentMetricRoles,
  experimentMonitors,
  experimentPhases,
  experiments,
  experimentVariantStats,
} from '../db/schema';
import type { GuardrailAction, MonitorState } from './decisions';

export type MonitorRow = typeof experimentMonitors.$inferSelect;

const m = experimentMonitors;

export async function getMonitorsByExperimentIds(db: Db, ids: readonly string[]): Promise<MonitorRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(m)
    .where(inArray(m.experimentId, [...ids]));
}

/** Sets what a guardrail breach does; the alert state stays. */
export async function setGuardrailAction(
  db: Db,
  experimentId: string,
  action: GuardrailAction,
): Promise<MonitorRow> {
  const [row] = await db
    .insert(m)
    .values({ experimentId, guardrailAction: action })
    .onConflictDoUpdate({ target: m.experimentId, set: { guardrailAction: action, updatedAt: sql`now()` } })
    .returning();
  return row;
}

export interface DueMonitor {
  experimentId: string;
  /** The statistics' summary now, and at the last decision (null: never decided). */
  fingerprint: string;
  previousFingerprint: string | null;
}

/**
 * Claims the running experiments due for a look at `now` (never looked at, or not within `intervalMs`),
 * those looked at longest ago first, and marks them looked at. The fingerprint summarises what the decisions
 * read: the aggregates' totals (every folded event changes them), the phases (weights changed) and the
 * listed metrics with their roles and tolerated harms; the job decides again only when it changed.
 */
export async function claimDueMonitors(
  db: Db,
  now: Date,
  intervalMs: number,
  limit: number,
): Promise<DueMonitor[]> {
  const e = experiments;
  const s = experimentVariantStats;
  const r = experimentMetricRoles;
  const at = sql`${now.toISOString()}::timestamptz`;
  const due = await parseRows(
    db,
    sql`/* dueMonitors */
      SELECT ${e.id} AS "experimentId", ${m.statsFingerprint} AS "previousFingerprint",
             md5(concat_ws('|',
               (SELECT concat_ws(',', count(*), sum(${s.recordedEvents}), sum(${s.events}), sum(${s.units}),
                                 sum(${s.exposedUnits}), sum(${s.convertedUnits}), sum(${s.sum}), sum(${s.exposedSum}))
                  FROM ${s} WHERE ${s.experimentId} = ${e.id}),
               (SELECT count(*) FROM ${experimentPhases} WHERE ${experimentPhases.experimentId} = ${e.id}),
               (SELECT string_agg(concat_ws(':', ${r.metricId}, ${r.role}, ${r.toleratedHarm}), ',' ORDER BY ${r.metricId})
                  FROM ${r} WHERE ${r.experimentId} = ${e.id}))) AS "fingerprint"
        FROM ${e} LEFT JOIN ${m} ON ${m.experimentId} = ${e.id}
       WHERE ${e.status} = 'running'
         AND (${m.checkedAt} IS NULL OR ${m.checkedAt} <= ${at} - ${intervalMs} * interval '1 millisecond')
       ORDER BY ${m.checkedAt} NULLS FIRST, ${e.id}
       LIMIT ${limit}`,
    z.object({
      experimentId: z.string(),
      fingerprint: z.string(),
      previousFingerprint: z.string().nullable(),
    }),
  );
  if (due.length === 0) return due;
  await db
    .insert(m)
    .values(due.map((d) => ({ experimentId: d.experimentId, checkedAt: now })))
    .onConflictDoUpdate({ target: m.experimentId, set: { checkedAt: now } });
  return due;
}

/** The experiment's record (made if missing), locked until the transaction ends; taken before the experiment's lock. */
export async function lockMonitor(db: Db, experimentId: string): Promise<MonitorRow> {
  await db.insert(m).values({ experimentId }).onConflictDoNothing();
  const [row] = await db.select().from(m).where(eq(m.experimentId, experimentId)).for('update');
  return row;
}

/** Records a decision: its state and the fingerprint of the statistics it was made on. */
export async function saveDecision(
  db: Db,
  experimentId: string,
  params: { state: MonitorState; fingerprint: string; at: Date },
): Promise<void> {
  await db
    .update(m)
    .set({
      srmDetected: params.state.srmDetected,
      significantMetrics: [...params.state.significantMetrics],
      breachedMetrics: [...params.state.breachedMetrics],
      statsFingerprint: params.fingerprint,
      decidedAt: params.at,
      lastError: null,
      updatedAt: sql`now()`,
    })
    .where(eq(m.experimentId, experimentId));
}

export async function saveError(db: Db, experimentId: string, error: string): Promise<void> {
  await db.update(m).set({ lastError: error, updatedAt: sql`now()` }).where(eq(m.experimentId, experimentId));
}
