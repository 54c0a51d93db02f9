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
  /** A time as a planned read sends it (buildShape): milliseconds since the epoch. */
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

/**
 * What a read of experiments fetches with them, in the same statement. The GraphQL layer plans it from
 * the query's selection (src/experiments/graphql.ts); anything left out is loaded later, batched.
 */
export interface ExperimentInclude {
  /** The experiment columns to read (experimentColumnMask); all when absent. */
  columns?: number;
  variants?: boolean;
  /** The variant columns to read (variantColumnMask); all when absent. */
  variantColumns?: number;
  /** Per-variant counts, as get_experiment_summary gives them. */
  metrics?: boolean;
  assignmentCount?: boolean;
  /** Audit entries, newest first, at most this many (none when absent). */
  auditLimit?: number;
}

/** An experiment with what was asked for; null where it was not. */
export interface ExperimentWith {
  /**
   * With every column when `complete`; otherwise only the columns asked for, the others undefined (the
   * caller asked for the fields it will read; such a row must not be shared with code that reads more).
   */
  experiment: ExperimentRow;
  complete: boolean;
  variants: VariantRow[] | null;
  metrics: VariantMetricsRow[] | null;
  assignmentCount: number | null;
  audit: AuditRow[] | null;
}

const v = alias(experimentVariants, 'v');
const al = alias(auditLog, 'al');
const asg = alias(experimentAssignments, 'asg');

// Times as milliseconds since the epoch (floor: the millisecond a Date of the ISO text would hold):
// a Date from a number costs a fraction of parsing the text, and a page holds hundreds of them.
const ms = (column: SQL | AnyColumn) => sql`floor(extract(epoch FROM ${column}) * 1000)`;

type Decoder = (value: unknown, field: string) => unknown;
const time: Decoder = (value, field) => decode.date(value, field);
const nullable =
  (inner: Decoder): Decoder =>
  (value, field) =>
    value === null ? null : inner(value, field);

/**
 * The columns a planned read can return, each with its decoder, in the order its arrays hold them
 * (`satisfies`: a column added to the table must be added here). A selection that shows a few fields
 * (a list of names and statuses) makes PostgreSQL and the decoder handle only those: turning every
 * column of every row into JSON (times, targeting, configs) was about a third of the statement's work
 * and 40 % of the server's CPU per request for such a list (bench/README.md, scenario 5).
 */
const EXPERIMENT_DECODERS = {
  id: decode.string,
  key: decode.string,
  name: decode.string,
  description: decode.nullableString,
  status: decode.string,
  trafficAllocation: decode.number,
  hashSeed: decode.nullableString,
  startAt: nullable(time),
  endAt: nullable(time),
  createdAt: time,
  updatedAt: time,
  targeting: nullable(decode.object),
  layerId: decode.nullableString,
  layerRanges: nullable(decode.array),
  kind: decode.string,
  holdoutId: decode.nullableString,
} satisfies Record<keyof ExperimentRow, Decoder>;
/** A variant's experiment id is its experiment's (not read again). */
const VARIANT_DECODERS = {
  id: decode.string,
  name: decode.string,
  weight: decode.number,
  config: decode.object,
  isControl: decode.boolean,
  position: decode.number,
  createdAt: time,
} satisfies Record<Exclude<keyof VariantRow, 'experimentId'>, Decoder>;

export type ExperimentColumn = keyof typeof EXPERIMENT_DECODERS;
export type VariantColumn = keyof typeof VARIANT_DECODERS;
const EXPERIMENT_COLUMNS = Object.keys(EXPERIMENT_DECODERS) as ExperimentColumn[];
const VARIANT_COLUMNS = Object.keys(VARIANT_DECODERS) as VariantColumn[];
const ALL_EXPERIMENT_COLUMNS = (1 << EXPERIMENT_COLUMNS.length) - 1;
const ALL_VARIANT_COLUMNS = (1 << VARIANT_COLUMNS.length) - 1;

/** A set of columns as ExperimentInclude carries it (a bit per column: cheap to key and to merge). */
export function experimentColumnMask(columns: Iterable<ExperimentColumn>): number {
  let mask = 1; // the id: nested lists, notes and loaders key on it
  for (const column of columns) mask |= 1 << EXPERIMENT_COLUMNS.indexOf(column);
  return mask;
}
export function variantColumnMask(columns: Iterable<VariantColumn>): number {
  let mask = 1; // the id: per-variant metrics are matched by it
  for (const column of columns) mask |= 1 << VARIANT_COLUMNS.indexOf(column);
  return mask;
}

/** The columns of a mask, each with its SQL (times as epoch milliseconds) and decoder. */
function pick<C extends string>(
  names: readonly C[],
  mask: number,
  table: Record<C, AnyColumn>,
  decoders: Record<C, Decoder>,
  prefix: string,
) {
  return names
    .filter((_, i) => mask & (1 << i))
    .map((name) => ({
      name,
      sql: table[name].dataType === 'date' ? ms(table[name]) : sql`${table[name]}`,
      decode: decoders[name],
      field: `${prefix}.${name}`,
    }));
}

/** A planned read's statement text for one shape, and how to read its rows back. */
interface ReadShape {
  text: SQL;
  decode(value: unknown): ExperimentWith;
}

/**
 * One JSON array per experiment: each nested list as a correlated subquery that PostgreSQL aggregates
 * in the same statement (json_agg over the child rows), then the experiment's columns asked for, so a
 * page of experiments with everything the dashboard shows is one round trip. Positional arrays, not
 * objects: less to send and to parse; the shape's decoder reads them back in the same order.
 */
function buildShape(include: ExperimentInclude, columns: number, variantColumns: number): ReadShape {
  const e = experiments;
  const experimentCols = pick(EXPERIMENT_COLUMNS, columns, e, EXPERIMENT_DECODERS, 'experiment');
  const variantCols = pick(VARIANT_COLUMNS, variantColumns, v, VARIANT_DECODERS, 'variant');
  const variants = include.variants
    ? sql`(SELECT coalesce(json_agg(json_build_array(${sql.join(
        variantCols.map((c) => c.sql),
        sql`, `,
      )}) ORDER BY ${v.position}, ${v.id}), '[]')
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
  const query = dialect.sqlToQuery(
    sql`json_build_array(${variants}, ${metrics}, ${assignmentCount}, ${audit}, ${sql.join(
      experimentCols.map((c) => c.sql),
      sql`, `,
    )})`,
  );
  // Rendered once per shape and reused: it binds no parameter, and rebuilding its dozens of fragments
  // and columns for every read cost more CPU than decoding the rows it returns.
  if (query.params.length) throw new Error('a planned read must bind no parameter');
  const complete = columns === ALL_EXPERIMENT_COLUMNS;
  const FIRST_COLUMN = 4;
  return {
    text: sql.raw(query.sql),
    decode(value) {
      const a = decode.array(typeof value === 'string' ? JSON.parse(value) : value, 'experiment');
      const experiment = fill(blankExperiment(), experimentCols, a, FIRST_COLUMN) as ExperimentRow;
      const id = experiment.id;
      return {
        experiment,
        complete,
        variants:
          a[0] === null
            ? null
            : decode.array(a[0], 'variants').map((item) => {
                const r = decode.array(item, 'variant');
                return fill(blankVariant(id), variantCols, r, 0) as VariantRow;
              }),
        metrics: a[1] === null ? null : decode.array(a[1], 'metrics').map((item) => metricsRow(id, item)),
        assignmentCount: a[2] === null ? null : decode.count(a[2]),
        audit: a[3] === null ? null : decode.array(a[3], 'auditLog').map(auditEntry),
      };
    },
  };
}

/** Sets the columns, decoded, from an array's values starting at `from`. */
function fill(
  row: Record<string, unknown>,
  columns: readonly { name: string; decode: Decoder; field: string }[],
  values: unknown[],
  from: number,
): unknown {
  for (let i = 0; i < columns.length; i++) {
    const c = columns[i];
    row[c.name] = c.decode(values[from + i], c.field);
  }
  return row;
}

/**
 * Every key present from the start (undefined until decoded), so all planned rows share one object
 * shape whatever their columns; a row read with every column is a whole row. Object literals: rows
 * cloned from a template object (`{ ...blank }`) made the whole request ~50 % slower (measured).
 */
const blankExperiment = () =>
  ({
    id: undefined,
    key: undefined,
    name: undefined,
    description: undefined,
    status: undefined,
    trafficAllocation: undefined,
    hashSeed: undefined,
    startAt: undefined,
    endAt: undefined,
    createdAt: undefined,
    updatedAt: undefined,
    targeting: undefined,
    layerId: undefined,
    layerRanges: undefined,
    kind: undefined,
    holdoutId: undefined,
  }) satisfies Record<ExperimentColumn, undefined> as Record<string, unknown>;
const blankVariant = (experimentId: string) =>
  ({
    id: undefined,
    experimentId,
    name: undefined,
    weight: undefined,
    config: undefined,
    isControl: undefined,
    position: undefined,
    createdAt: undefined,
  }) satisfies Record<VariantColumn | 'experimentId', unknown> as Record<string, unknown>;

function metricsRow(experimentId: string, item: unknown): VariantMetricsRow {
  const r = decode.array(item, 'metrics row');
  return {
    experimentId,
    variantId: decode.string(r[0], 'metrics.variantId'),
    variantName: decode.string(r[1], 'metrics.variantName'),
    exposures: decode.number(r[2], 'metrics.exposures'),
    uniqueUsers: decode.number(r[3], 'metrics.uniqueUsers'),
    conversions: decode.number(r[4], 'metrics.conversions'),
    conversionRate: decode.number(r[5], 'metrics.conversionRate'),
    avgMetricValue: r[6] === null ? null : decode.number(r[6], 'metrics.avgMetricValue'),
  };
}

function auditEntry(item: unknown): AuditRow {
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
}

const dialect = new PgDialect();
const shapes = new Map<string, ReadShape>();
/**
 * Distinct projections kept (and so prepared on each connection). Past it, a new projection reads every
 * column, whose shapes are few (the nested lists and the audit page size), so no client can make the
 * server prepare statements without end by varying its selections.
 */
const MAX_PROJECTIONS = 256;

/** Which nested lists a read includes (and the audit page): reads that agree on it can share a statement. */
export const includedListsKey = (include: ExperimentInclude) =>
  `${include.variants ? 'v' : ''}${include.metrics ? 'm' : ''}${include.assignmentCount ? 'c' : ''}:${include.auditLimit ?? ''}`;

/** The shape of a read (cached): its statement text and decoder. */
function readShape(include: ExperimentInclude): ReadShape {
  if (include.auditLimit !== undefined && !Number.isSafeInteger(include.auditLimit))
    throw new RangeError(`audit limit must be an integer, got ${include.auditLimit}`);
  const columns = (include.columns ?? ALL_EXPERIMENT_COLUMNS) | 1;
  const variantColumns = include.variants ? (include.variantColumns ?? ALL_VARIANT_COLUMNS) | 1 : 0;
  const key = `${includedListsKey(include)}:${columns}:${variantColumns}`;
  let shape = shapes.get(key);
  if (shape) return shape;
  const projected =
    columns !== ALL_EXPERIMENT_COLUMNS || (include.variants && variantColumns !== ALL_VARIANT_COLUMNS);
  if (projected && shapes.size >= MAX_PROJECTIONS)
    return readShape({ ...include, columns: undefined, variantColumns: undefined });
  shape = buildShape(include, columns, variantColumns);
  shapes.set(key, shape);
  return shape;
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
  const shape = readShape(include);
  const rows = await queryPreparedRows<{ e: unknown; total: unknown }>(
    db,
    sql`/* listExperimentsWith */
      SELECT ${shape.text} AS "e", ${total} AS "total"
        FROM ${e} ${where}
       ORDER BY ${e.createdAt} DESC, ${e.id} DESC
       LIMIT ${params.limit}`,
    'listExperimentsWith',
  );
  return {
    rows: rows.map((row) => shape.decode(row.e)),
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
  const shape = readShape(include);
  const rows = await queryPreparedRows<{ e: unknown }>(
    db,
    sql`/* getExperimentsWith */
      SELECT ${shape.text} AS "e" FROM ${e}
       -- = ANY of arrays (not IN subqueries): the OR then becomes a BitmapOr of the two unique indexes
       -- instead of a scan of every experiment.
       WHERE ${e.id} = ANY (ARRAY(SELECT value::uuid FROM json_array_elements_text(${jsonParam(refs.ids)})))
          OR ${e.key} = ANY (ARRAY(SELECT value FROM json_array_elements_text(${jsonParam(refs.keys)})))`,
    'getExperimentsWith',
  );
  return rows.map((row) => shape.decode(row.e));
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
