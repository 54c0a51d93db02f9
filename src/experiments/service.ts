/**
 * Experiment management: validation, lifecycle transitions and audit. Every state change runs in one
 * transaction together with its audit_log row, so the trail never disagrees with the data.
 */
import { z } from 'zod';
import { LIMITS } from '../config';
import {
  ConflictError,
  InvalidTransitionError,
  NotFoundError,
  RuleViolationError,
  ValidationError,
  pgConstraint,
  pgErrorCode,
} from '../common/errors';
import {
  absentWhenNull,
  finiteNumber,
  experimentKeyRef,
  jsonObject,
  jsonProblem,
  numberBetween,
  parse,
  slug,
  text,
  userId as userIdSchema,
  uuid,
} from '../common/validation';
import type { Db } from '../db/client';
import {
  DELETABLE_STATUSES,
  EXPERIMENT_KINDS,
  EXPERIMENT_STATUSES,
  TRANSITIONS,
  VARIANT_REMOVAL_STATUSES,
  canTransition,
  type ExperimentStatus,
  type LifecycleAction,
} from './lifecycle';
import { lockExperimentsForIngest } from '../aggregates/fold';
import { rebuildStats } from '../aggregates/rebuild';
import * as metricSettingsRepo from './metric-settings';
import { metricRolesInput, resolveMetricRoles } from '../metrics/service';
import * as metricsRepo from '../metrics/repository';
import * as phases from './phases';
import { conditionProblems } from '../assignments/targeting';
import * as repo from './repository';
import { emitEvent } from '../webhooks/service';
import * as banditsRepo from '../bandits/repository';
import { banditInput, floorProblem } from '../bandits/settings';
import type { ExperimentRow, VariantRow } from './repository';

export interface Actor {
  /** Who did it, as written to the audit log (an API key's name, or "anonymous" in local mode). */
  name: string;
}

/** Called after a commit that changed an experiment's configuration (cache invalidation hooks in here). */
export type ChangeListener = (experimentId: string, tx: Db) => Promise<void> | void;

export interface ExperimentServiceDeps {
  /** A transaction too: the scheduler runs transitions inside its job's transaction (as savepoints). */
  db: Db;
  actor: Actor;
  onChange?: ChangeListener;
  /** Called after a configuration change committed (drops this process's assignment cache at once). */
  afterCommit?: () => void;
}

const name = text('name', { min: 1, max: LIMITS.nameMaxLength, trim: true });
const description = text('description', { max: LIMITS.descriptionMaxLength }).nullish();
const trafficAllocation = numberBetween('trafficAllocation', 0, 1);
const hashSeed = text('hashSeed', {
  min: 1,
  max: LIMITS.hashSeedMaxLength,
  minMessage: 'hashSeed must not be empty (use null to hash with the key)',
}).nullish();
const weight = numberBetween('weight', 0, LIMITS.maxVariantWeight);

/**
 * A metric's settings in this experiment: its conversion window in hours after the unit's first exposure
 * (null: until the experiment completes).
 */
export const metricSettingInput = z.object({
  metric: slug('metric', LIMITS.metricNameMaxLength),
  conversionWindowHours: finiteNumber('conversionWindowHours')
    .refine(
      (v) => v > 0 && v <= LIMITS.maxConversionWindowHours,
      `conversionWindowHours must be more than 0 and at most ${LIMITS.maxConversionWindowHours}`,
    )
    .nullish()
    .transform((v) => v ?? null),
});
const metricSettings = z
  .array(metricSettingInput)
  .max(LIMITS.maxMetricSettings, `at most ${LIMITS.maxMetricSettings} metric settings`)
  .superRefine((settings, ctx) => {
    const seen = new Set<string>();
    settings.forEach((s, i) => {
      if (seen.has(s.metric))
        ctx.addIssue({ code: 'custom', path: [i, 'metric'], message: `duplicate metric "${s.metric}"` });
      seen.add(s.metric);
    });
  });
const config = jsonObject('config', LIMITS.configMaxBytes);
/** A GrowthBook condition; an unknown operator is refused with its path (the SDK would match nobody). */
const targeting = jsonObject('targeting', LIMITS.targetingMaxBytes)
  .superRefine((condition, ctx) => {
    // Reported by jsonObject already; walking a value nested too deep would only cost stack.
    if (jsonProblem(condition, LIMITS.jsonMaxDepth)) return;
    for (const problem of conditionProblems(condition)) {
      const where = ['targeting', ...problem.path].join('.');
      ctx.addIssue({ code: 'custom', path: problem.path, message: `${where} ${problem.message}` });
    }
  })
  .nullish();

/**
 * The inputs of experiment management. GraphQL's input types are checked against these by the compiler
 * (src/graphql/input.ts), so a field added, dropped or retyped on one side fails the typecheck. Optional
 * fields are nullish because GraphQL sends null for an explicit null; `absentWhenNull` reads that as
 * "leave unchanged" where null has no other meaning.
 */
export const variantInput = z.object({
  name,
  weight: weight.nullish().transform((v) => v ?? 1),
  config: config.nullish().transform((v) => v ?? {}),
  isControl: z
    .boolean()
    .nullish()
    .transform((v) => v ?? false),
});

export const createExperimentInput = z
  .object({
    key: slug('key'),
    name,
    description,
    trafficAllocation: trafficAllocation.nullish().transform((v) => v ?? 1),
    hashSeed,
    targeting,
    kind: z
      .enum(EXPERIMENT_KINDS)
      .nullish()
      .transform((v) => v ?? 'standard'),
    variants: z
      .array(variantInput)
      .max(LIMITS.maxVariants, `at most ${LIMITS.maxVariants} variants`)
      .nullish()
      .transform((v) => v ?? []),
    metricSettings: metricSettings.nullish().transform((v) => v ?? []),
    /** The metrics the experiment decides on, by key, each with its role (src/metrics). */
    metricRoles: metricRolesInput.nullish().transform((v) => v ?? []),
    /** A BANDIT's settings (src/bandits); required for that kind and refused for the others. */
    bandit: banditInput.nullish().transform((v) => v ?? null),
  })
  .superRefine((input, ctx) => {
    if (input.kind === 'bandit') {
      if (!input.bandit)
        ctx.addIssue({ code: 'custom', path: ['bandit'], message: 'a BANDIT needs its bandit settings' });
      // The bandit sets the weights: equal while exploring, then each arm's chance of being best.
      input.variants.forEach((v, i) => {
        if (v.weight !== 1)
          ctx.addIssue({
            code: 'custom',
            path: ['variants', i, 'weight'],
            message: 'a BANDIT sets its own weights: leave weight out (every arm starts equal)',
          });
      });
      const floor = input.bandit && floorProblem(input.bandit.minWeight, input.variants.length);
      if (floor) ctx.addIssue({ code: 'custom', path: ['bandit', 'minWeight'], message: floor });
    } else if (input.bandit) {
      ctx.addIssue({
        code: 'custom',
        path: ['bandit'],
        message: 'only a BANDIT (kind: BANDIT) has bandit settings',
      });
    }
    const seen = new Set<string>();
    input.variants.forEach((v, i) => {
      if (seen.has(v.name))
        ctx.addIssue({
          code: 'custom',
          path: ['variants', i, 'name'],
          message: `duplicate variant name "${v.name}"`,
        });
      seen.add(v.name);
    });
    if (input.variants.filter((v) => v.isControl).length > 1) {
      ctx.addIssue({ code: 'custom', path: ['variants'], message: 'at most one variant can be the control' });
    }
  });

/** Null description, hashSeed or targeting clears it; null anywhere else leaves the field as it is. */
export const updateExperimentInput = z.object({
  name: absentWhenNull(name),
  description,
  trafficAllocation: absentWhenNull(trafficAllocation),
  hashSeed,
  targeting,
  /** Replaces every metric setting; null or absent leaves them. */
  metricSettings: absentWhenNull(metricSettings),
  /** Replaces the listed metrics; null or absent leaves them. Once started, only additions (see METRICS_FIXED). */
  metricRoles: absentWhenNull(metricRolesInput),
});

export const variantPatch = z.object({
  name: absentWhenNull(name),
  weight: absentWhenNull(weight),
  config: absentWhenNull(config),
  isControl: absentWhenNull(z.boolean()),
});

const pageSize = (what: string, max: number, fallback: number) =>
  z
    .number({ error: `${what} must be an integer` })
    .int(`${what} must be an integer`)
    .min(0, `${what} must be between 0 and ${max}`)
    .max(max, `${what} must be between 0 and ${max}`)
    .nullish()
    .transform((v) => v ?? fallback);

/** `experiment(id, key)`: exactly one of the two. */
export const experimentLookupArgs = z
  .object({ id: uuid('id').nullish(), key: experimentKeyRef('key').nullish() })
  .transform((args, ctx): { id: string } | { key: string } => {
    if (args.id != null && args.key == null) return { id: args.id };
    if (args.key != null && args.id == null) return { key: args.key };
    ctx.addIssue({
      code: 'custom',
      path: [args.id == null ? 'id' : 'key'],
      message: 'give exactly one of id and key',
    });
    return z.NEVER;
  });

/** `experiments(status, first, after)`; the cursor itself is decoded by the GraphQL layer that made it. */
export const experimentListArgs = z.object({
  status: z
    .enum(EXPERIMENT_STATUSES)
    .nullish()
    .transform((v) => v ?? null),
  first: pageSize('first', LIMITS.maxPageSize, LIMITS.defaultPageSize),
  after: text('after', { max: LIMITS.cursorMaxLength }).nullish(),
});

export const auditLogArgs = z.object({
  first: pageSize('first', LIMITS.auditLogMaxPage, LIMITS.auditLogDefaultPage),
});

/** setOverride / removeOverride: the experiment by key (as assignment names it) and the unit. */
export const overrideArgs = z.object({
  experimentKey: experimentKeyRef(),
  userId: userIdSchema,
});
export const setOverrideArgs = overrideArgs.extend({ variantId: uuid('variantId') });
export type OverrideArgs = z.input<typeof overrideArgs>;
export type SetOverrideArgs = z.input<typeof setOverrideArgs>;

export type CreateExperimentInput = z.input<typeof createExperimentInput>;
export type UpdateExperimentInput = z.input<typeof updateExperimentInput>;
export type VariantInput = z.input<typeof variantInput>;
export type MetricSettingInput = z.input<typeof metricSettingInput>;
export type { MetricRoleInput } from '../metrics/service';
export type VariantPatch = z.input<typeof variantPatch>;

/** Turns a unique violation into the ConflictError a pre-check would have raised. */
function conflictFrom(err: unknown, what: { key?: string; variant?: string }): never {
  if (pgErrorCode(err) === '23505') {
    const constraint = pgConstraint(err) ?? '';
    if (constraint.includes('one_control')) {
      throw new ConflictError('The experiment already has a control variant', 'isControl');
    }
    if (constraint.includes('variants')) {
      throw new ConflictError(`A variant named "${what.variant}" already exists in this experiment`, 'name');
    }
    throw new ConflictError(`An experiment with key "${what.key}" already exists`, 'key');
  }
  throw err;
}

/** Drops keys whose value is undefined, so a patch only touches what the caller sent. */
function defined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function createExperimentService({ db, actor, onChange, afterCommit }: ExperimentServiceDeps) {
  /** A transaction that changes configuration: notifies inside it, and runs afterCommit once it committed. */
  async function change<T>(work: (tx: Db) => Promise<T>): Promise<T> {
    const result = await db.transaction(work);
    afterCommit?.();
    return result;
  }

  async function changed(tx: Db, experimentId: string) {
    await onChange?.(experimentId, tx);
  }

  async function audit(tx: Db, action: string, experimentId: string, details: Record<string, unknown>) {
    await repo.insertAudit(tx, {
      actor: actor.name,
      action,
      entityType: 'experiment',
      entityId: experimentId,
      details,
    });
  }

  async function mustLock(tx: Db, id: string): Promise<ExperimentRow> {
    const row = await repo.lockExperiment(tx, id);
    if (!row) throw new NotFoundError('Experiment', id);
    return row;
  }

  /** Locks an experiment found by key; archived ones are read-only (overrides included). */
  async function lockByKey(tx: Db, key: string): Promise<ExperimentRow> {
    const found = await repo.getExperiment(tx, { key });
    if (!found) throw new NotFoundError('Experiment', key);
    const experiment = await mustLock(tx, found.id);
    if (experiment.status === 'archived') {
      throw new RuleViolationError('READ_ONLY', 'An archived experiment cannot be changed');
    }
    return experiment;
  }

  async function variantWithExperiment(tx: Db, variantId: string, argName: string) {
    parse(uuid(argName), variantId, [argName]);
    const [variant] = await repo.getVariantsByIds(tx, [variantId]);
    if (!variant) throw new NotFoundError('Variant', variantId);
    const experiment = await mustLock(tx, variant.experimentId);
    return { variant, experiment };
  }

  return {
    async create(rawInput: CreateExperimentInput) {
      const input = parse(createExperimentInput, rawInput, ['input']);
      try {
        return await change(async (tx) => {
          const { metricSettings: settings, metricRoles: listed, bandit, ...experimentInput } = input;
          const decision = bandit && (await resolveDecisionMetric(tx, bandit.decisionMetric, listed));
          // A bandit decides on its decision metric: it is listed as PRIMARY (its conversion window applies).
          const roleInput =
            decision && !listed.some((r) => r.metric === decision.key)
              ? [{ metric: decision.key, role: 'PRIMARY' as const, toleratedHarm: null }, ...listed]
              : listed;
          const roles = await resolveMetricRoles(tx, roleInput, ['input', 'metricRoles']);
          const created = await repo.createExperiment(tx, experimentInput);
          await metricSettingsRepo.replaceMetricSettings(tx, created.experiment.id, settings);
          await metricsRepo.replaceMetricRoles(tx, created.experiment.id, roles);
          const banditRow =
            bandit &&
            decision &&
            (await banditsRepo.insertBandit(tx, created.experiment.id, {
              decisionMetricId: decision.id,
              explorationHours: bandit.explorationHours,
              updateEveryMinutes: bandit.updateEveryMinutes,
              minWeight: bandit.minWeight,
              minUnitsPerVariant: bandit.minUnitsPerVariant,
            }));
          await changed(tx, created.experiment.id);
          await audit(tx, 'experiment.created', created.experiment.id, {
            after: {
              ...created.experiment,
              variants: created.variants,
              metricSettings: settings,
              ...(roleInput.length ? { metricRoles: roleInput } : {}),
              ...(banditRow ? { bandit: banditRow } : {}),
            },
          });
          return created.experiment;
        });
      } catch (err) {
        conflictFrom(err, { key: input.key });
      }
    },

    async update(id: string, rawInput: UpdateExperimentInput) {
      parse(uuid('id'), id, ['id']);
      const input = parse(updateExperimentInput, rawInput, ['input']);
      return change(async (tx) => {
        const before = await mustLock(tx, id);
        if (before.status === 'archived') {
          throw new RuleViolationError('READ_ONLY', 'An archived experiment cannot be changed');
        }
        const { metricSettings: settings, metricRoles: roleInput, ...patch } = defined(input);
        const rolesChange = roleInput && (await changeMetricRoles(tx, before, roleInput));
        const after = await repo.updateExperiment(tx, id, patch);
        const settingsChange = settings && {
          before: await metricSettingsRepo.getMetricSettingsByExperimentIds(tx, [id]),
          after: settings,
        };
        if (settings) {
          await metricSettingsRepo.replaceMetricSettings(tx, id, settings);
          // Conversion windows decide which stored events count: recount the experiment's aggregates
          // (under its ingestion lock, after this row's lock, as completing does).
          if (before.status !== 'draft') await rebuildStats(tx, [id]);
        } else if (rolesChange?.recount) {
          // A listed metric's default window or a RATIO pair changes what the aggregates hold.
          await rebuildStats(tx, [id]);
        }
        const phase =
          opensPhase(before.status) && after!.trafficAllocation !== before.trafficAllocation
            ? await phases.openPhase(tx, id)
            : undefined;
        await audit(tx, 'experiment.updated', id, {
          before,
          after,
          ...(phase ? { phase } : {}),
          ...(settingsChange ? { metricSettings: settingsChange } : {}),
          ...(rolesChange ? { metricRoles: rolesChange.audit } : {}),
        });
        await changed(tx, id);
        return after!;
      });
    },

    async delete(id: string) {
      parse(uuid('id'), id, ['id']);
      return change(async (tx) => {
        const before = await mustLock(tx, id);
        if (!DELETABLE_STATUSES.includes(before.status)) {
          throw new InvalidTransitionError(
            before.status,
            'deleted',
            `Only draft or archived experiments can be deleted; this one is ${before.status} (complete and archive it first)`,
          );
        }
        await repo.deleteExperiment(tx, id);
        // The audit row outlives the experiment: entity_id is not a foreign key on purpose.
        await audit(tx, 'experiment.deleted', id, { before });
        await changed(tx, id);
        return id;
      });
    },

    async transition(id: string, action: LifecycleAction) {
      parse(uuid('id'), id, ['id']);
      const rule = TRANSITIONS[action];
      return change(async (tx) => {
        const before = await mustLock(tx, id);
        if (!canTransition(action, before.status)) throw new InvalidTransitionError(before.status, rule.to);
        if (action === 'start') await assertStartable(tx, before);
        const now = new Date();
        const timestamps: { startAt?: Date; endAt?: Date } = {};
        if (rule.to === 'running' && !before.startAt) timestamps.startAt = now;
        if (rule.to === 'completed') {
          // Conversions count until the end (attribution windows). Batches being folded finish first, and
          // the end is read from the clock their recorded_at comes from: a batch folded before counted only
          // events recorded before the end, one folded after sees it, so the aggregates stay what a rebuild
          // computes.
          await lockExperimentsForIngest(tx, [id]);
          timestamps.endAt = await phases.databaseNow(tx);
          await phases.closePhase(tx, id, timestamps.endAt);
        }
        const after = await repo.updateExperiment(tx, id, {
          status: rule.to as ExperimentStatus,
          ...timestamps,
        });
        // Starting opens phase 1; resuming keeps the phase (a change while paused opened its own).
        const phase =
          before.status === 'draft' && rule.to === 'running' ? await phases.openPhase(tx, id) : undefined;
        if (phase && before.kind === 'bandit') {
          // Equal weights (phase 1) until the exploration ends; then the bandit job takes over.
          const [bandit] = await banditsRepo.getBanditsByExperimentIds(tx, [id]);
          await banditsRepo.updateBandit(tx, id, {
            nextUpdateAt: new Date(now.getTime() + bandit.explorationHours * 3_600_000),
          });
        }
        // Resuming a paused experiment is still "started" in the trail, with from/to telling which.
        await audit(tx, rule.audit, id, {
          from: before.status,
          to: rule.to,
          before,
          after,
          ...(phase ? { phase } : {}),
        });
        await emitEvent(tx, 'EXPERIMENT_STATUS_CHANGED', id, {
          key: after!.key,
          from: before.status,
          to: rule.to,
          actor: actor.name,
        });
        await changed(tx, id);
        return after!;
      });
    },

    async addVariant(experimentId: string, rawInput: VariantInput) {
      parse(uuid('experimentId'), experimentId, ['experimentId']);
      const input = parse(variantInput, rawInput, ['input']);
      try {
        return await change(async (tx) => {
          const experiment = await mustLock(tx, experimentId);
          if (experiment.status !== 'draft') {
            // Adding a variant would move users between buckets of a running experiment.
            throw new RuleViolationError(
              'VARIANTS_FIXED',
              `Variants can only be added while the experiment is a draft; it is ${experiment.status}`,
            );
          }
          const existing = await repo.getVariants(tx, experimentId);
          if (existing.length >= LIMITS.maxVariants) {
            throw ValidationError.field(
              ['experimentId'],
              `an experiment has at most ${LIMITS.maxVariants} variants`,
            );
          }
          if (experiment.kind === 'bandit' && input.weight !== 1) {
            throw ValidationError.field(
              ['input', 'weight'],
              'a BANDIT sets its own weights: leave weight out (every arm starts equal)',
            );
          }
          const variant = await repo.addVariant(tx, experimentId, input);
          await audit(tx, 'variant.added', experimentId, { after: variant });
          await changed(tx, experimentId);
          return variant;
        });
      } catch (err) {
        conflictFrom(err, { variant: input.name });
      }
    },

    async updateVariant(id: string, rawInput: VariantPatch) {
      const input = parse(variantPatch, rawInput, ['input']);
      try {
        return await change(async (tx) => {
          const { variant, experiment } = await variantWithExperiment(tx, id, 'id');
          if (experiment.status === 'archived' || experiment.status === 'completed') {
            throw new RuleViolationError('READ_ONLY', `A ${experiment.status} experiment cannot be changed`);
          }
          if (experiment.kind === 'bandit' && input.weight !== undefined) {
            throw new RuleViolationError(
              'BANDIT_WEIGHTS',
              'A BANDIT’s weights are set by the bandit (equal while exploring, then by each arm’s chance of being best)',
            );
          }
          const locked = experiment.status !== 'draft';
          if (locked && (input.name !== undefined || input.isControl !== undefined)) {
            throw new RuleViolationError(
              'VARIANT_IDENTITY_FIXED',
              `Only weight and config can change once an experiment has started; it is ${experiment.status}`,
            );
          }
          if (input.weight !== undefined && experiment.status === 'running') {
            const others = (await repo.getVariants(tx, experiment.id)).filter((v) => v.id !== id);
            if (others.reduce((s, v) => s + v.weight, 0) + input.weight <= 0) {
              throw ValidationError.field(
                ['input', 'weight'],
                'a running experiment needs a positive total weight',
              );
            }
          }
          const after = await repo.updateVariant(tx, id, defined(input));
          const phase =
            opensPhase(experiment.status) && after!.weight !== variant.weight
              ? await phases.openPhase(tx, experiment.id)
              : undefined;
          await audit(tx, 'variant.updated', experiment.id, {
            before: variant,
            after,
            ...(phase ? { phase } : {}),
          });
          await changed(tx, experiment.id);
          return after!;
        });
      } catch (err) {
        conflictFrom(err, { variant: input.name });
      }
    },

    /**
     * Sets every weight of a running BANDIT at once (the bandit job, actor `bandit`): the same path as a
     * person's weight change (the variants' weights, one new phase, an audit entry, the change notification),
     * with one phase for all arms. Stored assignments never move; only new units see the new weights.
     */
    async reweight(
      experimentId: string,
      weights: readonly { variantId: string; weight: number }[],
      details: Record<string, unknown>,
    ) {
      return change(async (tx) => {
        const experiment = await mustLock(tx, experimentId);
        if (experiment.kind !== 'bandit' || experiment.status !== 'running') {
          throw new RuleViolationError(
            'READ_ONLY',
            `Only a running BANDIT is reweighted; this one is ${experiment.kind} and ${experiment.status}`,
          );
        }
        const before = await repo.getVariants(tx, experimentId);
        const next = new Map(weights.map((w) => [w.variantId, w.weight]));
        if (before.length !== next.size || before.some((v) => !next.has(v.id))) {
          throw ValidationError.field(['weights'], 'a reweighting names every variant of the bandit once');
        }
        const after = await Promise.all(
          before.map((v) => repo.updateVariant(tx, v.id, { weight: next.get(v.id)! })),
        );
        const phase = await phases.openPhase(tx, experimentId);
        await audit(tx, 'experiment.reweighted', experimentId, {
          before: before.map((v) => ({ variantId: v.id, weight: v.weight })),
          after: after.map((v) => ({ variantId: v!.id, weight: v!.weight })),
          phase,
          ...details,
        });
        await changed(tx, experimentId);
        return { experiment, phase };
      });
    },

    /**
     * Forces a unit into a variant (QA preview): any status but ARCHIVED, so a draft can be previewed.
     * The unit is answered FORCED and never stored as an assignment, so it never counts in results.
     */
    async setOverride(rawArgs: SetOverrideArgs) {
      const args = parse(setOverrideArgs, rawArgs);
      return change(async (tx) => {
        const experiment = await lockByKey(tx, args.experimentKey);
        const [variant] = await repo.getVariantsByIds(tx, [args.variantId]);
        if (!variant || variant.experimentId !== experiment.id) {
          throw ValidationError.field(['variantId'], `variantId is not a variant of ${experiment.key}`);
        }
        const before = await repo.getOverride(tx, experiment.id, args.userId);
        if (!before && (await repo.countOverrides(tx, experiment.id)) >= LIMITS.maxOverridesPerExperiment) {
          throw ValidationError.field(
            ['userId'],
            `an experiment has at most ${LIMITS.maxOverridesPerExperiment} overrides; remove one first`,
          );
        }
        const after = await repo.upsertOverride(tx, {
          experimentId: experiment.id,
          userId: args.userId,
          variantId: variant.id,
          createdBy: actor.name,
        });
        await audit(tx, 'override.set', experiment.id, { before, after });
        await changed(tx, experiment.id);
        return after;
      });
    },

    /** Removes a unit's override; the unit is then assigned as any other. Returns the removed override. */
    async removeOverride(rawArgs: OverrideArgs) {
      const args = parse(overrideArgs, rawArgs);
      return change(async (tx) => {
        const experiment = await lockByKey(tx, args.experimentKey);
        const before = await repo.deleteOverride(tx, experiment.id, args.userId);
        if (!before) throw new NotFoundError('Override', `${experiment.key}/${args.userId}`);
        await audit(tx, 'override.removed', experiment.id, { before });
        await changed(tx, experiment.id);
        return before;
      });
    },

    async removeVariant(id: string) {
      return change(async (tx) => {
        const { variant, experiment } = await variantWithExperiment(tx, id, 'id');
        if (!VARIANT_REMOVAL_STATUSES.includes(experiment.status)) {
          throw new RuleViolationError(
            'VARIANTS_FIXED',
            `Variants cannot be removed once an experiment has started (it is ${experiment.status}); set its weight to 0 instead`,
          );
        }
        await repo.removeVariant(tx, id);
        await audit(tx, 'variant.removed', experiment.id, { before: variant });
        await changed(tx, experiment.id);
        return variant;
      });
    },
  };
}

/**
 * A change of weights or traffic in these statuses opens a new phase: units enrolled from then on are
 * bucketed by the new numbers (in a draft nobody is enrolled yet; phase 1 opens at the start).
 */
const opensPhase = (status: ExperimentStatus) => status === 'running' || status === 'paused';

/**
 * Replaces the metrics an experiment lists. Once started the list may only grow, and only by SECONDARY and
 * GUARDRAIL metrics (as GrowthBook lets secondary metrics be added to a running experiment): what it was
 * started to decide on stays. `recount`: the aggregates must be rebuilt (a started experiment gained a RATIO
 * pair or a default window).
 */
async function changeMetricRoles(
  tx: Db,
  experiment: ExperimentRow,
  roleInput: z.output<typeof metricRolesInput>,
): Promise<{ recount: boolean; audit: { before: unknown; after: unknown } }> {
  const root = ['input', 'metricRoles'];
  const roles = await resolveMetricRoles(tx, roleInput, root);
  const before = await metricsRepo.getMetricRolesByExperimentIds(tx, [experiment.id]);
  if (experiment.status !== 'draft') {
    const next = new Map(roles.map((r) => [r.metricId, r]));
    const kept = before.every((b) => {
      const r = next.get(b.metricId);
      return r && r.role === b.role && r.toleratedHarm === b.toleratedHarm;
    });
    const added = roles.filter((r) => !before.some((b) => b.metricId === r.metricId));
    if (!kept || added.some((r) => r.role === 'PRIMARY')) {
      throw new RuleViolationError(
        'METRICS_FIXED',
        `Once an experiment has started (it is ${experiment.status}) its listed metrics and roles stay; only SECONDARY and GUARDRAIL metrics can be added`,
      );
    }
  }
  await metricsRepo.replaceMetricRoles(tx, experiment.id, roles);
  // Only a RATIO pair or a default window changes what the aggregates hold (drafts have no events).
  const added = roles.filter((r) => !before.some((b) => b.metricId === r.metricId));
  return {
    recount:
      experiment.status !== 'draft' &&
      added.some((r) => r.metric.kind === 'RATIO' || r.metric.conversionWindowHours !== null),
    audit: { before, after: roleInput },
  };
}

/**
 * Starting needs at least two variants, a positive total weight and at most one control; a HOLDOUT needs
 * exactly two, one of them the control (the held-out group).
 */
async function assertStartable(tx: Db, experiment: ExperimentRow): Promise<void> {
  const variants: VariantRow[] = await repo.getVariants(tx, experiment.id);
  const problems: string[] = [];
  if (experiment.kind === 'holdout' && (variants.length !== 2 || !variants.some((v) => v.isControl))) {
    problems.push(
      'a holdout has exactly two variants: the held-out group (the control) and the general group',
    );
  }
  if (variants.length < 2)
    problems.push(`at least two variants are needed to start (it has ${variants.length})`);
  if (variants.reduce((s, v) => s + v.weight, 0) <= 0)
    problems.push('the variant weights must sum to more than 0');
  if (variants.filter((v) => v.isControl).length > 1) problems.push('at most one variant can be the control');
  if (experiment.kind === 'bandit') {
    const [bandit] = await banditsRepo.getBanditsByExperimentIds(tx, [experiment.id]);
    const floor = floorProblem(bandit.minWeight, variants.length);
    if (floor) problems.push(floor);
  }
  if (problems.length) {
    throw new ValidationError(problems.map((message) => ({ path: ['variants'], message })));
  }
}

/**
 * A bandit's decision metric: a defined, unarchived BINOMIAL or MEAN metric (a RATIO's per-phase cross
 * products are not kept), listed PRIMARY if the experiment lists it at all.
 */
async function resolveDecisionMetric(
  tx: Db,
  key: string,
  listed: z.output<typeof metricRolesInput>,
): Promise<metricsRepo.MetricRow> {
  const path = ['input', 'bandit', 'decisionMetric'];
  const [metric] = await metricsRepo.getMetricsByKeys(tx, [key]);
  if (!metric || metric.archivedAt) {
    throw ValidationError.field(
      path,
      metric ? `metric "${key}" is archived` : `no metric with key "${key}" (createMetric first)`,
    );
  }
  if (metric.kind === 'RATIO') {
    throw ValidationError.field(
      path,
      'a bandit decides on a BINOMIAL or MEAN metric; RATIO metrics are not supported',
    );
  }
  const role = listed.find((r) => r.metric === key)?.role;
  if (role && role !== 'PRIMARY') {
    throw ValidationError.field(path, `the decision metric must be PRIMARY in metricRoles (it is ${role})`);
  }
  return metric;
}

export type ExperimentService = ReturnType<typeof createExperimentService>;
