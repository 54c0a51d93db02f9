/**
 * Subscriptions (Server-Sent Events, graphql-sse protocol, yoga's built-in transport): the same numbers
 * as `Experiment.results` and the same experiment as `Query.experiment`, pushed after every committed
 * change (coalesced, at most one push per experiment per second; see src/live/updates.ts).
 */
import { GraphQLError } from 'graphql';
import { NotFoundError } from '../common/errors';
import { experimentKeyRef, parse } from '../common/validation';
import type { ExperimentRow } from '../experiments/repository';
import { getExperimentsByKeys } from '../experiments/repository';
import { ExperimentRef } from '../experiments/graphql';
import { builder } from '../graphql/builder';
import type { GraphQLContext } from '../graphql/context';
import { orBadInput, toGraphQLError } from '../graphql/errors';
import { createLoaders } from '../graphql/loaders';
import { analysisArgs, ResultsRef } from '../results/graphql';
import { type ExperimentResults, getResults } from '../results/service';

const experimentKeyArg = experimentKeyRef();

/** The experiment by key, or a NOT_FOUND error; re-read at every push (its status, weights change). */
async function experimentByKey(ctx: GraphQLContext, key: string): Promise<ExperimentRow | null> {
  // Each push is a new read: loaders made for an earlier push would answer from their cache.
  ctx.loaders = createLoaders(ctx.db);
  const [row] = await getExperimentsByKeys(ctx.db, [key]);
  return row ?? null;
}

function live(ctx: GraphQLContext) {
  if (!ctx.live) {
    throw new GraphQLError('Subscriptions are not available on this server', {
      extensions: { code: 'SUBSCRIPTIONS_UNAVAILABLE' },
    });
  }
  return ctx.live;
}

async function existing(ctx: GraphQLContext, rawKey: string): Promise<ExperimentRow> {
  const key = parse(experimentKeyArg, rawKey, ['experimentKey']);
  const row = await experimentByKey(ctx, key);
  if (!row) throw toGraphQLError(new NotFoundError('Experiment', key));
  return row;
}

builder.subscriptionFields((t) => ({
  experimentResults: t.field({
    type: ResultsRef,
    authScopes: { read: true },
    description:
      'Live `Experiment.results`: the current statistics at once, then again whenever events recorded for the experiment (through any instance), or a change of its configuration, committed; at most one push per second per experiment (changes in between arrive together in the next push). Each payload is what `results` with the same arguments returns at that moment. Over Server-Sent Events: POST or GET /graphql with `Accept: text/event-stream`. Ends when the experiment is deleted.',
    args: {
      experimentKey: t.arg.string({ required: true, description: 'The experiment’s key.' }),
      metric: t.arg.string({
        required: true,
        description: 'A defined metric’s key or a metric name, as for `Experiment.results`.',
      }),
      ...analysisArgs(t.arg),
    },
    subscribe: async (_root, { experimentKey, metric, ...args }, ctx) => {
      const updates = live(ctx);
      const experiment = await orBadInput(() => existing(ctx, experimentKey));
      const compute = async (e: ExperimentRow) => (await getResults(ctx.db, e, metric, args))[0];
      const first = await orBadInput(() => compute(experiment));
      return updates.watch<ExperimentResults>(experiment.id, first, async () => {
        const current = await experimentByKey(ctx, experiment.key);
        return current ? compute(current) : null;
      });
    },
    resolve: (results) => results,
  }),
  experimentChanged: t.field({
    type: ExperimentRef,
    authScopes: { read: true },
    description:
      'Live `Query.experiment(key)`: the experiment at once, then again whenever its configuration (status, variants, weights, schedule…) or its numbers (events recorded through any instance) changed and committed; at most one push per second per experiment. Select what a dashboard shows (status, `scorecard`, `auditLog`…): every field is read anew for each push. Ends when the experiment is deleted.',
    args: {
      experimentKey: t.arg.string({ required: true, description: 'The experiment’s key.' }),
    },
    subscribe: async (_root, { experimentKey }, ctx) => {
      const updates = live(ctx);
      const experiment = await orBadInput(() => existing(ctx, experimentKey));
      return updates.watch<ExperimentRow>(experiment.id, experiment, () =>
        experimentByKey(ctx, experiment.key),
      );
    },
    resolve: (experiment) => experiment,
  }),
}));
