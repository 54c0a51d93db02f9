/**
 * Assignment: which variant a unit gets. Only running experiments enroll; an existing assignment always
 * wins (sticky, even after weights change); new units are bucketed exactly as GrowthBook's SDKs do.
 */
import { z } from 'zod';
import { experimentKeyRef, parse, userId as userIdSchema } from '../common/validation';
import type { Db } from '../db/client';
import type { ExperimentRow, VariantRow } from '../experiments/repository';
import * as experimentsRepo from '../experiments/repository';
import type { UsageObserver } from '../observability/metrics';
import type { AssignmentBatcher } from './batcher';
import { bucket } from './bucketing';
import * as repo from './repository';

export const ASSIGNMENT_REASONS = [
  'ASSIGNED',
  'EXISTING',
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
}

export type ConfigSource = (db: Db, key: string) => Promise<ExperimentConfig | null>;

export const loadConfigFromDb: ConfigSource = async (db, key) => {
  const experiment = await experimentsRepo.getExperiment(db, { key });
  if (!experiment) return null;
  return { experiment, variants: await experimentsRepo.getVariants(db, experiment.id) };
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

/** The seed a unit is hashed with: per experiment, so buckets in different experiments are independent. */
export function hashSeedOf(experiment: Pick<ExperimentRow, 'key' | 'hashSeed'>): string {
  return experiment.hashSeed ?? experiment.key;
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
}

export async function assignVariant(
  db: Db,
  experimentKey: string,
  userId: string,
  deps: AssignmentDeps = {},
): Promise<AssignmentResult> {
  const result = await decide(db, experimentKey, userId, deps);
  deps.observer?.assignment(result.reason);
  return result;
}

async function decide(
  db: Db,
  experimentKey: string,
  userId: string,
  deps: AssignmentDeps,
): Promise<AssignmentResult> {
  parse(assignmentArgs, { experimentKey, userId });
  const base = { experimentKey, userId, variant: null, enrolled: false, assignedAt: null } as const;
  const config = await (deps.config ?? loadConfigFromDb)(db, experimentKey);
  if (!config) return { ...base, experiment: null, reason: 'NOT_FOUND' };
  const { experiment } = config;
  if (experiment.status !== 'running') return { ...base, experiment, reason: 'NOT_RUNNING' };

  // A returning unit is answered from memory, or by a read, and never with a write.
  const recalled = deps.memory?.recall(experiment.id, userId);
  if (recalled) return stored(config, recalled, 'EXISTING');

  // The stored assignment wins over bucketing (sticky even after weights or traffic change); only a
  // unit without one is inserted, with the variant bucketing gives it.
  const variant = pickVariant(config, userId);
  const request = { experimentId: experiment.id, userId, variantId: variant?.id ?? null };
  const resolved = deps.batcher
    ? await deps.batcher.resolve(request)
    : ((await repo.resolveAssignments(db, [request])).get(repo.assignmentKey(experiment.id, userId)) ?? null);
  if (resolved === repo.CAP_REACHED) return { ...base, experiment, reason: 'CAP_REACHED' };
  if (!resolved) {
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
