/**
 * SQL for experiments, variants and their audit trail. Every function takes the database (or a
 * transaction) first and returns plain rows; validation and transitions belong to the service.
 */
import { and, type AnyColumn, asc, count, desc, eq, inArray, lt, or, type SQL, sql } from 'drizzle-orm';
import { alias, PgDialect } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import type { VariantMetricsRow } from '../aggregates/read';
import { jsonParam, queryPreparedRows, tableAs, type Db } from '../db/client';
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
  entityType: 'experiment' | 'variant' | 'api_key' | 'layer' | 'metric';
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

/**
 * Row-lock an experiment for a state change, so concurrent transitions serialise. NO KEY UPDATE: the key never
 * changes, and the foreign-key checks of the aggregates' inserts (KEY SHARE, taken by ingestion under its
 * lock) must not wait for a change that itself waits for the ingestion lock (completing does).
 */
export async function lockExperiment(db: Db, id: string): Promise<ExperimentRow | null> {
  const [row] = await db.select().from(experiments).where(eq(experiments.id, id)).for('no key update');
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

/**
 * What a read of experiments fetches with them, in the same statement. The GraphQL layer plans it from
 * the query's selection (src/experiments/graphql.ts); anything left out is loaded later, batched.
 */
export interface ExperimentInclude {
  variants?: boolean;
  /** Per-variant counts, as get_experiment_summary gives them. */
  metrics?: boolean;
  assignmentCount?: boolean;
  /** Audit entries, newest first, at most this many (none when absent). */
  auditLimit?: number;
}

/** An experiment with what was asked for; null where it was not. */
export interface ExperimentWith {
  experiment: ExperimentRow;
  variants: VariantRow[] | null;
  metrics: VariantMetricsRow[] | null;
  assignmentCount: number | null;
  audit: AuditRow[] | null;
}

const v = alias(experimentVariants, 'v');
const al = alias(auditLog, 'al');
const asg = alias(experimentAssignments, 'asg');

/**
 * One JSON array per experiment: its columns, then each nested list as a correlated subquery that
 * PostgreSQL aggregates in the same statement (json_agg over the child rows), so a page of experiments
 * with everything the dashboard shows is one round trip. Positional arrays, not objects: less to send
 * and to parse; decodeExperimentWith reads them back in the same order.
 */
function experimentJson(include: ExperimentInclude): SQL {
  const e = experiments;
  // Times as milliseconds since the epoch (floor: the millisecond a Date of the ISO text would hold):
  // a Date from a number costs a fraction of parsing the text, and a page holds hundreds of them.
  const ms = (column: SQL | AnyColumn) => sql`floor(extract(epoch FROM ${column}) * 1000)`;
  const variants = include.variants
    ? sql`(SELECT coalesce(json_agg(json_build_array(${v.id}, ${v.name}, ${v.weight}, ${v.config}, ${v.isControl},
                 ${v.position}, ${ms(v.createdAt)}) ORDER BY ${v.position}, ${v.id}), '[]')
             FROM ${tableAs(experimentVariants, v)} WHERE ${v.experimentId} = ${e.id})`
    : sql`NULL`;
  const metrics = include.metrics
    ? sql`(SELECT coalesce(json_agg(json_build_array(s.variant_id, s.variant_name, s.exposures, s.unique_users,
                 s.conversions, s.conversion_rate, s.avg_metric_value) ORDER BY s.n), '[]')
             FROM get_experiment_summary(${e.id}) WITH ORDINALITY AS s(variant_id, variant_name, exposures,
                  unique_users, conversions, conversion_rate, avg_metric_value, n))`
    : sql`NULL`;
  const assignmentCount = include.assignmentCount
    ? sql`(SELECT count(*) FROM ${tableAs(experimentAssignments, asg)} WHERE ${asg.experimentId} = ${e.id})`
    : sql`NULL`;
  const audit =
    include.auditLimit !== undefined
      ? sql`(SELECT coalesce(json_agg(json_build_array(r.id, r.actor, r.action, r.entity_type, r.entity_id,
                   r.details, ${ms(sql`r.created_at`)}) ORDER BY r.created_at DESC, r.id DESC), '[]')
               FROM (SELECT ${al.id} AS id, ${al.actor} AS actor, ${al.action} AS action,
                            ${al.entityType} AS entity_type, ${al.entityId} AS entity_id, ${al.details} AS details,
                            ${al.createdAt} AS created_at
                       FROM ${tableAs(auditLog, al)} WHERE ${al.entityId} = ${e.id}
                      ORDER BY ${al.createdAt} DESC, ${al.id} DESC LIMIT ${sql.raw(String(include.auditLimit))}) r)`
      : sql`NULL`;
  return sql`json_build_array(${e.id}, ${e.key}, ${e.name}, ${e.description}, ${e.status}, ${e.trafficAllocation},
    ${e.hashSeed}, ${ms(e.startAt)}, ${ms(e.endAt)}, ${ms(e.createdAt)}, ${ms(e.updatedAt)},
    ${variants}, ${metrics}, ${assignmentCount}, ${audit}, ${e.targeting}, ${e.layerId}, ${e.layerRanges},
    ${e.kind}, ${e.holdoutId})`;
}

const dialect = new PgDialect();
const experimentJsonText = new Map<string, SQL>();

/**
 * experimentJson rendered to SQL text once per shape (which lists, which audit limit) and reused: it
 * binds no parameter, and rebuilding its dozens of fragments and columns for every read cost more CPU
 * than decoding the rows it returns.
 */
function experimentJsonSql(include: ExperimentInclude): SQL {
  if (include.auditLimit !== undefined && !Number.isSafeInteger(include.auditLimit))
    throw new RangeError(`audit limit must be an integer, got ${include.auditLimit}`);
  const key = `${include.variants ? 'v' : ''}${include.metrics ? 'm' : ''}${include.assignmentCount ? 'c' : ''}:${include.auditLimit ?? ''}`;
  let text = experimentJsonText.get(key);
  if (!text) {
    const query = dialect.sqlToQuery(experimentJson(include));
    if (query.params.length) throw new Error('experimentJson must bind no parameter');
    text = sql.raw(query.sql);
    experimentJsonText.set(key, text);
  }
  return text;
}

/** A page of experiments (as listExperiments) with their nested reads, and optionally the total count. */
export async function listExperimentsWith(
  db: Db,
  params: ListExperimentsParams,
  include: ExperimentInclude & { totalCount?: boolean },
): Promise<{ rows: ExperimentWith[]; totalCount: number | null }> {
  const e = experiments;
  const conditions: SQL[] = [];
  if (params.status) conditions.push(sql`${e.status} = ${params.status}`);
  if (params.before) {
    // Raw SQL passes a Date to the driver as is, which postgres.js and PGlite serialise differently.
    const at = sql`${params.before.createdAt.toISOString()}::timestamptz`;
    conditions.push(
      sql`(${e.createdAt} < ${at} OR (${e.createdAt} = ${at} AND ${e.id} < ${params.before.id}))`,
    );
  }
  const where = conditions.length ? sql`WHERE ${sql.join(conditions, sql` AND `)}` : sql``;
  // Uncorrelated: PostgreSQL evaluates it once for the statement, not per row.
  const total = include.totalCount
    ? sql`(SELECT count(*) FROM ${e}${params.status ? sql` WHERE ${e.status} = ${params.status}` : sql``})`
    : sql`NULL`;
  const rows = await queryPreparedRows<{ e: unknown; total: unknown }>(
    db,
    sql`/* listExperimentsWith */
      SELECT ${experimentJsonSql(include)} AS "e", ${total} AS "total"
        FROM ${e} ${where}
       ORDER BY ${e.createdAt} DESC, ${e.id} DESC
       LIMIT ${params.limit}`,
    'listExperimentsWith',
  );
  return {
    rows: rows.map((row) => decodeExperimentWith(row.e)),
    totalCount: rows.length && include.totalCount ? decode.count(rows[0].total) : null,
  };
}

/** Experiments by id or key with their nested reads, in one statement (batched by a loader). */
export async function getExperimentsWith(
  db: Db,
  refs: { ids: readonly string[]; keys: readonly string[] },
  include: ExperimentInclude,
): Promise<ExperimentWith[]> {
  if (refs.ids.length === 0 && refs.keys.length === 0) return [];
  const e = experiments;
  const rows = await queryPreparedRows<{ e: unknown }>(
    db,
    sql`/* getExperimentsWith */
      SELECT ${experimentJsonSql(include)} AS "e" FROM ${e}
       -- = ANY of arrays (not IN subqueries): the OR then becomes a BitmapOr of the two unique indexes
       -- instead of a scan of every experiment.
       WHERE ${e.id} = ANY (ARRAY(SELECT value::uuid FROM json_array_elements_text(${jsonParam(refs.ids)})))
          OR ${e.key} = ANY (ARRAY(SELECT value FROM json_array_elements_text(${jsonParam(refs.keys)})))`,
    'getExperimentsWith',
  );
  return rows.map((row) => decodeExperimentWith(row.e));
}

/**
 * Reads back experimentJson's arrays. Checked by hand rather than with zod: a page is hundreds of
 * small values, and this is the hottest loop of a dashboard read; a value of the wrong type still
 * fails loudly, naming the field.
 */
function decodeExperimentWith(value: unknown): ExperimentWith {
  const a = decode.array(typeof value === 'string' ? JSON.parse(value) : value, 'experiment');
  const id = decode.string(a[0], 'experiment.id');
  return {
    experiment: {
      id,
      key: decode.string(a[1], 'experiment.key'),
      name: decode.string(a[2], 'experiment.name'),
      description: decode.nullableString(a[3], 'experiment.description'),
      status: decode.string(a[4], 'experiment.status') as ExperimentStatus,
      trafficAllocation: decode.number(a[5], 'experiment.trafficAllocation'),
      hashSeed: decode.nullableString(a[6], 'experiment.hashSeed'),
      startAt: a[7] === null ? null : decode.date(a[7], 'experiment.startAt'),
      endAt: a[8] === null ? null : decode.date(a[8], 'experiment.endAt'),
      createdAt: decode.date(a[9], 'experiment.createdAt'),
      updatedAt: decode.date(a[10], 'experiment.updatedAt'),
      // Added after the nested lists (15–19), so their positions stay as they were.
      targeting: a[15] === null ? null : decode.object(a[15], 'experiment.targeting'),
      layerId: decode.nullableString(a[16], 'experiment.layerId'),
      layerRanges:
        a[17] === null ? null : (decode.array(a[17], 'experiment.layerRanges') as [number, number][]),
      kind: decode.string(a[18], 'experiment.kind') as ExperimentRow['kind'],
      holdoutId: decode.nullableString(a[19], 'experiment.holdoutId'),
    },
    variants:
      a[11] === null
        ? null
        : decode.array(a[11], 'variants').map((item) => {
            const r = decode.array(item, 'variant');
            return {
              id: decode.string(r[0], 'variant.id'),
              experimentId: id,
              name: decode.string(r[1], 'variant.name'),
              weight: decode.number(r[2], 'variant.weight'),
              config: decode.object(r[3], 'variant.config'),
              isControl: decode.boolean(r[4], 'variant.isControl'),
              position: decode.number(r[5], 'variant.position'),
              createdAt: decode.date(r[6], 'variant.createdAt'),
            };
          }),
    metrics:
      a[12] === null
        ? null
        : decode.array(a[12], 'metrics').map((item) => {
            const r = decode.array(item, 'metrics row');
            return {
              experimentId: id,
              variantId: decode.string(r[0], 'metrics.variantId'),
              variantName: decode.string(r[1], 'metrics.variantName'),
              exposures: decode.number(r[2], 'metrics.exposures'),
              uniqueUsers: decode.number(r[3], 'metrics.uniqueUsers'),
              conversions: decode.number(r[4], 'metrics.conversions'),
              conversionRate: decode.number(r[5], 'metrics.conversionRate'),
              avgMetricValue: r[6] === null ? null : decode.number(r[6], 'metrics.avgMetricValue'),
            };
          }),
    assignmentCount: a[13] === null ? null : decode.count(a[13]),
    audit:
      a[14] === null
        ? null
        : decode.array(a[14], 'auditLog').map((item) => {
            const r = decode.array(item, 'audit entry');
            return {
              id: decode.string(r[0], 'audit.id'),
              actor: decode.string(r[1], 'audit.actor'),
              action: decode.string(r[2], 'audit.action'),
              entityType: decode.string(r[3], 'audit.entityType'),
              entityId: decode.string(r[4], 'audit.entityId'),
              details: decode.object(r[5], 'audit.details'),
              createdAt: decode.date(r[6], 'audit.createdAt'),
            };
          }),
  };
}

class RowShapeError extends Error {
  constructor(field: string, value: unknown) {
    super(`unexpected ${typeof value} for ${field}: ${String(value).slice(0, 40)}`);
  }
}

const decode = {
  array(value: unknown, field: string): unknown[] {
    if (!Array.isArray(value)) throw new RowShapeError(field, value);
    return value;
  },
  string(value: unknown, field: string): string {
    if (typeof value !== 'string') throw new RowShapeError(field, value);
    return value;
  },
  nullableString(value: unknown, field: string): string | null {
    return value === null ? null : decode.string(value, field);
  },
  number(value: unknown, field: string): number {
    if (typeof value !== 'number') throw new RowShapeError(field, value);
    return value;
  },
  boolean(value: unknown, field: string): boolean {
    if (typeof value !== 'boolean') throw new RowShapeError(field, value);
    return value;
  },
  object(value: unknown, field: string): Record<string, unknown> {
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new RowShapeError(field, value);
    return value as Record<string, unknown>;
  },
  /** A time as experimentJson sends it: milliseconds since the epoch. */
  date(value: unknown, field: string): Date {
    const date = new Date(decode.number(value, field));
    if (Number.isNaN(date.getTime())) throw new RowShapeError(field, value);
    return date;
  },
  /** count(*) is bigint: text on postgres.js, a number or bigint elsewhere, a number inside JSON. */
  count(value: unknown): number {
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw new RowShapeError('count', value);
    return n;
  },
};

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

/** The QA overrides of some (experiment, unit) pairs, in one statement (events of units with no assignment). */
export async function getOverridesByPairs(
  db: Db,
  pairs: readonly { experimentId: string; userId: string }[],
): Promise<OverrideRow[]> {
  if (pairs.length === 0) return [];
  const o = experimentOverrides;
  return db
    .select()
    .from(o)
    .where(
      sql`(${o.experimentId}, ${o.userId}) IN (SELECT p.e, p.u FROM json_to_recordset(${jsonParam(pairs.map((p) => ({ e: p.experimentId, u: p.userId })))}) AS p(e uuid, u text))`,
    );
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
