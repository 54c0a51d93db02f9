/**
 * The GraphQL HTTP application: yoga over the schema with authentication, rate limiting, hostile-query
 * limits (checked before execution), a per-request context with fresh DataLoaders, GraphiQL from local
 * assets, and masking of every unexpected error (with a request id to find its log line).
 */
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { GraphQLError, getOperationAST, type ValidationContext, type ValidationRule } from 'graphql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { AssignmentBatcher } from '../assignments/batcher';
import { type ExperimentConfigCache, notifyExperimentChanged } from '../assignments/config-cache';
import { ASSIGNMENTS_PATH, createAssignmentEndpoint } from '../assignments/http';
import type { AssignmentDeps } from '../assignments/service';
import { Authenticator, type Principal } from '../auth/authenticator';
import { useOperationScopes } from '../auth/operation-scopes';
import { LIMITS, type SecurityConfig, securityConfigFromEnv } from '../config';
import type { Database } from '../db/client';
import type { GraphQLContext } from '../graphql/context';
import { createLoaders } from '../graphql/loaders';
import { schema } from '../graphql/schema';
import { classifyFault, errorForLog } from './faults';
import { GRAPHIQL_EXAMPLE } from './graphiql';
import { useGraphiQLPage } from './graphiql-page';
import type { RateLimiter } from './rate-limit';
import type { Route } from './server';
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
  /** Groups concurrent assignments' SQL; one per process (made from `db` when absent). */
  assignmentBatcher?: AssignmentBatcher;
}

/** What the HTTP layer hands yoga with every request. */
export interface ServerContext {
  remoteAddress?: string;
  /** Aborted once the HTTP layer has answered TIMEOUT (see withinDeadline). */
  timedOut?: AbortSignal;
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
              // The document's own name when the request did not repeat it (most clients do not).
              operationName: getOperationAST(args.document, args.operationName)?.name?.value ?? null,
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

/**
 * Authentication and rate limiting before the document is even parsed: a client without a valid key
 * learns nothing about the schema (no validation errors naming fields) and costs no parsing.
 */
function useAccessControl(
  authenticator: Authenticator,
  rateLimiter: RateLimiter | null | undefined,
  principals: WeakMap<Request, Principal>,
): Plugin {
  return {
    async onParams({ request, context }) {
      const remoteAddress = (context as ServerContext).remoteAddress;
      const auth = await authenticator.authenticate(request.headers.get('authorization'), remoteAddress);
      await rateLimiter?.consume(auth.keyId ?? `addr:${remoteAddress ?? 'unknown'}`);
      principals.set(request, auth);
    },
  };
}

/**
 * GraphQL's Float accepts literals like `1e309`, which parse to Infinity; variables are checked by
 * graphql-js, literals are not. Refused here, anywhere in the document (JSON literals included).
 */
const finiteNumberLiterals: ValidationRule = (context) => ({
  FloatValue(node) {
    if (!Number.isFinite(Number(node.value))) {
      context.reportError(
        new GraphQLError(`Number ${node.value.slice(0, 40)} is out of range: numbers must be finite`, {
          nodes: [node],
          extensions: { code: 'BAD_USER_INPUT' },
        }),
      );
    }
  },
});

const SUGGESTION = /\s*Did you mean [^?]*\?/g;

function withoutSuggestion<E extends Error>(error: E): E {
  const message = error.message.replace(SUGGESTION, '');
  if (message === error.message || !(error instanceof GraphQLError)) return error;
  return new GraphQLError(message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: error.extensions,
  }) as unknown as E;
}

/**
 * Removes graphql-js's "Did you mean …?" hints, which name fields, arguments, input fields and enum
 * values (and so leak the schema when introspection is off), from validation errors and from variable
 * coercion errors (reported by execution). graphql-armor's plugin only covers field names in validation.
 */
function useNoSuggestions(): Plugin {
  return {
    onValidate:
      () =>
      ({ valid, result, setResult }) => {
        if (!valid) setResult(result.map(withoutSuggestion));
      },
    onExecute: () => ({
      onExecuteDone({ result, setResult }) {
        if ('errors' in result && result.errors?.length) {
          setResult({ ...result, errors: result.errors.map(withoutSuggestion) });
        }
      },
    }),
  };
}

/**
 * graphql-armor throws its rejections out of validation, which yoga answers with HTTP 200; reported as
 * validation errors instead they get a 400 like any other invalid document, and our code.
 */
const asValidationError = {
  propagateOnRejection: false,
  onReject: [
    (context: ValidationContext | null, error: GraphQLError) =>
      context?.reportError(
        new GraphQLError(error.message.replace(/^Syntax Error: /, ''), {
          extensions: { code: 'QUERY_TOO_COMPLEX' },
        }),
      ),
  ],
};

/**
 * Removes what yoga attaches for debugging (e.g. the JSON parser's message echoing the body). Yoga
 * answers `application/json` requests with 200 unless an error carries such an `originalError`, so the
 * `http.spec` flag (which asks for that 200) goes too: a malformed body keeps its 400.
 */
function withoutInternals(error: GraphQLError): GraphQLError {
  if (!error.extensions || !('originalError' in error.extensions)) return error;
  const { originalError: _dropped, ...extensions } = error.extensions;
  const http = extensions.http as { spec?: boolean } | undefined;
  if (http?.spec) {
    const { spec: _spec, ...rest } = http;
    extensions.http = rest;
  }
  return new GraphQLError(error.message, { nodes: error.nodes, path: error.path, extensions });
}

/**
 * The database for one request: its transactions neither start nor commit once the client has been told
 * TIMEOUT, so a client that retries never finds the first attempt went through after all. A request
 * past its deadline may still be waiting for a pool connection (that wait cannot be cancelled); its work
 * is dropped when it gets one. Single statements are not held back: they are reads, or assignVariant's
 * insert, which is idempotent (a retry finds the stored assignment); every other write is a transaction.
 */
function withinDeadline(db: Database, timedOut: AbortSignal): Database {
  const check = () => {
    if (timedOut.aborted) {
      throw new GraphQLError('The request timed out; nothing was written', {
        extensions: { code: 'TIMEOUT' },
      });
    }
  };
  const guarded = Object.create(db) as Database;
  guarded.transaction = ((work, config) =>
    db.transaction(async (tx) => {
      check();
      const result = await work(tx);
      check();
      return result;
    }, config)) as Database['transaction'];
  return guarded;
}

/** Assignment's process-wide parts, shared by GraphQL and the SDK endpoint. */
function assignmentDeps(options: AppOptions): AssignmentDeps {
  return {
    config: options.configCache?.source,
    memory: options.configCache,
    batcher: options.assignmentBatcher ?? new AssignmentBatcher(options.db),
  };
}

/** The authenticator when the caller brings none: the configured cache lifetime, failures counted by the rate limiter. */
function defaultAuthenticator(options: AppOptions, security: SecurityConfig): Authenticator {
  return new Authenticator(options.db, security.authRequired, {
    cacheTtlMs: security.cacheTtlMs,
    failures: options.rateLimiter?.authFailures,
  });
}

export function createApp(options: AppOptions): App {
  const { db, logger } = options;
  const security = options.security ?? securityConfigFromEnv();
  const authenticator = options.authenticator ?? defaultAuthenticator(options, security);
  const principals = new WeakMap<Request, Principal>();
  const assignment = assignmentDeps(options);
  const plugins: Plugin[] = [
    useAccessControl(authenticator, options.rateLimiter, principals),
    { onValidate: ({ addValidationRule }) => addValidationRule(finiteNumberLiterals) },
    maxDepthPlugin({
      n: LIMITS.maxDepth,
      ignoreIntrospection: true,
      flattenFragments: true,
      ...asValidationError,
    }),
    maxAliasesPlugin({ n: LIMITS.maxAliases, ...asValidationError }),
    maxTokensPlugin({ n: LIMITS.maxTokens }),
    maxDirectivesPlugin({ n: LIMITS.maxDirectives, ...asValidationError }),
    useOperationLog(logger) as Plugin,
    // After the log (which still records a refused operation): nothing runs unless every field is allowed.
    useOperationScopes() as Plugin,
  ];
  // GraphiQL compressed and cached (yoga's own would send its 9 MB page uncompressed on every open).
  if (security.graphiql)
    plugins.unshift(
      useGraphiQLPage({ endpoint: '/graphql', title: 'sona-experiments', defaultQuery: GRAPHIQL_EXAMPLE }),
    );
  if (!security.fieldSuggestions) plugins.push(useNoSuggestions());
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
    graphiql: false,
    maskedErrors: {
      isDev: false,
      maskError(error) {
        const original = error instanceof GraphQLError ? error.originalError : error;
        // Our own GraphQLErrors (bad arguments, auth, limits) are meant for the client; the rest is masked.
        if (error instanceof GraphQLError && (!original || original instanceof GraphQLError))
          return withoutInternals(error);
        const requestId = currentRequestId();
        const fault = classifyFault(original ?? error);
        logger.error({ ...errorForLog(original ?? error), requestId, fault: fault.code }, 'unexpected error');
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
    context: async ({ request, timedOut }): Promise<GraphQLContext> => {
      // Set by useAccessControl for every operation; authenticating here too keeps a plugin reorder safe.
      const auth =
        principals.get(request) ?? (await authenticator.authenticate(request.headers.get('authorization')));
      const requestDb = timedOut ? withinDeadline(db, timedOut) : db;
      return {
        db: requestDb,
        loaders: createLoaders(requestDb),
        actor: { name: auth.name },
        auth,
        requestId: currentRequestId() ?? request.headers.get('x-request-id') ?? crypto.randomUUID(),
        assignment,
        // Every configuration change notifies all instances (their caches drop on commit).
        onExperimentChange: (experimentId, tx) => notifyExperimentChanged(tx, experimentId),
        afterExperimentChange: options.configCache ? () => options.configCache!.invalidate() : undefined,
      };
    },
  });
}

export interface Service {
  /** GraphQL at /graphql (yoga). */
  app: App;
  /** The routes outside GraphQL, for createHttpServer. */
  routes: Record<string, Route>;
}

/**
 * The whole HTTP surface: GraphQL plus the SDK assignment endpoint, sharing one authenticator, rate
 * limiter, configuration cache and assignment batcher.
 */
export function createService(options: AppOptions): Service {
  const security = options.security ?? securityConfigFromEnv();
  const authenticator = options.authenticator ?? defaultAuthenticator(options, security);
  const assignmentBatcher = options.assignmentBatcher ?? new AssignmentBatcher(options.db);
  const shared: AppOptions = { ...options, security, authenticator, assignmentBatcher };
  const assignments = createAssignmentEndpoint({
    db: options.db,
    logger: options.logger,
    authenticator,
    rateLimiter: options.rateLimiter,
    deps: assignmentDeps(shared),
    maxBodyBytes: security.maxBodyBytes,
    requestTimeoutMs: security.requestTimeoutMs,
  });
  return { app: createApp(shared), routes: { [ASSIGNMENTS_PATH]: assignments } };
}
