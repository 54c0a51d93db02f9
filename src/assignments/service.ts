/**
 * Assignment: which variant a unit gets. Only running experiments enroll; an existing assignment always
 * wins (sticky, even after weights or targeting change); new units are targeted and bucketed exactly as
 * GrowthBook's SDKs do.
 */
import { z } from 'zod';
import { ValidationError } from '../common/errors';
import { experimentKeyRef, jsonObject, parse, userId as userIdSchema } from '../common/validation';
import { LIMITS } from '../config';
import type { Db } from '../db/client';
import type { ExperimentRow, VariantRow } from '../experiments/repository';
import * as experimentsRepo from '../experiments/repository';
import * as layersRepo from '../layers/repository';
import type { UsageObserver } from '../observability/metrics';
import type { AssignmentBatcher } from './batcher';
import { bucket, inLayerRanges } from './bucketing';
import * as repo from './repository';
import { type Attributes, matchesCondition } from './targeting';

export const ASSIGNMENT_REASONS = [
  'ASSIGNED',
  'EXISTING',
  'FORCED',
  'OUTSIDE_LAYER',
  'HOLDOUT',
  'NOT_TARGETED',
  'OUTSIDE_TRAFFIC',
  'NOT_RUNNING',
  'NOT_FOUND',
  'NO_ELIGIBLE_VARIANT',
  /** The experiment enrolled as many units as its schedule's stopAfterUnits; the scheduler completes it. */
  'CAP_REACHED',
] as const;
export type AssignmentReason = (typeof ASSIGNMENT_REASONS)[number];

export interface AssignmentResult {
  experiment: ExperimentRow | null;
  experimentKey: string;
  userId: string;
  variant: VariantRow | null;
  enrolled: boolean;
  reason: AssignmentReason;
  assignedAt: Date | null;
}

/** The configuration assignment needs; a cache may supply it instead of the database. */
export interface ExperimentConfig {
  experiment: ExperimentRow;
  variants: VariantRow[];
  /** QA overrides: userId → variantId (at most LIMITS.maxOverridesPerExperiment). */
  overrides?: ReadonlyMap<string, string>;
  /** The layer's hash seed when the experiment is in one (its ranges are on the experiment row). */
  layerSeed?: string | null;
  /** The HOLDOUT linked to the experiment or to its layer, with its variants. */
  holdout?: ExperimentConfig | null;
}

export type ConfigSource = (db: Db, key: string) => Promise<ExperimentConfig | null>;

export const loadConfigFromDb: ConfigSource = async (db, key) => {
  const experiment = await experimentsRepo.getExperiment(db, { key });
  if (!experiment) return null;
  const [variants, overrides, layer] = await Promise.all([
    experimentsRepo.getVariants(db, experiment.id),
    experimentsRepo.getOverridesByExperimentIds(db, [experiment.id]),
    experiment.layerId ? layersRepo.getLayer(db, { id: experiment.layerId }) : null,
  ]);
  const holdoutId = experiment.holdoutId ?? layer?.holdoutId ?? null;
  const holdoutRow = holdoutId ? await experimentsRepo.getExperiment(db, { id: holdoutId }) : null;
  const holdout = holdoutRow
    ? { experiment: holdoutRow, variants: await experimentsRepo.getVariants(db, holdoutRow.id) }
    : null;
  return {
    experiment,
    variants,
    overrides: new Map(overrides.map((o) => [o.userId, o.variantId])),
    layerSeed: layer?.hashSeed ?? null,
    holdout,
  };
};

/**
 * What assignVariant and the `assignment` query accept (also checked up front by the SDK endpoint, for
 * every key of a request, so a bad one writes nothing and never joins a statement shared with others).
 */
export const assignmentArgs = z.object({
  experimentKey: experimentKeyRef(),
  userId: userIdSchema,
});
export type AssignmentArgs = z.input<typeof assignmentArgs>;

/**
 * The attributes targeting conditions are evaluated against. `id` is the unit id (GrowthBook's hash
 * attribute), set from userId; a different `id` is refused, since an SDK given it would disagree.
 */
export const attributesArg = jsonObject('attributes', LIMITS.attributesMaxBytes).nullish();

/** assignVariant's arguments: the assignment's, plus the unit's attributes. */
export const assignArgs = assignmentArgs.extend({ attributes: attributesArg });
export type AssignArgs = z.input<typeof assignArgs>;

/**
 * One unit in several experiments at once (`POST /v1/assignments`): the same rules as assignVariant for
 * every key, checked once for the whole request, so a bad key is a 400 naming it (`experimentKeys.1`) and
 * nothing is assigned (no bad string joins a shared statement).
 */
export const assignRequest = z
  .object(
    {
      userId: userIdSchema,
      attributes: attributesArg,
      experimentKey: experimentKeyRef().optional(),
      experimentKeys: z
        .array(experimentKeyRef())
        .min(1, 'experimentKeys must not be empty')
        .max(LIMITS.maxAssignExperiments, `at most ${LIMITS.maxAssignExperiments} experimentKeys`)
        .optional(),
    },
    { error: 'the body must be a JSON object' },
  )
  .strict()
  .refine((b) => (b.experimentKey === undefined) !== (b.experimentKeys === undefined), {
    message: 'give either experimentKey or experimentKeys',
    path: ['experimentKey'],
  });

/** The object a condition sees: the caller's attributes with `id` = userId. */
export function targetingAttributes(userId: string, attributes: Attributes | null | undefined): Attributes {
  if (!attributes) return { id: userId };
  if (attributes.id !== undefined && attributes.id !== userId) {
    throw ValidationError.field(['attributes', 'id'], 'attributes.id must be the userId (or be left out)');
  }
  return { ...attributes, id: userId };
}

/** The seed a unit is hashed with: per experiment, so buckets in different experiments are independent. */
export function hashSeedOf(experiment: Pick<ExperimentRow, 'key' | 'hashSeed'>): string {
  return experiment.hashSeed ?? experiment.key;
}

/** Pure: whether a unit falls in the experiment's ranges of its layer (always, outside any layer). */
export function isInLayer(config: ExperimentConfig, userId: string): boolean {
  const { layerRanges } = config.experiment;
  if (!layerRanges) return true;
  // A layered experiment whose layer could not be read enrolls nobody rather than everybody.
  if (!config.layerSeed) return false;
  return inLayerRanges(config.layerSeed, userId, layerRanges);
}

/**
 * Pure: whether a RUNNING holdout linked to the experiment (or its layer) holds the unit out: the
 * holdout's bucketing puts it in the held-out group (the holdout's control variant).
 */
export function isHeldOut(config: ExperimentConfig, userId: string): boolean {
  const { holdout } = config;
  if (holdout?.experiment.status !== 'running') return false;
  return pickVariant(holdout, userId)?.isControl === true;
}

/**
 * Pure: what a RUNNING experiment decides for a unit without a stored assignment, in GrowthBook's order
 * (filters: layer, then holdout; then the condition; then bucketing). `variant` is null unless it enrolls.
 */
export function decideNewUnit(
  config: ExperimentConfig,
  userId: string,
  unit: Attributes,
): { variant: VariantRow | null; reason: 'OUTSIDE_LAYER' | 'HOLDOUT' | 'NOT_TARGETED' | 'BUCKETED' } {
  if (!isInLayer(config, userId)) return { variant: null, reason: 'OUTSIDE_LAYER' };
  if (isHeldOut(config, userId)) return { variant: null, reason: 'HOLDOUT' };
  if (!matchesCondition(config.experiment.targeting, unit)) return { variant: null, reason: 'NOT_TARGETED' };
  return { variant: pickVariant(config, userId), reason: 'BUCKETED' };
}

/** Pure: the variant a new unit would get, or null when outside the traffic allocation. */
export function pickVariant(config: ExperimentConfig, userId: string): VariantRow | null {
  const index = bucket({
    seed: hashSeedOf(config.experiment),
    userId,
    trafficAllocation: config.experiment.trafficAllocation,
    weights: config.variants.map((v) => v.weight),
  });
  return index < 0 ? null : config.variants[index];
}

/**
 * Stored assignments this process has seen. They never change once written (only deleting the
 * experiment removes them, and that invalidates the cache), so a returning unit needs no SQL at all.
 */
export interface AssignmentMemory {
  recall(experimentId: string, userId: string): repo.AssignmentRow | undefined;
  remember(row: repo.AssignmentRow): void;
}

/** What assignment runs with; each part is optional (tests and scripts use the database directly). */
export interface AssignmentDeps {
  /** Where configuration comes from: the in-process cache when enabled, else the database. */
  config?: ConfigSource;
  /** Stored assignments this process remembers. */
  memory?: AssignmentMemory;
  /** Groups the SQL of concurrent calls into one statement; without it each call runs its own. */
  batcher?: AssignmentBatcher;
  /** Told of every assignment decision and ingestion (the service's metrics). */
  observer?: UsageObserver;
  /** EVENT_RETENTION_DAYS: events older than the retention are refused (src/events/partitions.ts). */
  eventRetentionDays?: number | null;
  /**
   * Told after an ingesting transaction committed which experiments it changed (live updates through
   * Redis); without one, ingestion NOTIFYs inside its transaction instead.
   */
  resultsChanged?: import('../live/updates').ResultsPublisher;
}

export async function assignVariant(
  db: Db,
  experimentKey: string,
  userId: string,
  deps: AssignmentDeps = {},
  attributes?: Attributes | null,
): Promise<AssignmentResult> {
  parse(assignArgs, { experimentKey, userId, attributes });
  const result = await decide(db, experimentKey, userId, deps, attributes);
  deps.observer?.assignment(result.reason);
  return result;
}

/**
 * assignVariant for each experiment of a request (assignRequest), its arguments checked once: the
 * results in the order asked, and whether a list was asked for (`experimentKeys`).
 */
export async function assignRequested(
  db: Db,
  raw: unknown,
  deps: AssignmentDeps = {},
): Promise<{ results: AssignmentResult[]; list: boolean }> {
  const request = parse(assignRequest, raw);
  const keys = request.experimentKeys ?? [request.experimentKey!];
  const results = await Promise.all(
    keys.map((key) => decide(db, key, request.userId, deps, request.attributes)),
  );
  for (const result of results) deps.observer?.assignment(result.reason);
  return { results, list: request.experimentKeys !== undefined };
}

async function decide(
  db: Db,
  experimentKey: string,
  userId: string,
  deps: AssignmentDeps,
  attributes: Attributes | null | undefined,
): Promise<AssignmentResult> {
  // Arguments already checked by the caller (assignVariant, assignRequested).
  const unit = targetingAttributes(userId, attributes);
  const base = { experimentKey, userId, variant: null, enrolled: false, assignedAt: null } as const;
  const config = await (deps.config ?? loadConfigFromDb)(db, experimentKey);
  if (!config) return { ...base, experiment: null, reason: 'NOT_FOUND' };
  const { experiment } = config;

  // A QA override wins over everything (status too, so a draft can be previewed), except archiving. It is
  // never stored: a forced unit is no enrollment and never counts in results.
  const forcedId = config.overrides?.get(userId);
  const forced = forcedId && config.variants.find((v) => v.id === forcedId);
  if (forced && experiment.status !== 'archived') {
    return { ...base, experiment, variant: forced, enrolled: true, reason: 'FORCED' };
  }
  if (experiment.status !== 'running') return { ...base, experiment, reason: 'NOT_RUNNING' };

  // A returning unit is answered from memory, or by a read, and never with a write.
  const recalled = deps.memory?.recall(experiment.id, userId);
  if (recalled) return stored(config, recalled, 'EXISTING');

  // The stored assignment wins over targeting and bucketing (sticky even after targeting, weights or
  // traffic change); only a unit without one is inserted, with the variant bucketing gives it. A unit that
  // would not enroll costs the same read, to find a stored assignment.
  const decision = decideNewUnit(config, userId, unit);
  const variant = decision.variant;
  const request = { experimentId: experiment.id, userId, variantId: variant?.id ?? null };
  const resolved = deps.batcher
    ? await deps.batcher.resolve(request)
    : ((await repo.resolveAssignments(db, [request])).get(repo.assignmentKey(experiment.id, userId)) ?? null);
  if (resolved === repo.CAP_REACHED) return { ...base, experiment, reason: 'CAP_REACHED' };
  if (!resolved) {
    if (decision.reason === 'OUTSIDE_LAYER') return { ...base, experiment, reason: 'OUTSIDE_LAYER' };
    if (decision.reason === 'HOLDOUT') {
      // The control's experience, but no enrollment: the unit is measured in the holdout, not here.
      const control = config.variants.find((v) => v.isControl) ?? null;
      return { ...base, experiment, variant: control, reason: 'HOLDOUT' };
    }
    if (decision.reason === 'NOT_TARGETED') return { ...base, experiment, reason: 'NOT_TARGETED' };
    const weighted = config.variants.some((v) => v.weight > 0);
    return { ...base, experiment, reason: weighted ? 'OUTSIDE_TRAFFIC' : 'NO_ELIGIBLE_VARIANT' };
  }
  deps.memory?.remember(resolved.assignment);
  return stored(config, resolved.assignment, resolved.created ? 'ASSIGNED' : 'EXISTING');
}

function stored(
  config: ExperimentConfig,
  row: repo.AssignmentRow,
  reason: AssignmentReason,
): AssignmentResult {
  const variant = config.variants.find((v) => v.id === row.variantId) ?? null;
  return {
    experiment: config.experiment,
    experimentKey: config.experiment.key,
    userId: row.userId,
    variant,
    enrolled: variant !== null,
    reason,
    assignedAt: row.assignedAt,
  };
}
