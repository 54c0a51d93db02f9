/**
 * Recording exposures and conversions, one at a time or in batches, through one pipeline.
 *
 * An event names the experiment and the unit; its variant is the unit's stored assignment. A client that
 * evaluated locally (GrowthBook SDK) may pass the variant: with no stored assignment the event also
 * records it, and a different stored assignment rejects the event, which keeps units exposed to several
 * variants out of the numbers. Event ids make retries idempotent.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { EXPOSURE_METRIC, NONE_LEVEL, OTHER_LEVEL } from '../aggregates/constants';
import { type FoldEvent, foldIntoAggregates } from '../aggregates/fold';
import { admitDimensions } from '../aggregates/segments';
import * as assignmentsRepo from '../assignments/repository';
import type { AssignmentDeps } from '../assignments/service';
import { LIMITS, slugPattern } from '../config';
import {
  type DomainError,
  NotAssignedError,
  NotFoundError,
  ValidationError,
  VariantMismatchError,
} from '../common/errors';
import {
  experimentKeyRef,
  finiteNumber,
  isJsonObject,
  isStorable,
  jsonObject,
  parse,
  sci,
  slug,
  text,
  userId,
  uuid,
  validationError,
} from '../common/validation';
import type { Database, Db } from '../db/client';
import * as experimentsRepo from '../experiments/repository';
import type { ExperimentRow, VariantRow } from '../experiments/repository';
import { notifyResultsChanged } from '../live/updates';
import { oldestAcceptedEvent } from './partitions';
import { type EventRow, insertEvents, insertForcedEvents } from './repository';

export { EXPOSURE_METRIC };

export const EVENT_KINDS = ['EXPOSURE', 'CONVERSION'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const occurredAt = z
  .date({ error: 'occurredAt must be an ISO 8601 date-time' })
  .refine((d) => !Number.isNaN(d.getTime()), 'occurredAt must be a valid date-time')
  .refine(
    (d) => d.getTime() <= Date.now() + LIMITS.occurredAtMaxFutureMs,
    `occurredAt must not be more than ${LIMITS.occurredAtMaxFutureMs / 60_000} minutes in the future`,
  )
  .nullish();
const metadata = jsonObject('metadata', LIMITS.metadataMaxBytes).nullish();
const experimentKey = experimentKeyRef();
const conversionMetric = slug('metricName', LIMITS.metricNameMaxLength).refine((v) => v !== EXPOSURE_METRIC, {
  message: `metricName "${EXPOSURE_METRIC}" is reserved: record exposures with kind EXPOSURE / recordExposure`,
});
// Bounded so the maintained sums of squares stay finite (a float8 overflow would fail the whole batch),
// and away from 0 so squares of per-unit totals never underflow (PostgreSQL refuses that too).
const value = finiteNumber('value')
  .refine(
    (v) => Math.abs(v) <= LIMITS.maxEventValue,
    `value must be between -${sci(LIMITS.maxEventValue)} and ${sci(LIMITS.maxEventValue)}`,
  )
  .refine(
    (v) => v === 0 || Math.abs(v) >= LIMITS.minEventValue,
    `value must be 0 or at least ${sci(LIMITS.minEventValue)} in absolute value`,
  );

/**
 * CUPED covariates: `{ <metric key>: number }`, the unit's pre-period value of each metric (e.g. its watch
 * minutes in the 14 days before). Keys are metric keys (slugs), values bounded like event values.
 */
const covariateKey = slug('covariates key', LIMITS.metricNameMaxLength);
const covariates = z
  .custom<Record<string, unknown>>(isJsonObject, 'covariates must be a JSON object of numbers by metric key')
  .superRefine((v, ctx) => {
    const keys = Object.keys(v);
    if (keys.length > LIMITS.maxCovariates) {
      ctx.addIssue({
        code: 'custom',
        message: `covariates may name at most ${LIMITS.maxCovariates} metrics`,
      });
      return;
    }
    for (const key of keys) {
      const named = covariateKey.safeParse(key);
      if (!named.success) {
        ctx.addIssue({ code: 'custom', path: [key], message: named.error.issues[0].message });
        continue;
      }
      const checked = value.safeParse(v[key]);
      if (!checked.success) {
        const problem = checked.error.issues[0].message.replace(/^value/, `covariates.${key}`);
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: typeof v[key] === 'number' ? problem : `covariates.${key} must be a number`,
        });
      }
    }
  })
  .transform((v) => v as Record<string, number>);
const DIMENSION_KEY = slugPattern(LIMITS.dimensionKeyMaxLength);
/**
 * An exposure's segment levels, `{device: "ios"}`: at most LIMITS.maxDimensions slug keys, each a non-empty
 * string level (levels starting with `__` are reserved for OTHER_LEVEL and NONE_LEVEL). Each problem is
 * reported at its key's path.
 */
const dimensions = z
  .custom<NonNullable<unknown>>((v) => v != null, 'dimensions must be a JSON object')
  .pipe(
    z
      .custom<Record<string, unknown>>(isJsonObject, 'dimensions must be a JSON object of strings')
      .superRefine((v, ctx) => {
        const keys = Object.keys(v);
        if (keys.length > LIMITS.maxDimensions) {
          ctx.addIssue({
            code: 'custom',
            message: `dimensions must have at most ${LIMITS.maxDimensions} keys (got ${keys.length})`,
          });
          return;
        }
        for (const key of keys) {
          const level = v[key];
          const problem = !DIMENSION_KEY.test(key)
            ? `dimensions key "${key.slice(0, LIMITS.dimensionKeyMaxLength)}" must be a slug of at most ${LIMITS.dimensionKeyMaxLength} characters (a-z, 0-9, "_", "." and "-", starting with a letter or digit)`
            : typeof level !== 'string'
              ? `dimensions.${key} must be a string`
              : level.length === 0 || level.length > LIMITS.dimensionLevelMaxLength
                ? `dimensions.${key} must be 1..${LIMITS.dimensionLevelMaxLength} characters`
                : !isStorable(level)
                  ? `dimensions.${key} must not contain NUL characters (\\u0000) or unpaired UTF-16 surrogates`
                  : level.startsWith('__')
                    ? `dimensions.${key} must not start with "__" (reserved for ${OTHER_LEVEL} and ${NONE_LEVEL})`
                    : null;
          if (problem) ctx.addIssue({ code: 'custom', path: [key], message: problem });
        }
      })
      .transform((v) => v as Record<string, string>),
  );

const common = {
  userId,
  variantId: uuid('variantId').nullish(),
  eventId: uuid('eventId').nullish(),
  occurredAt,
  metadata,
};
/**
 * The event inputs. GraphQL's input types are checked against these by the compiler (see
 * src/graphql/input.ts); optional fields are nullish because GraphQL sends null for an explicit null.
 */
export const exposureInput = z.object({
  experimentKey,
  ...common,
  covariates: covariates.nullish(),
  dimensions: dimensions.nullish(),
});
export const conversionInput = z.object({
  experimentKey,
  ...common,
  metricName: conversionMetric,
  value: value.nullish(),
});
export const metricInput = z.object({
  experimentId: uuid('experimentId'),
  metricName: slug('metricName', LIMITS.metricNameMaxLength),
  value: value.nullish(),
  ...common,
});
const batchMetricName = text('metricName', { max: LIMITS.metricNameMaxLength });

export const batchEvent = z
  .object({
    kind: z.enum(EVENT_KINDS, { error: 'kind must be EXPOSURE or CONVERSION' }),
    experimentKey,
    ...common,
    eventId: uuid('eventId'),
    metricName: batchMetricName.nullish(),
    value: value.nullish(),
    covariates: covariates.nullish(),
    dimensions: dimensions.nullish(),
  })
  .superRefine((e, ctx) => {
    if (e.kind === 'CONVERSION' && e.dimensions != null) {
      ctx.addIssue({
        code: 'custom',
        path: ['dimensions'],
        message: 'dimensions are read from exposures only: send them with the EXPOSURE',
      });
    }
    if (e.kind === 'EXPOSURE' || e.covariates == null) {
      // covariates describe the unit before the experiment: they travel with its exposure.
    } else {
      ctx.addIssue({
        code: 'custom',
        path: ['covariates'],
        message: 'covariates belong on an EXPOSURE (the unit’s first exposure’s count)',
      });
    }
    if (e.kind !== 'CONVERSION') return;
    // Zod runs this refinement after a failed field check too: report a bad metricName once.
    if (e.metricName != null && !batchMetricName.safeParse(e.metricName).success) return;
    const check = conversionMetric.safeParse(e.metricName ?? undefined);
    if (!check.success) {
      ctx.addIssue({
        code: 'custom',
        path: ['metricName'],
        message:
          e.metricName == null ? 'metricName is required for a CONVERSION' : check.error.issues[0].message,
      });
    }
  });

export type ExposureInput = z.input<typeof exposureInput>;
export type ConversionInput = z.input<typeof conversionInput>;
export type MetricInput = z.input<typeof metricInput>;
export type BatchEventInput = z.input<typeof batchEvent>;

export interface RecordEventResult {
  eventId: string;
  duplicate: boolean;
  experimentId: string;
  variantId: string;
}

/** An event that passed validation, before its variant is resolved. */
interface Candidate {
  index: number;
  kind: 'exposure' | 'conversion';
  experimentRef: { key: string } | { id: string };
  userId: string;
  variantId: string | null;
  eventId: string;
  occurredAt: Date;
  metadata: Record<string, unknown>;
  metricName: string | null;
  value: number | null;
  covariates: Record<string, number> | null;
  /** Exposures only: the segment levels as sent (admitted, or folded into OTHER_LEVEL, when written). */
  dimensions: Record<string, string> | null;
}

export type EventOutcome =
  | { index: number; status: 'accepted' | 'duplicate'; result: RecordEventResult }
  | { index: number; status: 'rejected'; error: DomainError };

/**
 * Resolves, validates and writes events. Rejected events (bad input, unknown experiment, unassigned
 * unit, variant mismatch) are reported by index and write nothing; the rest are written in one
 * transaction with a bounded number of statements, whatever the batch size.
 */
async function ingest(
  db: Database,
  candidates: Candidate[],
  rejected: EventOutcome[],
  deps: AssignmentDeps,
): Promise<EventOutcome[]> {
  const outcomes: EventOutcome[] = [...rejected];
  const reject: Reject = (c, error) => outcomes.push({ index: c.index, status: 'rejected', error });
  const located = await locateExperiments(db, candidates, deps, reject);
  const stored = await storedAssignments(db, located, deps);
  const forced = await forcedUnits(db, located, stored);
  const variants = await variantsToCheck(db, located, stored);
  const { ready, enrolments } = resolveVariants(located, stored, forced, variants, reject);
  if (ready.length > 0) {
    const written = await write(db, ready, enrolments, reject, !deps.resultsChanged);
    outcomes.push(...written.outcomes);
    deps.resultsChanged?.afterCommit(written.changed);
  }
  return outcomes.sort((a, b) => a.index - b.index);
}

/** An event whose experiment exists. */
interface Located {
  c: Candidate;
  experiment: ExperimentRow;
  /** The experiment's QA overrides (userId → variantId) when its configuration came from the cache. */
  overrides?: ReadonlyMap<string, string>;
}

/**
 * An event with its variant, ready to write; `enrolls` when the batch creates the unit's assignment,
 * `forced` when the unit is a QA override's (its events are kept apart from the aggregates).
 */
interface Ready extends Located {
  variantId: string;
  enrolls: boolean;
  forced?: boolean;
}

type Reject = (c: Candidate, error: DomainError) => void;

const pairKey = assignmentsRepo.assignmentKey;

/** Each event's experiment, by key (from the configuration cache when there is one) or id: ≤ 2 statements. */
async function locateExperiments(
  db: Database,
  candidates: readonly Candidate[],
  deps: AssignmentDeps,
  reject: Reject,
): Promise<Located[]> {
  const keys = [
    ...new Set(candidates.flatMap((c) => ('key' in c.experimentRef ? [c.experimentRef.key] : []))),
  ];
  const ids = [...new Set(candidates.flatMap((c) => ('id' in c.experimentRef ? [c.experimentRef.id] : [])))];
  const config = deps.config;
  const overridesOf = new Map<string, ReadonlyMap<string, string>>();
  const byKeyFound = config
    ? (await Promise.all(keys.map((key) => config(db, key)))).flatMap((found) => {
        if (found?.overrides) overridesOf.set(found.experiment.id, found.overrides);
        return found ? [found.experiment] : [];
      })
    : await experimentsRepo.getExperimentsByKeys(db, keys);
  const experiments = [...byKeyFound, ...(await experimentsRepo.getExperimentsByIds(db, ids))];
  const retention = deps.eventRetentionDays;
  const oldest = retention ? oldestAcceptedEvent(retention, new Date()) : null;
  const byKey = new Map(experiments.map((e) => [e.key, e]));
  const byId = new Map(experiments.map((e) => [e.id, e]));
  const located: Located[] = [];
  for (const c of candidates) {
    const ref = c.experimentRef;
    const experiment = 'key' in ref ? byKey.get(ref.key) : byId.get(ref.id);
    if (!experiment) reject(c, new NotFoundError('Experiment', 'key' in ref ? ref.key : ref.id));
    else if (c.occurredAt.getTime() < experiment.createdAt.getTime() - LIMITS.occurredAtMaxBeforeCreationMs)
      reject(c, ValidationError.field(fieldPath(c, 'occurredAt'), predatesMessage(experiment)));
    else if (oldest && c.occurredAt < oldest)
      // Its raw rows and id would be gone already: a retry could not be told from a new event.
      reject(
        c,
        ValidationError.field(
          fieldPath(c, 'occurredAt'),
          `occurredAt must be within the last ${retention} days (EVENT_RETENTION_DAYS): older raw events are not kept`,
        ),
      );
    else located.push({ c, experiment, overrides: overridesOf.get(experiment.id) });
  }
  return located;
}

/**
 * The QA override of every unit with no stored assignment that has one (in an experiment that is not
 * archived, where overrides stop applying), keyed by assignmentKey: from the cached configuration when it
 * came from there, else one statement, and none at all when every unit is assigned.
 */
async function forcedUnits(
  db: Database,
  located: readonly Located[],
  stored: ReadonlyMap<string, string>,
): Promise<Map<string, string>> {
  const forced = new Map<string, string>();
  const unknown: { experimentId: string; userId: string }[] = [];
  for (const { c, experiment, overrides } of located) {
    const key = pairKey(experiment.id, c.userId);
    if (stored.has(key) || experiment.status === 'archived') continue;
    if (!overrides) unknown.push({ experimentId: experiment.id, userId: c.userId });
    else {
      const variantId = overrides.get(c.userId);
      if (variantId) forced.set(key, variantId);
    }
  }
  for (const o of await experimentsRepo.getOverridesByPairs(db, unknown)) {
    forced.set(pairKey(o.experimentId, o.userId), o.variantId);
  }
  return forced;
}

/**
 * The stored variant of every (experiment, unit) pair, keyed by assignmentKey: those this process
 * remembers (assignments never change), then one statement for the rest.
 */
async function storedAssignments(
  db: Database,
  located: readonly Located[],
  deps: AssignmentDeps,
): Promise<Map<string, string>> {
  const stored = new Map<string, string>();
  const unknown: { experimentId: string; userId: string }[] = [];
  for (const { c, experiment } of located) {
    const recalled = deps.memory?.recall(experiment.id, c.userId);
    if (recalled) stored.set(pairKey(experiment.id, c.userId), recalled.variantId);
    else unknown.push({ experimentId: experiment.id, userId: c.userId });
  }
  for (const a of await assignmentsRepo.getAssignmentsByPairs(db, unknown)) {
    deps.memory?.remember(a);
    stored.set(pairKey(a.experimentId, a.userId), a.variantId);
  }
  return stored;
}

/**
 * Variants, loaded only for experiments where an event names one that differs from the stored
 * assignment (or there is none): to enroll the unit, or to tell a variant of another experiment (bad
 * input) from a mismatch.
 */
async function variantsToCheck(
  db: Database,
  located: readonly Located[],
  stored: ReadonlyMap<string, string>,
): Promise<Map<string, VariantRow>> {
  const experimentIds = new Set(
    located
      .filter(
        ({ c, experiment }) => c.variantId && stored.get(pairKey(experiment.id, c.userId)) !== c.variantId,
      )
      .map((l) => l.experiment.id),
  );
  const variants = await experimentsRepo.getVariantsByExperimentIds(db, [...experimentIds]);
  return new Map(variants.map((v) => [v.id, v]));
}

/**
 * Each event's variant (the stored assignment, or the one it names for a unit the batch enrolls), or why
 * it is rejected; and the assignments the batch creates. No I/O.
 */
function resolveVariants(
  located: readonly Located[],
  stored: ReadonlyMap<string, string>,
  forced: ReadonlyMap<string, string>,
  variants: ReadonlyMap<string, VariantRow>,
  reject: Reject,
): { ready: Ready[]; enrolments: Map<string, assignmentsRepo.AssignmentRequest> } {
  const ready: Ready[] = [];
  const enrolments = new Map<string, assignmentsRepo.AssignmentRequest>();
  for (const { c, experiment } of located) {
    const key = pairKey(experiment.id, c.userId);
    const forcedVariant = forced.get(key);
    if (forcedVariant) {
      // A forced unit is never enrolled, not even by an event naming its variant (an SDK that evaluated
      // the override locally): it would enter the randomised numbers.
      if (c.variantId && c.variantId !== forcedVariant)
        reject(c, new VariantMismatchError(forcedVariant, c.variantId));
      else ready.push({ c, experiment, variantId: forcedVariant, enrolls: false, forced: true });
      continue;
    }
    const assigned = stored.get(key) ?? enrolments.get(key)?.variantId;
    if (assigned && (!c.variantId || c.variantId === assigned)) {
      ready.push({ c, experiment, variantId: assigned, enrolls: !stored.has(key) });
      continue;
    }
    if (!c.variantId) {
      reject(c, new NotAssignedError(experiment.key, c.userId));
      continue;
    }
    const variant = variants.get(c.variantId);
    if (!variant || variant.experimentId !== experiment.id) {
      reject(
        c,
        ValidationError.field(
          fieldPath(c, 'variantId'),
          `variant ${c.variantId} does not belong to experiment ${experiment.key}`,
        ),
      );
      continue;
    }
    if (assigned) {
      reject(c, new VariantMismatchError(assigned, c.variantId));
      continue;
    }
    if (experiment.status !== 'running') {
      reject(
        c,
        ValidationError.field(
          fieldPath(c, 'experimentKey'),
          `experiment ${experiment.key} is ${experiment.status}: only a running experiment enrolls new users`,
        ),
      );
      continue;
    }
    enrolments.set(key, { experimentId: experiment.id, userId: c.userId, variantId: c.variantId });
    ready.push({ c, experiment, variantId: c.variantId, enrolls: true });
  }
  return { ready, enrolments };
}

/**
 * One transaction: the batch's enrolments, then its events (raw rows, then the fold). Returns the
 * outcome of every event it did not reject: accepted the first time an event id is recorded, a
 * duplicate otherwise (a replay, or a repeat within the batch); and the experiments whose numbers
 * changed, which it NOTIFYs (`notify`) before committing.
 */
async function write(
  db: Database,
  ready: readonly Ready[],
  enrolments: ReadonlyMap<string, assignmentsRepo.AssignmentRequest>,
  reject: Reject,
  notify: boolean,
): Promise<{ outcomes: EventOutcome[]; changed: string[] }> {
  return db.transaction(async (tx) => {
    const writable = await admit(tx, await enroll(tx, ready, enrolments, reject), reject);
    // An event id names one event: within a batch only its first occurrence is written, the rest are
    // retries. Ids compare in canonical (lower-case) form, as PostgreSQL's uuid type does.
    const firstOfId = new Map<string, Ready>();
    for (const r of writable) {
      const id = r.c.eventId.toLowerCase();
      if (!firstOfId.has(id)) firstOfId.set(id, r);
    }
    const first = [...firstOfId.values()];
    const recorded = await recordEventRows(tx, first.filter((r) => !r.forced).map(eventRow));
    for (const id of await insertForcedEvents(tx, first.filter((r) => r.forced).map(eventRow)))
      recorded.add(id);
    const changed = [
      ...new Set(
        writable.flatMap(({ c, experiment }) =>
          recorded.has(c.eventId.toLowerCase()) ? [experiment.id] : [],
        ),
      ),
    ];
    // Live subscribers re-read once this commits: one notification per experiment with new events.
    if (notify) await notifyResultsChanged(tx, changed);
    const outcomes = writable.map(({ c, experiment, variantId }): EventOutcome => {
      const id = c.eventId.toLowerCase();
      const fresh = firstOfId.get(id)?.c === c && recorded.has(id);
      return {
        index: c.index,
        status: fresh ? 'accepted' : 'duplicate',
        result: { eventId: c.eventId, duplicate: !fresh, experimentId: experiment.id, variantId },
      };
    });
    return { outcomes, changed };
  });
}

/** The stored variant of every unit the batch enrolls (its own, or a concurrent request's that won). */
async function enroll(
  tx: Db,
  ready: readonly Ready[],
  enrolments: ReadonlyMap<string, assignmentsRepo.AssignmentRequest>,
  reject: Reject,
): Promise<Ready[]> {
  const winners = await assignmentsRepo.resolveAssignments(tx, [...enrolments.values()]);
  return ready.filter(({ c, experiment, variantId, enrolls }) => {
    if (!enrolls) return true;
    const resolved = winners.get(pairKey(experiment.id, c.userId));
    if (resolved === assignmentsRepo.CAP_REACHED) {
      // The experiment's unit cap (its schedule's stopAfterUnits) leaves no room to enrol this unit.
      reject(c, new NotAssignedError(experiment.key, c.userId));
      return false;
    }
    const winner = resolved?.assignment.variantId;
    if (winner && winner !== variantId) {
      // Another request enrolled this unit in a different variant first.
      reject(c, new VariantMismatchError(winner, variantId));
      return false;
    }
    return true;
  });
}

/**
 * The exposures' dimensions, admitted under the experiment's limits (a level past them becomes
 * OTHER_LEVEL); an exposure bringing a key past LIMITS.maxDimensions is rejected naming it.
 */
async function admit(tx: Db, ready: Ready[], reject: Reject): Promise<Ready[]> {
  const withDimensions = ready.filter((r) => r.c.dimensions);
  if (withDimensions.length === 0) return ready;
  const admitted = await admitDimensions(
    tx,
    withDimensions.map((r) => ({ experimentId: r.experiment.id, dimensions: r.c.dimensions! })),
  );
  const refused = new Set<Ready>();
  withDimensions.forEach((r, i) => {
    const a = admitted[i];
    if (a.ok) {
      r.c.dimensions = a.dimensions;
      return;
    }
    refused.add(r);
    reject(
      r.c,
      ValidationError.field(
        [...fieldPath(r.c, 'dimensions'), a.key],
        `experiment ${r.experiment.key} already uses ${LIMITS.maxDimensions} dimension keys (${a.keys.join(', ')}): "${a.key}" cannot be added`,
      ),
    );
  });
  return ready.filter((r) => !refused.has(r));
}

function eventRow({ c, experiment, variantId }: Ready): EventRow {
  return {
    kind: c.kind,
    eventId: c.eventId,
    experimentId: experiment.id,
    variantId,
    userId: c.userId,
    metricName: c.metricName,
    value: c.value,
    occurredAt: c.occurredAt.toISOString(),
    metadata: c.metadata,
    covariates: c.covariates,
    dimensions: c.dimensions,
  };
}

/**
 * Raw rows first, outside the ingestion lock (so batches of one experiment insert concurrently), then
 * the fold under it. Returns the (lower-case) ids of the events recorded: not those already stored under
 * either kind.
 */
async function recordEventRows(tx: Db, rows: readonly EventRow[]): Promise<Set<string>> {
  const recorded = await insertEvents(tx, rows);
  if (recorded.size === 0) return recorded;
  const inserted = rows.flatMap((r): FoldEvent[] => {
    const eventId = r.eventId.toLowerCase();
    if (!recorded.has(eventId)) return [];
    const { kind, experimentId, variantId, userId, metricName, value, occurredAt, covariates, dimensions } =
      r;
    return [
      {
        kind,
        eventId,
        experimentId,
        variantId,
        userId,
        metricName,
        value,
        occurredAt,
        covariates,
        dimensions,
      },
    ];
  });
  for (const id of await foldIntoAggregates(tx, inserted)) recorded.delete(id);
  return recorded;
}

/** An event cannot have happened before its experiment existed (beyond the clock-skew tolerance). */
function predatesMessage(experiment: ExperimentRow): string {
  const hours = LIMITS.occurredAtMaxBeforeCreationMs / 3_600_000;
  return `occurredAt must not be more than ${hours} hours before experiment ${experiment.key} was created (${experiment.createdAt.toISOString()})`;
}

/** Where a field lives in the caller's input: `input.x` for single events, `events.i.x` for batches. */
function fieldPath(c: Candidate, field: string): string[] {
  return c.index < 0 ? ['input', field] : ['events', String(c.index), field];
}

function candidate(
  index: number,
  kind: 'exposure' | 'conversion',
  experimentRef: Candidate['experimentRef'],
  input: {
    userId: string;
    variantId?: string | null;
    eventId?: string | null;
    occurredAt?: Date | null;
    metadata?: Record<string, unknown> | null;
    metricName?: string | null;
    value?: number | null;
    covariates?: Record<string, number> | null;
    dimensions?: Record<string, string> | null;
  },
): Candidate {
  return {
    index,
    kind,
    experimentRef,
    userId: input.userId,
    variantId: input.variantId ?? null,
    eventId: input.eventId ?? randomUUID(),
    occurredAt: input.occurredAt ?? new Date(),
    metadata: input.metadata ?? {},
    metricName: kind === 'conversion' ? (input.metricName ?? null) : null,
    value: kind === 'conversion' ? (input.value ?? 1) : null,
    covariates: kind === 'exposure' ? (input.covariates ?? null) : null,
    dimensions:
      kind === 'exposure' && input.dimensions && Object.keys(input.dimensions).length > 0
        ? input.dimensions
        : null,
  };
}

async function single(db: Database, c: Candidate, deps: AssignmentDeps): Promise<RecordEventResult> {
  const outcomes = await ingest(db, [c], [], deps);
  deps.observer?.events(outcomes);
  const [outcome] = outcomes;
  if (outcome.status === 'rejected') throw outcome.error;
  return outcome.result;
}

export async function recordExposure(
  db: Database,
  raw: ExposureInput,
  deps: AssignmentDeps = {},
): Promise<RecordEventResult> {
  const input = parse(exposureInput, raw, ['input']);
  return single(db, candidate(-1, 'exposure', { key: input.experimentKey }, input), deps);
}

export async function recordConversion(
  db: Database,
  raw: ConversionInput,
  deps: AssignmentDeps = {},
): Promise<RecordEventResult> {
  const input = parse(conversionInput, raw, ['input']);
  return single(db, candidate(-1, 'conversion', { key: input.experimentKey }, input), deps);
}

/** The seed system's signature: `exposure` goes to exposures, any other metric to conversions. */
export async function recordMetric(
  db: Database,
  raw: MetricInput,
  deps: AssignmentDeps = {},
): Promise<RecordEventResult> {
  const input = parse(metricInput, raw, ['input']);
  const kind = input.metricName === EXPOSURE_METRIC ? 'exposure' : 'conversion';
  return single(db, candidate(-1, kind, { id: input.experimentId }, input), deps);
}

export interface RecordEventsResult {
  accepted: number;
  duplicates: number;
  rejected: { index: number; code: string; message: string; error: DomainError }[];
  outcomes: EventOutcome[];
}

/** A batch of up to LIMITS.maxBatchSize events; each is accepted, a duplicate, or rejected by index. */
export async function recordEvents(
  db: Database,
  events: readonly unknown[],
  deps: AssignmentDeps = {},
): Promise<RecordEventsResult> {
  if (!Array.isArray(events)) throw ValidationError.field(['events'], 'events must be a list');
  if (events.length > LIMITS.maxBatchSize) {
    throw ValidationError.field(
      ['events'],
      `at most ${LIMITS.maxBatchSize} events per call (got ${events.length})`,
    );
  }
  const rejected: EventOutcome[] = [];
  const candidates: Candidate[] = [];
  events.forEach((raw, index) => {
    const result = batchEvent.safeParse(raw);
    if (!result.success) {
      rejected.push({
        index,
        status: 'rejected',
        error: validationError(result.error, ['events', String(index)]),
      });
      return;
    }
    const e = result.data;
    candidates.push(
      candidate(index, e.kind === 'EXPOSURE' ? 'exposure' : 'conversion', { key: e.experimentKey }, e),
    );
  });
  const outcomes = candidates.length ? await ingest(db, candidates, rejected, deps) : rejected;
  deps.observer?.events(outcomes);
  return {
    accepted: outcomes.filter((o) => o.status === 'accepted').length,
    duplicates: outcomes.filter((o) => o.status === 'duplicate').length,
    rejected: outcomes.flatMap((o) =>
      o.status === 'rejected'
        ? [{ index: o.index, code: o.error.code, message: o.error.message, error: o.error }]
        : [],
    ),
    outcomes,
  };
}
