/**
 * The GraphQL application: yoga over the schema with access control and hostile-query limits before
 * execution, one log line per operation, GraphiQL from local assets, error masking, and a per-request
 * context with fresh DataLoaders over the request's deadline-aware database. It builds nothing shared:
 * the composition root (src/http/app.ts) hands it the process-wide parts.
 */
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { useGraphQlJit } from '@envelop/graphql-jit';
import {
  type ExecutionArgs,
  getVariableValues,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  OperationTypeNode,
} from 'graphql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { type ExperimentConfigCache, notifyExperimentChanged } from '../assignments/config-cache';
import type { AssignmentDeps } from '../assignments/service';
import type { Authenticator, Principal } from '../auth/authenticator';
import { useOperationScopes } from '../auth/operation-scopes';
import type { SecurityConfig } from '../config';
import type { Database } from '../db/client';
import type { ReplicaSet } from '../db/replicas';
import type { GraphQLContext } from '../graphql/context';
import type { LiveUpdates } from '../live/updates';
import { createLoaders } from '../graphql/loaders';
import type { Metrics } from '../observability/metrics';
import { schema } from '../graphql/schema';
import type { RequestDeadline } from './deadline';
import { GRAPHIQL_EXAMPLE } from './graphiql';
import { useGraphiQLPage } from './graphiql-page';
import { useAccessControl } from './plugins/access-control';
import { errorMasker } from './plugins/error-masking';
import { useRequestMetrics } from './plugins/metrics';
import { useNoSuggestions } from './plugins/no-suggestions';
import { useReadReplicas } from './plugins/read-replicas';
import { useOperationLog } from './plugins/operation-log';
import { queryLimitPlugins } from './plugins/query-limits';
import { type ResponseCache, useReadResponseCache } from './plugins/response-cache';
import type { RateLimiter } from './rate-limit';
import { currentRequestId } from './request-context';

/** What the HTTP layer hands yoga with every request. */
export interface ServerContext {
  remoteAddress?: string;
  /** The request's deadline (src/http/deadline.ts); absent when yoga is called directly (tests). */
  deadline?: RequestDeadline;
}

export type App = YogaServerInstance<ServerContext, GraphQLContext>;

/** The process-wide parts GraphQL runs with, each built once by the composition root. */
export interface GraphQLParts {
  db: Database;
  logger: Logger;
  security: SecurityConfig;
  authenticator: Authenticator;
  rateLimiter: RateLimiter | null;
  assignment: AssignmentDeps;
  configCache: ExperimentConfigCache | null;
  metrics: Metrics | null;
  /** Read-only operations go to a replica when one is close enough; null: everything on `db`. */
  replicas: ReplicaSet | null;
  /** Stored answers of read queries (src/http/plugins/response-cache.ts); null: every query executes. */
  responseCache: ResponseCache | null;
  /** Change notifications for subscriptions; null: subscriptions are refused. */
  live: LiveUpdates | null;
}

/**
 * Which operations graphql-jit executes: queries only (mutations keep graphql-js's input coercion and
 * errors exactly), of a document holding one operation (the plugin caches a compilation per document,
 * whatever operationName picks), whose variables graphql-js accepts (invalid variables are answered by
 * graphql-js, with its messages and its HTTP 400; graphql-jit would answer 200).
 */
function compiledExecution({ schema, document, variableValues }: ExecutionArgs): boolean {
  let operation: OperationDefinitionNode | null = null;
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    if (operation) return false;
    operation = definition;
  }
  if (!operation || operation.operation !== OperationTypeNode.QUERY) return false;
  if (!operation.variableDefinitions?.length) return true;
  return !('errors' in getVariableValues(schema, operation.variableDefinitions, variableValues ?? {}));
}

/** A body whose Content-Length is over the limit: 413 before it is read (the server counts every byte). */
function useDeclaredBodyLimit(maxBodyBytes: number): Plugin {
  return {
    onRequestParse({ request }) {
      const declared = request.headers.get('content-length');
      if (declared === null) return;
      if (!/^\d+$/.test(declared))
        throw new GraphQLError('Content-Length header is invalid', {
          extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
        });
      if (Number(declared) > maxBodyBytes)
        throw new GraphQLError(`Request body exceeds ${maxBodyBytes} bytes`, {
          extensions: { code: 'PAYLOAD_TOO_LARGE', http: { status: 413 } },
        });
    },
  };
}

export function createGraphQLApp(parts: GraphQLParts): App {
  const { db, logger, security, authenticator, configCache, responseCache } = parts;
  const principals = new WeakMap<Request, Principal>();
  const plugins: Plugin[] = [
    useDeclaredBodyLimit(security.maxBodyBytes),
    useAccessControl(authenticator, parts.rateLimiter, principals),
    ...queryLimitPlugins(),
    useOperationLog(logger) as Plugin,
    // After the log (which still records a refused operation): nothing runs unless every field is allowed.
    useOperationScopes() as Plugin,
    // Runs read queries as compiled JavaScript (graphql-jit), compiled once per parsed document (yoga's
    // parser cache hands the same document back for the same text): the resolvers, scopes, complexity
    // and masking are the same, graphql-js's per-field bookkeeping is gone (bench/README.md, scenario 5).
    useGraphQlJit({}, { enableIf: compiledExecution }) as Plugin,
  ];
  // GraphiQL compressed and cached (yoga's own would send its 9 MB page uncompressed on every open).
  if (security.graphiql)
    plugins.unshift(
      useGraphiQLPage({
        endpoint: '/graphql',
        title: 'sona-experiments',
        defaultQuery: GRAPHIQL_EXAMPLE,
      }),
    );
  // After every plugin that refuses an operation: an answer is stored only once it passed them all, and
  // served only to an authenticated caller with the same scopes.
  if (responseCache) plugins.push(...useReadResponseCache(responseCache, schema, principals, logger));
  if (parts.metrics) plugins.push(useRequestMetrics(parts.metrics));
  if (parts.replicas) plugins.push(useReadReplicas(parts.replicas) as Plugin);
  if (!security.fieldSuggestions) plugins.push(useNoSuggestions());
  if (!security.introspection) plugins.push(useDisableIntrospection());
  // Browsers may send "simple" cross-site requests (GET, form posts) without preflight; in production
  // such requests must carry a custom header, which a cross-site form cannot set.
  if (security.authRequired)
    plugins.push(
      useCSRFPrevention({
        requestHeaders: ['x-graphql-yoga-csrf', 'apollo-require-preflight'],
      }),
    );

  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // The HTTP server (src/http/server.ts) reads every body under security.maxBodyBytes (413 beyond it)
    // and hands yoga the bytes; yoga's own limit would pipe them again through a counting stream on
    // every request (~0.1 ms of CPU). A caller of app.fetch still has its declared length checked.
    maxRequestBodySize: false,
    logging: false,
    plugins,
    graphiql: false,
    maskedErrors: {
      isDev: false,
      maskError: errorMasker(logger, parts.metrics ?? undefined),
    },
    context: async ({ request, deadline }): Promise<GraphQLContext> => {
      // Set by useAccessControl for every operation; authenticating here too keeps a plugin reorder safe.
      const auth =
        principals.get(request) ?? (await authenticator.authenticate(request.headers.get('authorization')));
      const requestDb = deadline ? deadline.database(db) : db;
      return {
        db: requestDb,
        loaders: createLoaders(requestDb),
        actor: { name: auth.name },
        auth,
        requestId: currentRequestId() ?? request.headers.get('x-request-id') ?? crypto.randomUUID(),
        assignment: parts.assignment,
        // Every configuration change notifies all instances (their caches drop on commit); this
        // instance's caches drop as soon as it committed (read-your-writes).
        onExperimentChange: (experimentId, tx) => notifyExperimentChanged(tx, experimentId),
        afterExperimentChange:
          configCache || responseCache
            ? () => {
                configCache?.invalidate();
                responseCache?.invalidate();
              }
            : undefined,
        webhooks: security.webhooks,
        live: parts.live,
      };
    },
  });
}
