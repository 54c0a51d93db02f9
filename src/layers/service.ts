/**
 * Layers (mutual exclusion): validation, membership rules and audit. Experiments of one layer own
 * disjoint ranges [start, end) of the layer's hash space, so a unit enrolls in at most one of them.
 * Membership changes lock the layer row, so two concurrent changes cannot both take the same range.
 */
import { z } from 'zod';
import {
  ConflictError,
  NotFoundError,
  RuleViolationError,
  ValidationError,
  pgErrorCode,
} from '../common/errors';
import { absentWhenNull, experimentKeyRef, parse, slug, text, uuid } from '../common/validation';
import { LIMITS } from '../config';
import type { Database, Db } from '../db/client';
import * as experimentsRepo from '../experiments/repository';
import type { ExperimentServiceDeps } from '../experiments/service';
import * as repo from './repository';

const name = text('name', { min: 1, max: LIMITS.nameMaxLength, trim: true });
const description = text('description', { max: LIMITS.descriptionMaxLength }).nullish();

export const createLayerInput = z.object({
  key: slug('key'),
  name,
  description,
  hashSeed: text('hashSeed', { min: 1, max: LIMITS.hashSeedMaxLength }).nullish(),
});
export const updateLayerInput = z.object({ name: absentWhenNull(name), description });

const share = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .refine((v) => Number.isFinite(v) && v >= 0 && v <= 1, `${what} must be between 0 and 1`);

/** Ranges of the layer's hash space: each start < end, sorted and disjoint. */
export const layerRanges = z
  .array(z.object({ start: share('start'), end: share('end') }))
  .min(1, 'give at least one range')
  .max(LIMITS.maxLayerRanges, `at most ${LIMITS.maxLayerRanges} ranges`)
  .superRefine((ranges, ctx) => {
    ranges.forEach((r, i) => {
      if (!(r.start < r.end))
        ctx.addIssue({ code: 'custom', path: [i, 'end'], message: 'end must be after start' });
    });
    const sorted = [...ranges].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].start < sorted[i - 1].end) {
        ctx.addIssue({ code: 'custom', path: [], message: 'the ranges overlap each other' });
        return;
      }
    }
  });

export const setExperimentLayerArgs = z.object({
  experimentKey: experimentKeyRef(),
  /** Null takes the experiment out of its layer. */
  layerKey: experimentKeyRef('layerKey').nullish(),
  ranges: layerRanges.nullish(),
});

/** setHoldout / setLayerHoldout: null holdoutKey unlinks. */
export const setHoldoutArgs = z.object({
  experimentKey: experimentKeyRef(),
  holdoutKey: experimentKeyRef('holdoutKey').nullish(),
});
export const setLayerHoldoutArgs = z.object({
  layerKey: experimentKeyRef('layerKey'),
  holdoutKey: experimentKeyRef('holdoutKey').nullish(),
});
export type SetHoldoutArgs = z.input<typeof setHoldoutArgs>;
export type SetLayerHoldoutArgs = z.input<typeof setLayerHoldoutArgs>;

export type CreateLayerInput = z.input<typeof createLayerInput>;
export type UpdateLayerInput = z.input<typeof updateLayerInput>;
export type LayerRangeInput = z.input<typeof layerRanges>[number];
export type SetExperimentLayerArgs = z.input<typeof setExperimentLayerArgs>;

const overlaps = (a: [number, number][], b: [number, number][]) =>
  a.some(([s1, e1]) => b.some(([s2, e2]) => s1 < e2 && s2 < e1));

const fmt = (ranges: [number, number][]) => ranges.map(([s, e]) => `[${s}, ${e})`).join(', ');

export function createLayerService({
  db,
  actor,
  onChange,
  afterCommit,
}: ExperimentServiceDeps & { db: Database }) {
  async function change<T>(work: (tx: Db) => Promise<T>): Promise<T> {
    const result = await db.transaction(work);
    afterCommit?.();
    return result;
  }

  async function audit(
    tx: Db,
    action: string,
    entityType: 'layer' | 'experiment',
    entityId: string,
    details: Record<string, unknown>,
  ) {
    await experimentsRepo.insertAudit(tx, { actor: actor.name, action, entityType, entityId, details });
  }

  async function mustLockLayer(tx: Db, id: string) {
    parse(uuid('id'), id, ['id']);
    const layer = await repo.lockLayer(tx, id);
    if (!layer) throw new NotFoundError('Layer', id);
    return layer;
  }

  async function mustHoldout(tx: Db, key: string) {
    const holdout = await experimentsRepo.getExperiment(tx, { key });
    if (!holdout) throw new NotFoundError('Experiment', key);
    if (holdout.kind !== 'holdout') {
      throw ValidationError.field(['holdoutKey'], `experiment "${key}" is not a HOLDOUT`);
    }
    if (holdout.status === 'archived') {
      throw ValidationError.field(['holdoutKey'], `holdout "${key}" is archived`);
    }
    return holdout;
  }

  return {
    async create(rawInput: CreateLayerInput) {
      const input = parse(createLayerInput, rawInput, ['input']);
      try {
        return await change(async (tx) => {
          const layer = await repo.createLayer(tx, { ...input, hashSeed: input.hashSeed ?? input.key });
          await audit(tx, 'layer.created', 'layer', layer.id, { after: layer });
          return layer;
        });
      } catch (err) {
        if (pgErrorCode(err) === '23505')
          throw new ConflictError(`A layer with key "${input.key}" already exists`, 'key');
        throw err;
      }
    },

    async update(id: string, rawInput: UpdateLayerInput) {
      const input = parse(updateLayerInput, rawInput, ['input']);
      return change(async (tx) => {
        const before = await mustLockLayer(tx, id);
        if (before.archivedAt)
          throw new RuleViolationError('READ_ONLY', 'An archived layer cannot be changed');
        const patch = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
        const after = (await repo.updateLayer(tx, id, patch))!;
        await audit(tx, 'layer.updated', 'layer', id, { before, after });
        return after;
      });
    },

    /** Archiving needs every experiment of the layer to be finished (COMPLETED or ARCHIVED). */
    async archive(id: string) {
      return change(async (tx) => {
        const before = await mustLockLayer(tx, id);
        if (before.archivedAt) return before;
        const active = (await repo.getLayerExperiments(tx, id)).find(
          (e) => e.status !== 'completed' && e.status !== 'archived',
        );
        if (active) {
          throw new ConflictError(
            `Experiment "${active.key}" (${active.status}) is still in this layer; complete it or move it out first`,
            'id',
          );
        }
        const after = (await repo.updateLayer(tx, id, { archivedAt: new Date() }))!;
        await audit(tx, 'layer.archived', 'layer', id, { before, after });
        return after;
      });
    },

    /** Links a DRAFT experiment to a HOLDOUT (or unlinks it with holdoutKey null). */
    async setHoldout(rawArgs: SetHoldoutArgs) {
      const args = parse(setHoldoutArgs, rawArgs);
      return change(async (tx) => {
        const found = await experimentsRepo.getExperiment(tx, { key: args.experimentKey });
        if (!found) throw new NotFoundError('Experiment', args.experimentKey);
        const experiment = (await experimentsRepo.lockExperiment(tx, found.id))!;
        if (experiment.kind === 'holdout') {
          throw ValidationError.field(['experimentKey'], 'a holdout cannot be linked to another holdout');
        }
        if (experiment.status !== 'draft') {
          throw new RuleViolationError(
            'POPULATION_FIXED',
            `A holdout can only be linked while the experiment is a draft; it is ${experiment.status}`,
          );
        }
        const holdout = args.holdoutKey ? await mustHoldout(tx, args.holdoutKey) : null;
        const after = (await experimentsRepo.updateExperiment(tx, experiment.id, {
          holdoutId: holdout?.id ?? null,
        }))!;
        await audit(tx, 'experiment.holdout_changed', 'experiment', experiment.id, {
          before: { holdoutId: experiment.holdoutId },
          after: { holdoutId: after.holdoutId },
        });
        await onChange?.(experiment.id, tx);
        return after;
      });
    },

    /** Links a whole layer to a HOLDOUT, while none of its experiments is running or paused. */
    async setLayerHoldout(rawArgs: SetLayerHoldoutArgs) {
      const args = parse(setLayerHoldoutArgs, rawArgs);
      return change(async (tx) => {
        const ref = await repo.getLayer(tx, { key: args.layerKey });
        if (!ref) throw new NotFoundError('Layer', args.layerKey);
        const before = (await repo.lockLayer(tx, ref.id))!;
        if (before.archivedAt) throw new RuleViolationError('READ_ONLY', `Layer "${before.key}" is archived`);
        const live = (await repo.getLayerExperiments(tx, before.id)).find(
          (e) => e.status === 'running' || e.status === 'paused',
        );
        if (live) {
          throw new RuleViolationError(
            'POPULATION_FIXED',
            `Experiment "${live.key}" of the layer is ${live.status}: its population must not move`,
          );
        }
        const holdout = args.holdoutKey ? await mustHoldout(tx, args.holdoutKey) : null;
        const after = (await repo.updateLayer(tx, before.id, { holdoutId: holdout?.id ?? null }))!;
        await audit(tx, 'layer.holdout_changed', 'layer', before.id, {
          before: { holdoutId: before.holdoutId },
          after: { holdoutId: after.holdoutId },
        });
        await onChange?.(before.id, tx);
        return after;
      });
    },

    /**
     * Puts a DRAFT experiment in a layer with its ranges (or takes it out with layerKey null). Ranges that
     * overlap another non-archived experiment of the layer are a ConflictError naming it.
     */
    async setExperimentLayer(rawArgs: SetExperimentLayerArgs) {
      const args = parse(setExperimentLayerArgs, rawArgs);
      if (args.layerKey && !args.ranges)
        throw ValidationError.field(['ranges'], 'give the ranges in the layer');
      if (!args.layerKey && args.ranges)
        throw ValidationError.field(['layerKey'], 'give the layer of the ranges');
      return change(async (tx) => {
        const found = await experimentsRepo.getExperiment(tx, { key: args.experimentKey });
        if (!found) throw new NotFoundError('Experiment', args.experimentKey);
        const experiment = (await experimentsRepo.lockExperiment(tx, found.id))!;
        if (experiment.status !== 'draft') {
          throw new RuleViolationError(
            'POPULATION_FIXED',
            `Layer and ranges can only change while the experiment is a draft; it is ${experiment.status}`,
          );
        }
        let membership: { layerId: string; layerRanges: [number, number][] } | null = null;
        if (args.layerKey && args.ranges) {
          const layerRef = await repo.getLayer(tx, { key: args.layerKey });
          if (!layerRef) throw new NotFoundError('Layer', args.layerKey);
          const layer = (await repo.lockLayer(tx, layerRef.id))!;
          if (layer.archivedAt) throw new RuleViolationError('READ_ONLY', `Layer "${layer.key}" is archived`);
          const ranges = args.ranges
            .map((r): [number, number] => [r.start, r.end])
            .sort((a, b) => a[0] - b[0]);
          for (const rival of await repo.getLayerRivals(tx, layer.id, experiment.id)) {
            if (overlaps(ranges, rival.layerRanges ?? [])) {
              throw new ConflictError(
                `The ranges overlap experiment "${rival.key}" in layer "${layer.key}" (it holds ${fmt(rival.layerRanges ?? [])})`,
                'ranges',
              );
            }
          }
          membership = { layerId: layer.id, layerRanges: ranges };
        }
        const after = await repo.setExperimentLayer(tx, experiment.id, membership);
        await audit(tx, 'experiment.layer_changed', 'experiment', experiment.id, {
          before: { layerId: experiment.layerId, layerRanges: experiment.layerRanges },
          after: { layerId: after.layerId, layerRanges: after.layerRanges },
        });
        await onChange?.(experiment.id, tx);
        return after;
      });
    },
  };
}

export type LayerService = ReturnType<typeof createLayerService>;
