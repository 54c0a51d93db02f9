/** `Experiment.banditState`: a bandit's settings, stage, weights and the history of its reweightings. */
import { LIMITS } from '../config';
import { ExperimentRef, PhaseWeightRef } from '../experiments/graphql';
import { builder } from '../graphql/builder';
import { enumValues } from '../graphql/enums';
import { MetricRef } from '../metrics/graphql';
import type { BanditRow, BanditUpdateRow } from './repository';
import { BANDIT_WAITING_REASONS, type BanditWaitingReason } from './service';
import { BANDIT_STAGES, type BanditStage } from './settings';

const BanditStageEnum = builder.enumType('BanditStage', {
  description: 'Where a bandit is: exploring with equal weights, or exploiting what it learnt.',
  values: enumValues(BANDIT_STAGES, {
    EXPLORE: 'Equal weights, from the start until the first reweighting.',
    EXPLOIT: 'Weights follow each arm’s probability of being best, updated every `updateEveryMinutes`.',
  } satisfies Record<BanditStage, string>),
});

const BanditWaitingReasonEnum = builder.enumType('BanditWaitingReason', {
  description: 'Why the last due reweighting changed nothing (it is tried again within the hour).',
  values: enumValues(BANDIT_WAITING_REASONS, {
    TOO_FEW_UNITS: 'An arm has fewer exposed units than `minUnitsPerVariant`.',
    ZERO_VARIANCE: 'No arm’s decision metric varies yet (e.g. no conversion at all): nothing to learn from.',
    FAILED: 'The update failed unexpectedly (see the service log); nothing changed.',
  } satisfies Record<BanditWaitingReason, string>),
});

const ArmProbabilityRef = builder
  .objectRef<{ variantId: string; probability: number }>('ArmProbability')
  .implement({
    description: 'A variant’s posterior probability of being the best arm.',
    authScopes: { read: true },
    fields: (t) => ({
      variantId: t.exposeID('variantId', { description: 'Id of the variant (`Variant.id`).' }),
      probability: t.exposeFloat('probability', {
        description: 'P(best), 0..1; the probabilities of a bandit’s arms sum to 1.',
      }),
    }),
  });

const normalised = (weights: readonly { variantId: string; weight: number }[]) => {
  const total = weights.reduce((acc, w) => acc + w.weight, 0);
  return weights.map((w) => ({ variantId: w.variantId, weight: total > 0 ? w.weight / total : 0 }));
};

const BanditUpdateRef = builder.objectRef<BanditUpdateRow>('BanditUpdate').implement({
  description: 'One reweighting: the weights it set (a new phase) and the probabilities they came from.',
  authScopes: { read: true },
  fields: (t) => ({
    at: t.field({ type: 'DateTime', description: 'When the job reweighted.', resolve: (u) => u.at }),
    phase: t.exposeInt('phase', { description: 'The phase (`Experiment.phases`) the new weights opened.' }),
    weights: t.field({
      type: [PhaseWeightRef],
      description: 'The weights set, in bucketing order; they sum to 1.',
      resolve: (u) => u.weights,
    }),
    bestArmProbabilities: t.field({
      type: [ArmProbabilityRef],
      description: 'Each arm’s posterior probability of being best when the weights were set.',
      resolve: (u) => u.bestArmProbabilities,
    }),
  }),
});

const BanditStateRef = builder.objectRef<BanditRow>('BanditState').implement({
  description:
    'A BANDIT’s settings and progress. Stored assignments never move: new weights apply to units not yet assigned.',
  authScopes: { read: true },
  fields: (t) => ({
    stage: t.field({ type: BanditStageEnum, description: 'EXPLORE or EXPLOIT.', resolve: (b) => b.stage }),
    weights: t.field({
      type: [PhaseWeightRef],
      description:
        'The weights in force (the variants’ weights, normalised to sum to 1), in bucketing order: what assignment and the SDK payload use.',
      resolve: async (b, _a, ctx) =>
        normalised(
          (await ctx.loaders.variantsByExperimentId.load(b.experimentId)).map((v) => ({
            variantId: v.id,
            weight: v.weight,
          })),
        ),
    }),
    bestArmProbabilities: t.field({
      type: [ArmProbabilityRef],
      nullable: true,
      description: 'P(best) per arm at the last reweighting; null before the first.',
      resolve: (b) => b.bestArmProbabilities,
    }),
    updatedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the bandit last set the weights; null while exploring.',
      resolve: (b) => b.updatedAt,
    }),
    nextUpdateAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the job next looks at it (within one job interval); null before the start.',
      resolve: (b) => b.nextUpdateAt,
    }),
    waitingReason: t.field({
      type: BanditWaitingReasonEnum,
      nullable: true,
      description: 'Why the last due look changed nothing; null when it reweighted (or none was due yet).',
      resolve: (b) => b.waitingReason as BanditWaitingReason | null,
    }),
    decisionMetric: t.field({
      type: MetricRef,
      description: 'The metric the arms are compared on (its direction says which way is best).',
      resolve: async (b, _a, ctx) => (await ctx.loaders.metricById.load(b.decisionMetricId))!,
    }),
    explorationHours: t.exposeFloat('explorationHours', {
      description: 'Hours of equal weights after the start.',
    }),
    updateEveryMinutes: t.exposeInt('updateEveryMinutes', { description: 'Minutes between reweightings.' }),
    minWeight: t.exposeFloat('minWeight', { description: 'The least weight any arm gets.' }),
    minUnitsPerVariant: t.exposeInt('minUnitsPerVariant', {
      description: 'Exposed units every arm needs before a reweighting.',
    }),
    history: t.field({
      type: [BanditUpdateRef],
      description: `Every reweighting, oldest first (the last ${LIMITS.bandit.maxHistory.toLocaleString('en-US')}).`,
      resolve: async (b, _a, ctx) =>
        [...(await ctx.loaders.banditUpdatesByExperimentId.load(b.experimentId))].reverse(),
    }),
  }),
});

builder.objectField(ExperimentRef, 'banditState', (t) =>
  t.field({
    type: BanditStateRef,
    nullable: true,
    description: 'A BANDIT’s settings, stage, weights and history; null for other kinds.',
    resolve: (e, _a, ctx) => (e.kind === 'bandit' ? ctx.loaders.banditByExperimentId.load(e.id) : null),
  }),
);
