/**
 * Metric definitions: validation, the rules on what may change, and audit (each change in one transaction
 * with its audit_log row). What a definition means for analysis is applied by src/results/service.ts; its
 * conversion window by the aggregates (drizzle/repeatable/metric_definitions.sql).
 */
import { z } from 'zod';
import { LIMITS } from '../config';
import {
  ConflictError,
  NotFoundError,
  RuleViolationError,
  ValidationError,
  pgErrorCode,
} from '../common/errors';
import { absentWhenNull, finiteNumber, parse, slug, text, uuid } from '../common/validation';
import type { Database, Db } from '../db/client';
import { getExperimentIdsWithCovariate } from '../aggregates/read';
import { rebuildStats } from '../aggregates/rebuild';
import { insertAudit, getExperimentsByIds } from '../experiments/repository';
import { METRIC_DIRECTIONS, METRIC_KINDS, METRIC_ROLES } from './definitions';
import * as repo from './repository';
import type { MetricRow } from './repository';

export interface MetricServiceDeps {
  db: Database;
  actor: { name: string };
}

const name = text('name', { min: 1, max: LIMITS.nameMaxLength, trim: true });
const description = text('description', { max: LIMITS.descriptionMaxLength }).nullish();
const eventName = slug('eventName', LIMITS.metricNameMaxLength);
const denominatorEventName = slug('denominatorEventName', LIMITS.metricNameMaxLength);
const capValue = finiteNumber('capValue').refine(
  (v) => v > 0 && v <= LIMITS.maxEventValue,
  `capValue must be more than 0 and at most ${LIMITS.maxEventValue}`,
);
/**
 * A percentile cap needs the distribution of per-unit totals, which the maintained sufficient statistics do
 * not hold (and a percentile cannot be maintained exactly by adding deltas). Refused rather than approximated.
 */
const capPercentile = z
  .number()
  .nullish()
  .refine(
    (v) => v == null,
    'capPercentile is not supported: a percentile needs the distribution of per-unit totals, which the maintained statistics do not keep exactly; use capValue',
  );
const conversionWindowHours = finiteNumber('conversionWindowHours').refine(
  (v) => v > 0 && v <= LIMITS.maxConversionWindowHours,
  `conversionWindowHours must be more than 0 and at most ${LIMITS.maxConversionWindowHours}`,
);

/** RATIO needs a denominator; the other kinds must not have one. */
function kindRules(
  m: { kind?: string; denominatorEventName?: string | null; capValue?: number | null },
  ctx: z.RefinementCtx,
) {
  if (m.kind === 'RATIO' && m.denominatorEventName == null)
    ctx.addIssue({
      code: 'custom',
      path: ['denominatorEventName'],
      message: 'a RATIO metric needs a denominatorEventName',
    });
  if (m.kind !== undefined && m.kind !== 'RATIO' && m.denominatorEventName != null)
    ctx.addIssue({
      code: 'custom',
      path: ['denominatorEventName'],
      message: 'only a RATIO metric has a denominatorEventName',
    });
  if (m.kind === 'RATIO' && m.capValue != null)
    ctx.addIssue({
      code: 'custom',
      path: ['capValue'],
      message: 'a RATIO metric cannot be capped (its delta-method statistics are of uncapped totals)',
    });
}

export const createMetricInput = z
  .object({
    key: slug('key'),
    name,
    description,
    kind: z.enum(METRIC_KINDS),
    eventName,
    denominatorEventName: denominatorEventName.nullish(),
    direction: z
      .enum(METRIC_DIRECTIONS)
      .nullish()
      .transform((v) => v ?? 'INCREASE'),
    capValue: capValue.nullish(),
    capPercentile,
    conversionWindowHours: conversionWindowHours.nullish(),
  })
  .superRefine(kindRules);

/** Null description, denominatorEventName, capValue or conversionWindowHours clears it; null elsewhere leaves it. */
export const updateMetricInput = z.object({
  name: absentWhenNull(name),
  description,
  kind: absentWhenNull(z.enum(METRIC_KINDS)),
  eventName: absentWhenNull(eventName),
  denominatorEventName: denominatorEventName.nullish(),
  direction: absentWhenNull(z.enum(METRIC_DIRECTIONS)),
  capValue: capValue.nullish(),
  capPercentile,
  conversionWindowHours: conversionWindowHours.nullish(),
});

/** One metric an experiment lists (by the metric's key) with its role. */
export const metricRoleInput = z
  .object({
    metric: slug('metric'),
    role: z.enum(METRIC_ROLES),
    toleratedHarm: finiteNumber('toleratedHarm')
      .refine(
        (v) => v < 0 && v > -1,
        'toleratedHarm must be between -1 and 0 (exclusive), e.g. -0.02 for −2 %',
      )
      .nullish()
      .transform((v) => v ?? null),
  })
  .superRefine((r, ctx) => {
    if (r.role !== 'GUARDRAIL' && r.toleratedHarm !== null)
      ctx.addIssue({
        code: 'custom',
        path: ['toleratedHarm'],
        message: 'only a GUARDRAIL metric has a toleratedHarm',
      });
  });

export const metricRolesInput = z
  .array(metricRoleInput)
  .max(LIMITS.maxMetricSettings, `at most ${LIMITS.maxMetricSettings} metrics`)
  .superRefine((roles, ctx) => {
    const seen = new Set<string>();
    roles.forEach((r, i) => {
      if (seen.has(r.metric))
        ctx.addIssue({ code: 'custom', path: [i, 'metric'], message: `duplicate metric "${r.metric}"` });
      seen.add(r.metric);
    });
    if (roles.length > 0 && !roles.some((r) => r.role === 'PRIMARY'))
      ctx.addIssue({ code: 'custom', path: [], message: 'at least one metric must be PRIMARY' });
  });

const pageSize = z
  .number()
  .int('first must be an integer')
  .min(0, `first must be between 0 and ${LIMITS.maxPageSize}`)
  .max(LIMITS.maxPageSize, `first must be between 0 and ${LIMITS.maxPageSize}`)
  .nullish()
  .transform((v) => v ?? LIMITS.defaultPageSize);

/** `metrics(first, after, includeArchived)`; the cursor is decoded by the GraphQL layer that made it. */
export const metricListArgs = z.object({
  first: pageSize,
  after: text('after', { max: LIMITS.cursorMaxLength }).nullish(),
  includeArchived: z
    .boolean()
    .nullish()
    .transform((v) => v ?? false),
});

export type CreateMetricInput = z.input<typeof createMetricInput>;
export type UpdateMetricInput = z.input<typeof updateMetricInput>;
export type MetricRoleInput = z.input<typeof metricRoleInput>;
export type ResolvedMetricRole = repo.MetricRoleParams & { metric: MetricRow };

function defined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The metrics of a role list, looked up by key. Unknown or archived keys are a ValidationError naming the
 * entry (path relative to the list, prefixed by the caller's root).
 */
export async function resolveMetricRoles(
  db: Db,
  roles: z.output<typeof metricRolesInput>,
  root: string[],
): Promise<ResolvedMetricRole[]> {
  const found = new Map(
    (
      await repo.getMetricsByKeys(
        db,
        roles.map((r) => r.metric),
      )
    ).map((m) => [m.key, m]),
  );
  const problems: { path: string[]; message: string }[] = [];
  const resolved = roles.flatMap((r, i) => {
    const metric = found.get(r.metric);
    if (!metric || metric.archivedAt) {
      problems.push({
        path: [...root, String(i), 'metric'],
        message: metric ? `metric "${r.metric}" is archived` : `no metric with key "${r.metric}"`,
      });
      return [];
    }
    return [{ metricId: metric.id, role: r.role, toleratedHarm: r.toleratedHarm, metric }];
  });
  if (problems.length) throw new ValidationError(problems);
  return resolved;
}

export function createMetricService({ db, actor }: MetricServiceDeps) {
  async function audit(tx: Db, action: string, metricId: string, details: Record<string, unknown>) {
    await insertAudit(tx, { actor: actor.name, action, entityType: 'metric', entityId: metricId, details });
  }

  /** CUPED: the products of a covariate key follow its metric's event; recount the experiments using it. */
  async function recountCovariate(tx: Db, key: string) {
    const ids = await getExperimentIdsWithCovariate(tx, key);
    if (ids.length > 0) await rebuildStats(tx, ids);
  }

  async function mustLock(tx: Db, id: string): Promise<MetricRow> {
    const row = await repo.lockMetric(tx, id);
    if (!row) throw new NotFoundError('Metric', id);
    return row;
  }

  return {
    async create(raw: CreateMetricInput): Promise<MetricRow> {
      const { capPercentile: _refused, ...input } = parse(createMetricInput, raw, ['input']);
      try {
        return await db.transaction(async (tx) => {
          const created = await repo.createMetric(tx, input);
          // Covariates recorded under this key were paired with the event of the same name until now.
          if (created.eventName !== created.key) await recountCovariate(tx, created.key);
          await audit(tx, 'metric.created', created.id, { after: created });
          return created;
        });
      } catch (err) {
        if (pgErrorCode(err) === '23505')
          throw new ConflictError(`A metric with key "${input.key}" already exists`, 'key');
        throw err;
      }
    },

    async update(id: string, raw: UpdateMetricInput): Promise<MetricRow> {
      parse(uuid('id'), id, ['id']);
      const { capPercentile: _refused, ...input } = parse(updateMetricInput, raw, ['input']);
      return db.transaction(async (tx) => {
        const before = await mustLock(tx, id);
        const patch = defined(input);
        const next = { ...before, ...patch };
        // The combined row must still be a valid definition (e.g. kind RATIO needs its denominator).
        const check = z
          .object({})
          .superRefine((_v, ctx) => kindRules(next, ctx))
          .safeParse({});
        if (!check.success) {
          throw new ValidationError(
            check.error.issues.map((i) => ({ path: ['input', ...i.path.map(String)], message: i.message })),
          );
        }
        const users = await repo.getExperimentIdsUsingMetric(tx, id);
        const started = (await getExperimentsByIds(tx, users)).filter((e) => e.status !== 'draft');
        const counts =
          next.kind !== before.kind ||
          next.eventName !== before.eventName ||
          next.denominatorEventName !== before.denominatorEventName;
        if (counts && started.length > 0) {
          // Which events a metric counts is part of what a started experiment decided on.
          throw new RuleViolationError(
            'METRIC_IN_USE',
            `kind, eventName and denominatorEventName cannot change while started experiments list the metric (${started.map((e) => e.key).join(', ')}); create a new metric`,
          );
        }
        const after = (await repo.updateMetric(tx, id, patch))!;
        // The default conversion window decides which stored events count: recount the experiments using it.
        if (after.conversionWindowHours !== before.conversionWindowHours && started.length > 0) {
          await rebuildStats(
            tx,
            started.map((e) => e.id),
          );
        }
        if (after.eventName !== before.eventName) await recountCovariate(tx, after.key);
        await audit(tx, 'metric.updated', id, { before, after });
        return after;
      });
    },

    async archive(id: string): Promise<MetricRow> {
      parse(uuid('id'), id, ['id']);
      return db.transaction(async (tx) => {
        const before = await mustLock(tx, id);
        if (before.archivedAt) return before;
        const after = (await repo.updateMetric(tx, id, { archivedAt: new Date() }))!;
        await audit(tx, 'metric.archived', id, { before, after });
        return after;
      });
    },
  };
}

export type MetricService = ReturnType<typeof createMetricService>;
