/** SQL of bandits: their settings and state, the history of reweightings, and per-phase statistics. */
import { asc, desc, eq, inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import { EXPOSURE_METRIC } from '../aggregates/constants';
import type { Db } from '../db/client';
import { dbNumber, parseRows } from '../db/rows';
import {
  experimentAssignments,
  experimentBandits,
  experimentBanditUpdates,
  experiments,
  experimentUserMetrics,
} from '../db/schema';
import type { BanditSettings } from './settings';

export type BanditRow = typeof experimentBandits.$inferSelect;
export type BanditUpdateRow = typeof experimentBanditUpdates.$inferSelect;

const b = experimentBandits;

export async function insertBandit(
  db: Db,
  experimentId: string,
  settings: Omit<BanditSettings, 'decisionMetric'> & { decisionMetricId: string },
): Promise<BanditRow> {
  const [row] = await db
    .insert(b)
    .values({ experimentId, ...settings })
    .returning();
  return row;
}

export async function getBanditsByExperimentIds(db: Db, ids: readonly string[]): Promise<BanditRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(b)
    .where(inArray(b.experimentId, [...ids]));
}

/** The bandit's row, locked for its update (the caller holds the experiment's row lock first). */
export async function lockBandit(db: Db, experimentId: string): Promise<BanditRow | null> {
  const [row] = await db.select().from(b).where(eq(b.experimentId, experimentId)).for('update');
  return row ?? null;
}

export async function updateBandit(
  db: Db,
  experimentId: string,
  patch: Partial<Omit<BanditRow, 'experimentId'>>,
): Promise<void> {
  await db.update(b).set(patch).where(eq(b.experimentId, experimentId));
}

/** Running bandits whose next look is due, oldest first (not locked: the job locks each in turn). */
export async function getDueBandits(db: Db, now: Date, limit: number): Promise<string[]> {
  const rows = await parseRows(
    db,
    sql`/* getDueBandits */
      SELECT ${b.experimentId} AS "experimentId"
        FROM ${b} JOIN ${experiments} ON ${experiments.id} = ${b.experimentId}
       WHERE ${experiments.status} = 'running' AND ${b.nextUpdateAt} <= ${now.toISOString()}::timestamptz
       ORDER BY ${b.nextUpdateAt}, ${b.experimentId}
       LIMIT ${limit}`,
    z.object({ experimentId: z.string() }),
  );
  return rows.map((r) => r.experimentId);
}

export async function insertBanditUpdate(
  db: Db,
  row: Omit<typeof experimentBanditUpdates.$inferInsert, 'id'>,
): Promise<void> {
  await db.insert(experimentBanditUpdates).values(row);
}

/** The reweightings of some bandits, newest first, at most `limit` each. */
export async function getBanditUpdatesByExperimentIds(
  db: Db,
  ids: readonly string[],
  limit: number,
): Promise<BanditUpdateRow[]> {
  if (ids.length === 0) return [];
  const u = experimentBanditUpdates;
  const rows = await db
    .select()
    .from(u)
    .where(inArray(u.experimentId, [...ids]))
    .orderBy(asc(u.experimentId), desc(u.at), desc(u.phase));
  const seen = new Map<string, number>();
  return rows.filter((r) => {
    const n = (seen.get(r.experimentId) ?? 0) + 1;
    seen.set(r.experimentId, n);
    return n <= limit;
  });
}

const periodRow = z.object({
  phase: dbNumber,
  variantId: z.string(),
  n: dbNumber,
  sum: dbNumber,
  sumSquares: dbNumber,
  converted: dbNumber,
});
export type PeriodRow = z.output<typeof periodRow>;

/**
 * Per phase and variant: the exposed units (by the phase of their assignment, as the sample-ratio check
 * counts them) and Σ, Σ² and the count above 0 of their attributed totals of `eventName`, each total capped
 * at `cap` when given. One grouped scan of the experiment's exposed units: O(units), which the bandit job
 * (once per cadence) and a bandit's `results` pay; the maintained aggregates keep no per-phase sums.
 */
export async function getPeriodStats(
  db: Db,
  experimentId: string,
  eventName: string,
  cap: number | null,
): Promise<PeriodRow[]> {
  const a = experimentAssignments;
  const total = cap === null ? sql`m.total` : sql`least(m.total, ${cap}::float8)`;
  return parseRows(
    db,
    sql`/* getBanditPeriodStats */
      SELECT r.phase AS "phase", x.variant_id::text AS "variantId", count(*) AS "n",
             coalesce(sum(${total}), 0) AS "sum", coalesce(sum(${total} * ${total}), 0) AS "sumSquares",
             count(*) FILTER (WHERE m.total > 0) AS "converted"
        FROM ${experimentUserMetrics} x
        JOIN ${a} ON ${a.experimentId} = x.experiment_id AND ${a.userId} = x.user_id
        JOIN experiment_phase_ranges(${experimentId}::uuid) r
          ON ${a.assignedAt} >= r.from_at AND ${a.assignedAt} < r.to_at
        LEFT JOIN ${experimentUserMetrics} m
          ON m.experiment_id = x.experiment_id AND m.user_id = x.user_id AND m.metric_name = ${eventName}
       WHERE x.experiment_id = ${experimentId} AND x.metric_name = ${EXPOSURE_METRIC}
       GROUP BY r.phase, x.variant_id
       ORDER BY r.phase, x.variant_id`,
    periodRow,
  );
}
