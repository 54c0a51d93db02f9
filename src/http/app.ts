/**
 * The GraphQL HTTP application: yoga over the schema with authentication, rate limiting, hostile-query
 * limits (checked before execution), a per-request context with fresh DataLoaders, GraphiQL from local
 * assets, and masking of every unexpected error (with a request id to find its log line).
 */
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { GraphQLError } from 'graphql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { type ExperimentConfigCache, notifyExperimentChanged } from '../assignments/config-cache';
import { Authenticator } from '../auth/authenticator';
import { LIMITS, type SecurityConfig, securityConfigFromEnv } from '../config';
import type { Database } from '../db/client';
import type { GraphQLContext } from '../graphql/context';
import { createLoaders } from '../graphql/loaders';
import { schema } from '../graphql/schema';
import { classifyFault } from './faults';
import { GRAPHIQL_EXAMPLE } from './graphiql';
import type { RateLimiter } from './rate-limit';
import { currentRequestId } from './request-context';

export interface AppOptions {
  db: Database;
  logger: Logger;
  /** Defaults to the environment's (securityConfigFromEnv). */
  security?: SecurityConfig;
  /** Verifies API keys; one per process (it caches verified keys). Made from `security` when absent. */
  authenticator?: Authenticator;
  rateLimiter?: RateLimiter | null;
  /** Assignment's configuration cache; without one every assignment reads the configuration. */
  configCache?: ExperimentConfigCache;
}

/** What the HTTP layer hands yoga with every request. */
export interface ServerContext {
  remoteAddress?: string;
}

export type App = YogaServerInstance<ServerContext, GraphQLContext>;

/** One structured log line per operation: request id, operation name, duration, outcome. */
function useOperationLog(logger: Logger): Plugin<GraphQLContext> {
  return {
    onExecute({ args }) {
      const started = performance.now();
      return {
        onExecuteDone({ result }) {
          const errors = 'errors' in result && Array.isArray(result.errors) ? result.errors.length : 0;
          logger.info(
            {
              requestId: args.contextValue.requestId,
              operationName: args.operationName ?? null,
              actor: args.contextValue.auth.name,
              durationMs: Math.round((performance.now() - started) * 10) / 10,
              errors,
            },
            'graphql operation',
          );
        },
      };
    },
  };
}

export function createApp(options: AppOptions): App {
  const { db, logger } = options;
  const security = options.security ?? securityConfigFromEnv();
  const authenticator = options.authenticator ?? new Authenticator(db, security.authRequired);
  const plugins: Plugin[] = [
    maxDepthPlugin({ n: LIMITS.maxDepth, ignoreIntrospection: true, flattenFragments: true }),
    maxAliasesPlugin({ n: LIMITS.maxAliases }),
    maxTokensPlugin({ n: LIMITS.maxTokens }),
    maxDirectivesPlugin({ n: LIMITS.maxDirectives }),
    useOperationLog(logger) as Plugin,
  ];
  if (!security.fieldSuggestions) plugins.push(blockFieldSuggestionsPlugin());
  if (!security.introspection) plugins.push(useDisableIntrospection());
  // Browsers may send "simple" cross-site requests (GET, form posts) without preflight; in production
  // such requests must carry a custom header, which a cross-site form cannot set.
  if (security.authRequired)
    plugins.push(useCSRFPrevention({ requestHeaders: ['x-graphql-yoga-csrf', 'apollo-require-preflight'] }));

  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    logging: false,
    plugins,
    graphiql: security.graphiql ? { title: 'sona-experiments', defaultQuery: GRAPHIQL_EXAMPLE } : false,
    renderGraphiQL,
    maskedErrors: {
      isDev: false,
      maskError(error, message) {
        const original = error instanceof GraphQLError ? error.originalError : error;
        // Our own GraphQLErrors (bad arguments, auth, limits) are meant for the client; the rest is masked.
        if (error instanceof GraphQLError && (!original || original instanceof GraphQLError)) return error;
        const requestId = currentRequestId();
        const fault = classifyFault(original ?? error);
        logger.error({ err: original ?? error, requestId, fault: fault.code }, 'unexpected error');
        return new GraphQLError(fault.message, {
          nodes: error instanceof GraphQLError ? error.nodes : undefined,
          path: error instanceof GraphQLError ? error.path : undefined,
          extensions: {
            code: fault.code,
            requestId,
            ...(fault.status ? { http: { status: fault.status } } : {}),
          },
        });
      },
    },
    context: async ({ request, remoteAddress }): Promise<GraphQLContext> => {
      const auth = await authenticator.authenticate(request.headers.get('authorization'));
      await options.rateLimiter?.consume(auth.keyId ?? `addr:${remoteAddress ?? 'unknown'}`);
      return {
        db,
        loaders: createLoaders(db),
        actor: { name: auth.name },
        auth,
        requestId: currentRequestId() ?? request.headers.get('x-request-id') ?? crypto.randomUUID(),
        configSource: options.configCache?.source,
        // Every configuration change notifies all instances (their caches drop on commit).
        onExperimentChange: (experimentId, tx) => notifyExperimentChanged(tx, experimentId),
        afterExperimentChange: options.configCache ? () => options.configCache!.invalidate() : undefined,
      };
    },
  });
}
