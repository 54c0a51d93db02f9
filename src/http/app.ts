/**
 * The GraphQL HTTP application: yoga over the schema, a per-request context with fresh DataLoaders,
 * GraphiQL served from local assets, and masking of every unexpected error.
 */
import { randomUUID } from 'node:crypto';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { GraphQLError } from 'graphql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { type ExperimentConfigCache, notifyExperimentChanged } from '../assignments/config-cache';
import type { Database } from '../db/client';
import type { GraphQLContext } from '../graphql/context';
import { createLoaders } from '../graphql/loaders';
import { schema } from '../graphql/schema';
import { GRAPHIQL_EXAMPLE } from './graphiql';

export interface AppOptions {
  db: Database;
  logger: Logger;
  graphiql?: boolean;
  /** Assignment's configuration cache; without one every assignment reads the configuration. */
  configCache?: ExperimentConfigCache;
}

export type App = YogaServerInstance<Record<string, unknown>, GraphQLContext>;

export function createApp(options: AppOptions): App {
  const { db, logger } = options;
  return createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    logging: false,
    graphiql:
      options.graphiql === false ? false : { title: 'sona-experiments', defaultQuery: GRAPHIQL_EXAMPLE },
    renderGraphiQL,
    maskedErrors: {
      isDev: false,
      maskError(error, message) {
        const original = error instanceof GraphQLError ? error.originalError : error;
        // Our own GraphQLErrors (bad arguments) are meant for the client; everything else is masked.
        if (error instanceof GraphQLError && (!original || original instanceof GraphQLError)) return error;
        const requestId = (error as GraphQLError).extensions?.requestId;
        logger.error({ err: original ?? error }, 'unexpected error');
        return new GraphQLError(message, {
          nodes: error instanceof GraphQLError ? error.nodes : undefined,
          path: error instanceof GraphQLError ? error.path : undefined,
          extensions: { code: 'INTERNAL_SERVER_ERROR', ...(requestId ? { requestId } : {}) },
        });
      },
    },
    context: ({ request }): GraphQLContext => ({
      db,
      loaders: createLoaders(db),
      actor: { name: 'anonymous' },
      requestId: request.headers.get('x-request-id') || randomUUID(),
      configSource: options.configCache?.source,
      // Every configuration change notifies all instances (their caches drop on commit).
      onExperimentChange: (experimentId, tx) => notifyExperimentChanged(tx, experimentId),
      afterExperimentChange: options.configCache ? () => options.configCache!.invalidate() : undefined,
    }),
  });
}
