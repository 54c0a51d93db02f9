/** The Layer type, its queries and mutations, and Experiment.layer / layerRanges / setExperimentLayer. */
import { parse } from '../common/validation';
import { LIMITS } from '../config';
import { ExperimentRef } from '../experiments/graphql';
import { builder } from '../graphql/builder';
import type { GraphQLContext } from '../graphql/context';
import { CREATE_ERRORS, VARIANT_CHANGE_ERRORS } from '../graphql/errors';
import type { ArgsOf, InputFieldsOf } from '../graphql/input';
import { experimentKeyRef } from '../common/validation';
import type { LayerRow } from './repository';
import * as repo from './repository';
import {
  type CreateLayerInput as CreateInput,
  createLayerService,
  type LayerRangeInput as RangeInput,
  type SetExperimentLayerArgs,
  type SetHoldoutArgs,
  type SetLayerHoldoutArgs,
  type UpdateLayerInput as UpdateInput,
} from './service';

function service(ctx: GraphQLContext) {
  return createLayerService({
    db: ctx.db,
    actor: ctx.actor,
    onChange: ctx.onExperimentChange,
    afterCommit: ctx.afterExperimentChange,
  });
}

export const LayerRef = builder.objectRef<LayerRow>('Layer');
const LayerRangeRef = builder.objectRef<[number, number]>('LayerRange');

LayerRangeRef.implement({
  description: 'A range [start, end) of a layer’s hash space (0..1).',
  authScopes: { read: true },
  fields: (t) => ({
    start: t.float({ description: 'Inclusive.', resolve: (r) => r[0] }),
    end: t.float({ description: 'Exclusive.', resolve: (r) => r[1] }),
  }),
});

LayerRef.implement({
  description:
    'Mutual exclusion: experiments of a layer own disjoint ranges of the layer’s hash space, so a unit is in at most one of them (GrowthBook’s `filters`). The layer hash uses the layer’s own seed, independent of each experiment’s bucketing.',
  authScopes: { read: true },
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable UUID.' }),
    key: t.exposeString('key', { description: 'Unique slug.' }),
    name: t.exposeString('name', { description: 'Display name.' }),
    description: t.exposeString('description', { nullable: true, description: 'Free text for people.' }),
    hashSeed: t.exposeString('hashSeed', {
      description: 'Seed of the layer hash (the key unless given at creation); fixed for the layer’s life.',
    }),
    archivedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it was archived; an archived layer takes no new experiments.',
      resolve: (l) => l.archivedAt,
    }),
    holdout: t.field({
      type: ExperimentRef,
      nullable: true,
      description:
        'The HOLDOUT linked to the whole layer (setLayerHoldout): no experiment of it enrolls its held-out units.',
      resolve: (l, _a, ctx) => (l.holdoutId ? ctx.loaders.experimentById.load(l.holdoutId) : null),
    }),
    experiments: t.field({
      type: [ExperimentRef],
      description: 'Its experiments (archived ones too), oldest first; `layerRanges` on each.',
      resolve: (l, _a, ctx) => ctx.loaders.experimentsByLayerId.load(l.id),
    }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When it was created.',
      resolve: (l) => l.createdAt,
    }),
  }),
});

builder.objectFields(ExperimentRef, (t) => ({
  layer: t.field({
    type: LayerRef,
    nullable: true,
    description: 'The layer the experiment belongs to (null: none). Set with setExperimentLayer.',
    resolve: (e, _a, ctx) => (e.layerId ? ctx.loaders.layerById.load(e.layerId) : null),
  }),
  layerRanges: t.field({
    type: [LayerRangeRef],
    nullable: true,
    description:
      'Its ranges of the layer’s hash space; units outside them get reason OUTSIDE_LAYER. Null outside a layer.',
    resolve: (e) => e.layerRanges,
  }),
}));

builder.queryFields((t) => ({
  layer: t.field({
    type: LayerRef,
    nullable: true,
    authScopes: { read: true },
    description: 'One layer by key; null when there is none.',
    args: { key: t.arg.string({ required: true, description: 'The layer’s key.' }) },
    resolve: (_r, args, ctx) =>
      repo.getLayer(ctx.db, { key: parse(experimentKeyRef('key'), args.key, ['key']) }),
  }),
  layers: t.field({
    type: [LayerRef],
    authScopes: { read: true },
    description: 'All layers by key; archived ones only with includeArchived.',
    args: { includeArchived: t.arg.boolean({ required: false, description: 'Default false.' }) },
    resolve: (_r, args, ctx) => repo.listLayers(ctx.db, args.includeArchived ?? false),
  }),
}));

const CreateLayerInput = builder.inputRef<CreateInput, false>('CreateLayerInput').implement({
  description: 'A new layer.',
  fields: (t) =>
    ({
      key: t.string({ required: true, description: `Slug, at most ${LIMITS.keyMaxLength} characters.` }),
      name: t.string({ required: true, description: `1..${LIMITS.nameMaxLength} characters.` }),
      description: t.string({ required: false, description: 'Free text for people.' }),
      hashSeed: t.string({
        required: false,
        description: 'Seed of the layer hash; omit to use the key. It cannot change later.',
      }),
    }) satisfies InputFieldsOf<CreateInput>,
});

const UpdateLayerInput = builder.inputRef<UpdateInput, false>('UpdateLayerInput').implement({
  description: 'Fields to change; omitted fields stay. The seed never changes.',
  fields: (t) =>
    ({
      name: t.string({ required: false, description: 'New display name.' }),
      description: t.string({ required: false, description: 'New description; null clears it.' }),
    }) satisfies InputFieldsOf<UpdateInput>,
});

const LayerRangeInput = builder.inputRef<RangeInput, false>('LayerRangeInput').implement({
  description: 'A range [start, end) of the layer’s hash space, 0 ≤ start < end ≤ 1.',
  fields: (t) =>
    ({
      start: t.float({ required: true, description: 'Inclusive, 0..1.' }),
      end: t.float({ required: true, description: 'Exclusive, 0..1, after start.' }),
    }) satisfies InputFieldsOf<RangeInput>,
});

builder.mutationFields((t) => ({
  createLayer: t.field({
    type: LayerRef,
    description: 'Creates a layer. Audited as `layer.created`.',
    authScopes: { write: true },
    errors: { types: CREATE_ERRORS },
    args: { input: t.arg({ type: CreateLayerInput, required: true, description: 'The layer.' }) },
    resolve: (_r, { input }, ctx) => service(ctx).create(input),
  }),
  updateLayer: t.field({
    type: LayerRef,
    description: 'Changes a layer’s name or description. Audited as `layer.updated`.',
    authScopes: { write: true },
    errors: { types: VARIANT_CHANGE_ERRORS },
    args: {
      id: t.arg.id({ required: true, description: 'The layer’s UUID.' }),
      input: t.arg({ type: UpdateLayerInput, required: true, description: 'The fields to change.' }),
    },
    resolve: (_r, { id, input }, ctx) => service(ctx).update(id, input),
  }),
  archiveLayer: t.field({
    type: LayerRef,
    description:
      'Archives a layer once all its experiments are COMPLETED or ARCHIVED (else ConflictError naming one). Audited as `layer.archived`.',
    authScopes: { write: true },
    errors: { types: VARIANT_CHANGE_ERRORS },
    args: { id: t.arg.id({ required: true, description: 'The layer’s UUID.' }) },
    resolve: (_r, { id }, ctx) => service(ctx).archive(id),
  }),
  setHoldout: t.field({
    type: ExperimentRef,
    description:
      'Links a DRAFT experiment to a HOLDOUT (holdoutKey null unlinks): while the holdout runs, its held-out units get reason HOLDOUT and the control’s experience here, and are never enrolled. Audited as `experiment.holdout_changed`.',
    authScopes: { write: true },
    errors: { types: VARIANT_CHANGE_ERRORS },
    args: {
      experimentKey: t.arg.string({ required: true, description: 'The experiment’s key.' }),
      holdoutKey: t.arg.string({ required: false, description: 'The HOLDOUT’s key; null unlinks.' }),
    } satisfies ArgsOf<SetHoldoutArgs>,
    resolve: (_r, args, ctx) => service(ctx).setHoldout(args),
  }),
  setLayerHoldout: t.field({
    type: LayerRef,
    description:
      'Links every experiment of a layer to a HOLDOUT (holdoutKey null unlinks), while none of them is RUNNING or PAUSED. An experiment’s own holdout (setHoldout) takes precedence. Audited as `layer.holdout_changed`.',
    authScopes: { write: true },
    errors: { types: VARIANT_CHANGE_ERRORS },
    args: {
      layerKey: t.arg.string({ required: true, description: 'The layer’s key.' }),
      holdoutKey: t.arg.string({ required: false, description: 'The HOLDOUT’s key; null unlinks.' }),
    } satisfies ArgsOf<SetLayerHoldoutArgs>,
    resolve: (_r, args, ctx) => service(ctx).setLayerHoldout(args),
  }),
  setExperimentLayer: t.field({
    type: ExperimentRef,
    description: `Puts a DRAFT experiment in a layer with its ranges (at most ${LIMITS.maxLayerRanges}), or takes it out (layerKey null). Ranges overlapping another non-archived experiment of the layer are a ConflictError naming it; once the experiment has started its population is fixed (RuleViolationError POPULATION_FIXED). Audited as \`experiment.layer_changed\`.`,
    authScopes: { write: true },
    errors: { types: VARIANT_CHANGE_ERRORS },
    args: {
      experimentKey: t.arg.string({ required: true, description: 'The experiment’s key.' }),
      layerKey: t.arg.string({ required: false, description: 'The layer’s key; null takes it out.' }),
      ranges: t.arg({
        type: [LayerRangeInput],
        required: false,
        description:
          'Its ranges of the layer, disjoint from each other and from the layer’s other experiments.',
      }),
    } satisfies ArgsOf<SetExperimentLayerArgs>,
    resolve: (_r, args, ctx) => service(ctx).setExperimentLayer(args),
  }),
}));
