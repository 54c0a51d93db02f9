/** The Assignment type, the read-only `assignment` query and the `assignVariant` mutation. */
import { ExperimentRef, VariantRef } from '../experiments/graphql';
import { builder } from '../graphql/builder';
import type { GraphQLContext } from '../graphql/context';
import type { ArgsOf } from '../graphql/input';
import { ValidationError } from '../common/errors';
import { parse } from '../common/validation';
import { LIMITS } from '../config';
import {
  type ASSIGNMENT_REASONS,
  type AssignArgs,
  type AssignmentArgs,
  assignmentArgs,
  assignVariant,
  type AssignmentResult,
} from './service';
import type { AssignmentRow } from './repository';
import type { ExperimentRow } from '../experiments/repository';
import { growthBookExperiment } from './growthbook';

export const AssignmentReasonEnum = builder.enumType('AssignmentReason', {
  description: 'Why the user did or did not get a variant.',
  values: {
    ASSIGNED: { value: 'ASSIGNED', description: 'Bucketed now and stored.' },
    EXISTING: {
      value: 'EXISTING',
      description:
        'A stored assignment was returned (sticky: it wins even when targeting, weights or traffic changed since).',
    },
    FORCED: {
      value: 'FORCED',
      description:
        'A QA override (`setOverride`) put the unit in this variant, whatever the status (but ARCHIVED), traffic and targeting. Never stored: the unit is not enrolled in the results, and its events are rejected with NOT_ASSIGNED (unless it also has a stored assignment, under which they count).',
    },
    OUTSIDE_LAYER: {
      value: 'OUTSIDE_LAYER',
      description:
        'The experiment is in a layer and the unit falls outside its ranges of the layer (it may be in another experiment of the layer); nothing stored.',
    },
    HOLDOUT: {
      value: 'HOLDOUT',
      description:
        'A running HOLDOUT linked to the experiment (or its layer) holds the unit out: `variant` is the control, whose experience to show, but the unit is not enrolled (`enrolled` false) and nothing is stored here.',
    },
    NOT_TARGETED: {
      value: 'NOT_TARGETED',
      description:
        'The unit’s attributes do not match the experiment’s `targeting` condition (and it has no stored assignment); nothing stored.',
    },
    OUTSIDE_TRAFFIC: {
      value: 'OUTSIDE_TRAFFIC',
      description:
        'Not in the experiment’s traffic allocation (nor in a variant, when the weights sum to a little less than 1); nothing stored.',
    },
    NOT_RUNNING: {
      value: 'NOT_RUNNING',
      description: 'The experiment is not running, so nobody is enrolled.',
    },
    NOT_FOUND: { value: 'NOT_FOUND', description: 'No experiment has this key.' },
    NO_ELIGIBLE_VARIANT: { value: 'NO_ELIGIBLE_VARIANT', description: 'Every variant has weight 0.' },
    CAP_REACHED: {
      value: 'CAP_REACHED',
      description:
        'The experiment already enrolled as many units as its schedule allows (`stopAfterUnits`); nothing stored. The scheduler completes it within one job interval.',
    },
  } satisfies Record<(typeof ASSIGNMENT_REASONS)[number], unknown>,
});

export const AssignmentRef = builder.objectRef<AssignmentResult>('Assignment');

AssignmentRef.implement({
  authScopes: { read: true, assign: true },
  description: 'Which variant a user gets in an experiment. Apply `variant.config` when `enrolled` is true.',
  fields: (t) => ({
    experiment: t.field({
      type: ExperimentRef,
      nullable: true,
      description: 'Null when the key is unknown.',
      resolve: (a) => a.experiment,
    }),
    experimentKey: t.exposeString('experimentKey', { description: 'The key that was asked for.' }),
    variant: t.field({
      type: VariantRef,
      nullable: true,
      description: 'Null when not enrolled.',
      resolve: (a) => a.variant,
    }),
    userId: t.exposeString('userId', { description: 'The unit id: a user UUID, a device id, …' }),
    enrolled: t.exposeBoolean('enrolled', {
      description: 'True when the user is in a variant; false means show the default experience.',
    }),
    reason: t.field({
      type: AssignmentReasonEnum,
      description: 'Why the user got this answer; only ASSIGNED and EXISTING come with a variant.',
      resolve: (a) => a.reason,
    }),
    assignedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the assignment was first stored.',
      resolve: (a) => a.assignedAt,
    }),
  }),
});

/** A stored assignment row as the API's Assignment. */
export async function storedAssignment(ctx: GraphQLContext, row: AssignmentRow): Promise<AssignmentResult> {
  const [experiment, variant] = await Promise.all([
    ctx.loaders.experimentById.load(row.experimentId),
    ctx.loaders.variantById.load(row.variantId),
  ]);
  return {
    experiment,
    experimentKey: experiment?.key ?? '',
    userId: row.userId,
    variant,
    enrolled: variant !== null,
    reason: 'EXISTING',
    assignedAt: row.assignedAt,
  };
}

builder.queryField('assignment', (t) =>
  t.field({
    type: AssignmentRef,
    nullable: true,
    authScopes: { read: true, assign: true },
    description:
      'The stored assignment of a user, or null. Read-only: never assigns (use the assignVariant mutation).',
    args: {
      experimentKey: t.arg.string({
        required: true,
        description: `The experiment’s key, at most ${LIMITS.keyMaxLength} characters.`,
      }),
      userId: t.arg.string({
        required: true,
        description: `The unit id, 1..${LIMITS.userIdMaxLength} characters.`,
      }),
    } satisfies ArgsOf<AssignmentArgs>,
    resolve: async (_r, args, ctx) => {
      const { experimentKey, userId } = parse(assignmentArgs, args);
      const experiment = await ctx.loaders.experimentByKey.load(experimentKey);
      if (!experiment) return null;
      const row = await ctx.loaders.assignmentByPair.load({ experimentId: experiment.id, userId });
      return row ? storedAssignment(ctx, row) : null;
    },
  }),
);

builder.mutationField('assignVariant', (t) =>
  t.field({
    type: AssignmentRef,
    description:
      'Assigns a user deterministically (GrowthBook-compatible hashing) and stores it; later calls return the same variant. Only RUNNING experiments enroll.',
    authScopes: { assign: true },
    errors: { types: [ValidationError] },
    args: {
      experimentKey: t.arg.string({
        required: true,
        description: `The experiment’s key, at most ${LIMITS.keyMaxLength} characters; an unknown key answers reason NOT_FOUND, not an error.`,
      }),
      userId: t.arg.string({
        required: true,
        description: `The unit id, 1..${LIMITS.userIdMaxLength} characters: a user UUID, a device id, …`,
      }),
      attributes: t.arg({
        type: 'JSON',
        required: false,
        description: `The unit’s attributes, which the experiment’s \`targeting\` condition is evaluated against (as a GrowthBook SDK’s \`attributes\`), e.g. \`{"country": "US", "plan": "premium"}\`. A JSON object of at most ${LIMITS.attributesMaxBytes / 1024} KB; \`id\` is always the userId (a different \`id\` is refused). Only new units are targeted: a stored assignment is returned whatever the attributes.`,
      }),
    } satisfies ArgsOf<AssignArgs>,
    resolve: (_r, { experimentKey, userId, attributes }, ctx) =>
      assignVariant(ctx.db, experimentKey, userId, ctx.assignment, attributes),
  }),
);

/** The layer seed and linked holdout (own, else the layer's) of an experiment, through the loaders. */
async function layerAndHoldout(ctx: GraphQLContext, experiment: ExperimentRow) {
  const layer = experiment.layerId ? await ctx.loaders.layerById.load(experiment.layerId) : null;
  const holdoutId = experiment.holdoutId ?? layer?.holdoutId ?? null;
  const holdout = holdoutId ? await ctx.loaders.experimentById.load(holdoutId) : null;
  return {
    layerSeed: layer?.hashSeed ?? null,
    holdout: holdout
      ? { experiment: holdout, variants: await ctx.loaders.variantsByExperimentId.load(holdout.id) }
      : null,
  };
}

builder.objectFields(ExperimentRef, (t) => ({
  growthbook: t.field({
    type: 'JSON',
    description:
      'This experiment as a GrowthBook SDK experiment, for clients that evaluate locally: pass it to `gb.run(…)` with `attributes: { id: userId, …the attributes given to assignVariant }` and the SDK puts every new user where this service does. Fields: `key`, `name`, `seed` (the hash seed), `hashVersion` 2, `hashAttribute` "id", `coverage` (trafficAllocation), `weights` (the weights bucketing uses: as stored when they sum to 0.99..1.01, else scaled to sum 1), `variations` (the variants’ configs in position order), `meta` ([{ key: variant id, name }], so `result.key` is the variantId for events), `condition` (the targeting condition, when there is one) and `active` (true only while RUNNING).',
    resolve: async (experiment, _a, ctx) =>
      growthBookExperiment({
        experiment,
        variants: await ctx.loaders.variantsByExperimentId.load(experiment.id),
        ...(await layerAndHoldout(ctx, experiment)),
      }),
  }),
}));
