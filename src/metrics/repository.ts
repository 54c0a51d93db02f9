/**
 * SQL for metric definitions and the metrics an experiment lists with their roles. Database first, plain
 * rows back; validation, rules and audit belong to the service.
 */
import { and, asc, count, desc, eq, inArray, isNull, lt, or, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client';
import { experimentMetricRoles, metrics } from '../db/schema';
import type { MetricDirection, MetricKind, MetricRole } from './definitions';

export type MetricRow = typeof metrics.$inferSelect;
export type MetricRoleRow = typeof experimentMetricRoles.$inferSelect;

export interface CreateMetricParams {
  key: string;
  name: string;
  description?: string | null;
  kind: MetricKind;
  eventName: string;
  denominatorEventName?: string | null;
  direction: MetricDirection;
  capValue?: number | null;
  conversionWindowHours?: number | null;
}

export type UpdateMetricParams = Partial<Omit<CreateMetricParams, 'key'>> & { archivedAt?: Date | null };

export interface ListMetricsParams {
  includeArchived: boolean;
  limit: number;
  /** Keyset position: rows strictly older than this (createdAt, id). */
  before?: { createdAt: Date; id: string } | null;
}

export interface MetricRoleParams {
  metricId: string;
  role: MetricRole;
  toleratedHarm: number | null;
}

const m = metrics;
const r = experimentMetricRoles;

export async function createMetric(db: Db, params: CreateMetricParams): Promise<MetricRow> {
  const [row] = await db.insert(m).values(params).returning();
  return row;
}

export async function updateMetric(db: Db, id: string, patch: UpdateMetricParams): Promise<MetricRow | null> {
  const [row] = await db
    .update(m)
    .set({ ...patch, updatedAt: new Date() })
    .where(eq(m.id, id))
    .returning();
  return row ?? null;
}

/**
 * The row, locked until the transaction ends (changes of one metric are serialised). NO KEY UPDATE: listing
 * the metric on an experiment (a foreign key's KEY SHARE) does not wait for it.
 */
export async function lockMetric(db: Db, id: string): Promise<MetricRow | null> {
  const [row] = await db.select().from(m).where(eq(m.id, id)).for('no key update');
  return row ?? null;
}

export async function getMetricsByIds(db: Db, ids: readonly string[]): Promise<MetricRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(m)
    .where(inArray(m.id, [...ids]));
}

export async function getMetricsByKeys(db: Db, keys: readonly string[]): Promise<MetricRow[]> {
  if (keys.length === 0) return [];
  return db
    .select()
    .from(m)
    .where(inArray(m.key, [...keys]));
}

/** A page of metrics, newest first (keyset pagination as experiments). */
export async function listMetrics(db: Db, params: ListMetricsParams): Promise<MetricRow[]> {
  const conditions: SQL[] = [];
  if (!params.includeArchived) conditions.push(isNull(m.archivedAt));
  if (params.before) {
    const { createdAt, id } = params.before;
    conditions.push(or(lt(m.createdAt, createdAt), and(eq(m.createdAt, createdAt), lt(m.id, id)))!);
  }
  return db
    .select()
    .from(m)
    .where(and(...conditions))
    .orderBy(desc(m.createdAt), desc(m.id))
    .limit(params.limit);
}

export async function countMetrics(db: Db, includeArchived: boolean): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(m)
    .where(includeArchived ? undefined : isNull(m.archivedAt));
  return Number(row.n);
}

/** Replaces the metrics an experiment lists; position follows the order given. */
export async function replaceMetricRoles(
  db: Db,
  experimentId: string,
  roles: readonly MetricRoleParams[],
): Promise<void> {
  await db.delete(r).where(eq(r.experimentId, experimentId));
  if (roles.length === 0) return;
  await db.insert(r).values(roles.map((role, position) => ({ experimentId, position, ...role })));
}

/** The metrics some experiments list, in their order. */
export async function getMetricRolesByExperimentIds(
  db: Db,
  ids: readonly string[],
): Promise<MetricRoleRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(r)
    .where(inArray(r.experimentId, [...ids]))
    .orderBy(asc(r.experimentId), asc(r.position));
}

/** Definitions by key, each with its role in one experiment when the experiment lists it (one statement). */
export async function getMetricsWithRoleByKeys(
  db: Db,
  experimentId: string,
  keys: readonly string[],
): Promise<(MetricRow & { role: MetricRole | null; toleratedHarm: number | null })[]> {
  if (keys.length === 0) return [];
  const rows = await db
    .select({ metric: m, role: r.role, toleratedHarm: r.toleratedHarm })
    .from(m)
    .leftJoin(r, and(eq(r.metricId, m.id), eq(r.experimentId, experimentId)))
    .where(inArray(m.key, [...keys]));
  return rows.map((row) => ({ ...row.metric, role: row.role, toleratedHarm: row.toleratedHarm }));
}

/** The keys of the metrics an experiment lists, in its order (one statement). */
export async function getListedMetricKeys(db: Db, experimentId: string): Promise<string[]> {
  const rows = await db
    .select({ key: m.key })
    .from(r)
    .innerJoin(m, eq(m.id, r.metricId))
    .where(eq(r.experimentId, experimentId))
    .orderBy(asc(r.position));
  return rows.map((row) => row.key);
}

/** Ids of the experiments that list a metric. */
export async function getExperimentIdsUsingMetric(db: Db, metricId: string): Promise<string[]> {
  const rows = await db.select({ id: r.experimentId }).from(r).where(eq(r.metricId, metricId));
  return rows.map((row) => row.id);
}
