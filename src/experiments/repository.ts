/**
 * SQL for experiments, variants and their audit trail. Every function takes the database (or a
 * transaction) first and returns plain rows; validation and transitions belong to the service.
 */
import { and, asc, count, desc, eq, inArray, lt, or, sql } from 'drizzle-orm';
import { z } from 'zod';
import { jsonParam, type Db } from '../db/client';
import { dbDate, dbJsonObject, parseRows } from '../db/rows';
import {
  auditLog,
  experimentAssignments,
  experimentOverrides,
  experiments,
  experimentVariants,
} from '../db/schema';
import type { ExperimentKind, ExperimentStatus } from './lifecycle';

export type ExperimentRow = typeof experiments.$inferSelect;
export type VariantRow = typeof experimentVariants.$inferSelect;
export type AuditRow = typeof auditLog.$inferSelect;
export type OverrideRow = typeof experimentOverrides.$inferSelect;

export interface NewVariantParams {
  name: string;
  weight: number;
  config: Record<string, unknown>;
  isControl: boolean;
}

export interface CreateExperimentParams {
  key: string;
  name: string;
  description?: string | null;
  trafficAllocation?: number;
  hashSeed?: string | null;
  targeting?: Record<string, unknown> | null;
  kind?: ExperimentKind;
  variants: NewVariantParams[];
}

export interface UpdateExperimentParams {
  name?: string;
  description?: string | null;
  trafficAllocation?: number;
  hashSeed?: string | null;
  targeting?: Record<string, unknown> | null;
  holdoutId?: string | null;
}

export interface ListExperimentsParams {
  status?: ExperimentStatus | null;
  limit: number;
  /** Keyset position: rows strictly older than this (createdAt, id). */
  before?: { createdAt: Date; id: string } | null;
}

export interface AuditParams {
  actor: string;
  action: string;
  entityType: 'experiment' | 'variant' | 'api_key' | 'layer';
  entityId: string;
  details: Record<string, unknown>;
}

export async function createExperiment(
  db: Db,
  params: CreateExperimentParams,
): Promise<{ experiment: ExperimentRow; variants: VariantRow[] }> {
  const [experiment] = await db
    .insert(experiments)
    .values({
      key: params.key,
      name: params.name,
      description: params.description ?? null,
      trafficAllocation: params.trafficAllocation ?? 1,
      hashSeed: params.hashSeed ?? null,
      targeting: params.targeting ?? null,
      kind: params.kind ?? 'standard',
    })
    .returning();
  const variants = params.variants.length
    ? await db
        .insert(experimentVariants)
        .values(params.variants.map((v, position) => ({ ...v, experimentId: experiment.id, position })))
        .returning()
    : [];
  return { experiment, variants: variants.sort((a, b) => a.position - b.position) };
}

export async function getExperiment(
  db: Db,
  ref: { id: string } | { key: string },
): Promise<ExperimentRow | null> {
  const [row] = await db
    .select()
    .from(experiments)
    .where('id' in ref ? eq(experiments.id, ref.id) : eq(experiments.key, ref.key));
  return row ?? null;
}

/** Row-lock an experiment for a state change, so concurrent transitions serialise. */
export async function lockExperiment(db: Db, id: string): Promise<ExperimentRow | null> {
  const [row] = await db.select().from(experiments).where(eq(experiments.id, id)).for('update');
  return row ?? null;
}

export async function getExperimentsByIds(db: Db, ids: readonly string[]): Promise<ExperimentRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(experiments)
    .where(inArray(experiments.id, [...ids]));
}

export async function getExperimentsByKeys(db: Db, keys: readonly string[]): Promise<ExperimentRow[]> {
  if (keys.length === 0) return [];
  return db
    .select()
    .from(experiments)
    .where(inArray(experiments.key, [...keys]));
}

/** Newest first; keyset pagination on (created_at, id) so pages stay stable while rows are added. */
export async function listExperiments(db: Db, params: ListExperimentsParams): Promise<ExperimentRow[]> {
  const conditions = [];
  if (params.status) conditions.push(eq(experiments.status, params.status));
  if (params.before) {
    conditions.push(
      or(
        lt(experiments.createdAt, params.before.createdAt),
        and(eq(experiments.createdAt, params.before.createdAt), lt(experiments.id, params.before.id)),
      ),
    );
  }
  return db
    .select()
    .from(experiments)
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(desc(experiments.createdAt), desc(experiments.id))
    .limit(params.limit);
}

export async function countExperiments(db: Db, status?: ExperimentStatus | null): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(experiments)
    .where(status ? eq(experiments.status, status) : undefined);
  return Number(row.n);
}

export async function updateExperiment(
  db: Db,
  id: string,
  patch: UpdateExperimentParams & { status?: ExperimentStatus; startAt?: Date | null; endAt?: Date | null },
): Promise<ExperimentRow | null> {
  const [row] = await db
    .update(experiments)
    .set({ ...patch, updatedAt: new Date() })
    .where(eq(experiments.id, id))
    .returning();
  return row ?? null;
}

/** Deletes the experiment; variants, assignments and events go with it (ON DELETE CASCADE). */
export async function deleteExperiment(db: Db, id: string): Promise<boolean> {
  const rows = await db.delete(experiments).where(eq(experiments.id, id)).returning({ id: experiments.id });
  return rows.length > 0;
}

export async function getVariants(db: Db, experimentId: string): Promise<VariantRow[]> {
  return db
    .select()
    .from(experimentVariants)
    .where(eq(experimentVariants.experimentId, experimentId))
    .orderBy(asc(experimentVariants.position), asc(experimentVariants.id));
}

/** Variants of many experiments in one statement (for loaders), in position order. */
export async function getVariantsByExperimentIds(
  db: Db,
  experimentIds: readonly string[],
): Promise<VariantRow[]> {
  if (experimentIds.length === 0) return [];
  return db
    .select()
    .from(experimentVariants)
    .where(inArray(experimentVariants.experimentId, [...experimentIds]))
    .orderBy(
      asc(experimentVariants.experimentId),
      asc(experimentVariants.position),
      asc(experimentVariants.id),
    );
}

export async function getVariantsByIds(db: Db, ids: readonly string[]): Promise<VariantRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(experimentVariants)
    .where(inArray(experimentVariants.id, [...ids]));
}

export async function addVariant(
  db: Db,
  experimentId: string,
  params: NewVariantParams,
): Promise<VariantRow> {
  const [row] = await db
    .insert(experimentVariants)
    .values({
      ...params,
      experimentId,
      position: sql`(SELECT coalesce(max(${experimentVariants.position}) + 1, 0) FROM ${experimentVariants} WHERE ${experimentVariants.experimentId} = ${experimentId})`,
    })
    .returning();
  return row;
}

export async function updateVariant(
  db: Db,
  id: string,
  patch: Partial<Pick<VariantRow, 'name' | 'weight' | 'config' | 'isControl'>>,
): Promise<VariantRow | null> {
  const [row] = await db
    .update(experimentVariants)
    .set(patch)
    .where(eq(experimentVariants.id, id))
    .returning();
  return row ?? null;
}

export async function removeVariant(db: Db, id: string): Promise<boolean> {
  const rows = await db
    .delete(experimentVariants)
    .where(eq(experimentVariants.id, id))
    .returning({ id: experimentVariants.id });
  return rows.length > 0;
}

export async function countAssignmentsByExperimentIds(
  db: Db,
  experimentIds: readonly string[],
): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  if (experimentIds.length === 0) return result;
  const rows = await db
    .select({ experimentId: experimentAssignments.experimentId, n: count() })
    .from(experimentAssignments)
    .where(inArray(experimentAssignments.experimentId, [...experimentIds]))
    .groupBy(experimentAssignments.experimentId);
  for (const row of rows) result.set(row.experimentId, Number(row.n));
  return result;
}

export async function insertAudit(db: Db, params: AuditParams): Promise<void> {
  await db.insert(auditLog).values(params);
}

const auditRow = z.object({
  id: z.string(),
  actor: z.string(),
  action: z.string(),
  entityType: z.string(),
  entityId: z.string(),
  details: dbJsonObject,
  createdAt: dbDate,
});

/**
 * The audit entries of some entities in one statement, newest first, at most `limit` each (for
 * `Experiment.auditLog`, batched by the loader).
 */
export async function listAuditByEntityIds(
  db: Db,
  entityIds: readonly string[],
  limit: number,
): Promise<AuditRow[]> {
  if (entityIds.length === 0) return [];
  const a = auditLog;
  return parseRows(
    db,
    sql`/* listAuditByEntityIds */
      SELECT "id", "actor", "action", "entityType", "entityId", "details", "createdAt" FROM (
        SELECT ${a.id} AS "id", ${a.actor} AS "actor", ${a.action} AS "action", ${a.entityType} AS "entityType",
               ${a.entityId} AS "entityId", ${a.details} AS "details", ${a.createdAt} AS "createdAt",
               row_number() OVER (PARTITION BY ${a.entityId} ORDER BY ${a.createdAt} DESC, ${a.id} DESC) AS rn
          FROM ${a}
         WHERE ${a.entityId} IN (SELECT value::uuid FROM json_array_elements_text(${jsonParam(entityIds)}))
      ) ranked
      WHERE rn <= ${limit} ORDER BY "entityId", rn`,
    auditRow,
  );
}

/** QA overrides of some experiments in one statement (for the config and the loader), oldest first. */
export async function getOverridesByExperimentIds(
  db: Db,
  experimentIds: readonly string[],
): Promise<OverrideRow[]> {
  if (experimentIds.length === 0) return [];
  return db
    .select()
    .from(experimentOverrides)
    .where(inArray(experimentOverrides.experimentId, [...experimentIds]))
    .orderBy(asc(experimentOverrides.createdAt), asc(experimentOverrides.userId));
}

export async function countOverrides(db: Db, experimentId: string): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(experimentOverrides)
    .where(eq(experimentOverrides.experimentId, experimentId));
  return Number(row.n);
}

/** Sets (or moves) a unit's override; returns the row before (null when new) and after. */
export async function upsertOverride(
  db: Db,
  params: { experimentId: string; userId: string; variantId: string; createdBy: string },
): Promise<OverrideRow> {
  const [row] = await db
    .insert(experimentOverrides)
    .values(params)
    .onConflictDoUpdate({
      target: [experimentOverrides.experimentId, experimentOverrides.userId],
      set: { variantId: params.variantId, createdBy: params.createdBy, createdAt: new Date() },
    })
    .returning();
  return row;
}

export async function getOverride(db: Db, experimentId: string, userId: string): Promise<OverrideRow | null> {
  const [row] = await db
    .select()
    .from(experimentOverrides)
    .where(and(eq(experimentOverrides.experimentId, experimentId), eq(experimentOverrides.userId, userId)));
  return row ?? null;
}

export async function deleteOverride(
  db: Db,
  experimentId: string,
  userId: string,
): Promise<OverrideRow | null> {
  const [row] = await db
    .delete(experimentOverrides)
    .where(and(eq(experimentOverrides.experimentId, experimentId), eq(experimentOverrides.userId, userId)))
    .returning();
  return row ?? null;
}

/** Every experiment in a status (the SDK payload reads the running ones), by key. */
export async function getExperimentsByStatus(db: Db, status: ExperimentStatus): Promise<ExperimentRow[]> {
  return db.select().from(experiments).where(eq(experiments.status, status)).orderBy(asc(experiments.key));
}
