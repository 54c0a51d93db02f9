/**
 * Response caching of read queries (@graphql-yoga/plugin-response-cache): a dashboard repeating the same
 * query gets the stored answer without parsing, validating, executing or any SQL.
 *
 * What may be cached is an allow-list of schema coordinates whose data changes only through management
 * operations (experiments, variants, phases, metric settings, the audit log, the GrowthBook payload),
 * every one of which NOTIFYs `EXPERIMENT_CHANGED_CHANNEL` inside its transaction. Every other field (all
 * that ingestion or assignment feeds: metrics, summary, assignmentCount, results, metricNames, users,
 * assignments; keys; and whatever is added to the schema later) has a time to live of 0, so a document
 * selecting one is never stored. Invalidation drops everything: on every notification (from any
 * instance), when the LISTEN (re)connects (a notification may have been missed), and right after a change
 * through this instance commits; no entry outlives the time to live, should a notification be missed.
 * Entries are per scope set (never one key's answer for a key with other scopes), only answers without
 * errors are stored, and mutations never are.
 */
import { createInMemoryCache, useResponseCache } from '@graphql-yoga/plugin-response-cache';
import { getOperationAST, type GraphQLSchema, isObjectType, OperationTypeNode } from 'graphql';
import type { GraphQLParams, Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import { EXPERIMENT_CHANGED_CHANNEL } from '../../assignments/config-cache';
import type { Principal } from '../../auth/authenticator';
import type { DatabaseHandle } from '../../db/client';
import { currentRequestId, requestContext } from '../request-context';

/** Most answers kept (least recently used go first); an answer is a few kB to a few hundred kB. */
export const RESPONSE_CACHE_MAX_ENTRIES = 1000;
/** Most document texts remembered as never stored (then forgotten all at once). */
const NEVER_STORED_MAX = 10_000;

/**
 * The fields whose answers may be stored, by type. Each changes only through the experiment service's
 * notifying transactions (src/experiments/service.ts `change`); nothing here is fed by ingestion or
 * assignment. A field not listed is never cached.
 */
const CACHEABLE_FIELDS: Record<string, readonly string[]> = {
  Query: ['experiment', 'experiments', 'sampleSize'],
  ExperimentConnection: ['edges', 'pageInfo', 'totalCount'],
  ExperimentEdge: ['cursor', 'node'],
  PageInfo: ['endCursor', 'hasNextPage', 'hasPreviousPage', 'startCursor'],
  Experiment: [
    'id',
    'key',
    'name',
    'description',
    'hashSeed',
    'status',
    'trafficAllocation',
    'createdAt',
    'updatedAt',
    'startAt',
    'endAt',
    'variants',
    'phases',
    'metricSettings',
    'auditLog',
    'growthbook',
  ],
  Variant: ['id', 'name', 'position', 'weight', 'isControl', 'config', 'experiment'],
  ExperimentPhase: ['index', 'startedAt', 'endedAt', 'trafficAllocation', 'weights'],
  PhaseWeight: ['variantId', 'weight'],
  MetricSetting: ['metric', 'conversionWindowHours'],
  AuditEntry: ['id', 'action', 'actor', 'createdAt', 'details', 'entityId', 'entityType'],
};

/** A time to live of 0 for every field of the schema not in CACHEABLE_FIELDS (and introspection). */
export function uncacheableCoordinates(schema: GraphQLSchema): Record<string, number> {
  const ttls: Record<string, number> = { 'Query.__schema': 0, 'Query.__type': 0 };
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    const allowed = new Set(CACHEABLE_FIELDS[type.name] ?? []);
    for (const field of Object.keys(type.getFields())) {
      if (!allowed.has(field)) ttls[`${type.name}.${field}`] = 0;
    }
  }
  return ttls;
}

type Stored = NonNullable<Awaited<ReturnType<ReturnType<typeof createInMemoryCache>['get']>>>;

/**
 * The store behind the plugin, one per process: an LRU of answers that is emptied as a whole on every
 * change. An answer whose execution overlapped an invalidation may have read the state before the change:
 * the plugin below does not store it (`generation` counts invalidations).
 */
export class ResponseCache {
  private entries = createInMemoryCache({ max: RESPONSE_CACHE_MAX_ENTRIES });
  private unlisten: (() => Promise<void>) | null = null;
  /** Invalidations so far. */
  generation = 0;
  hits = 0;

  /** Longest an answer is served (ms); bounds staleness when a notification is missed. */
  constructor(readonly ttlMs: number) {}

  /** Subscribes to experiment change notifications; call once per process. */
  async start(handle: DatabaseHandle): Promise<void> {
    this.unlisten = await handle.listen(
      EXPERIMENT_CHANGED_CHANNEL,
      () => this.invalidate(),
      () => this.invalidate(),
    );
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
    this.unlisten = null;
  }

  /** Forgets every answer (changes are rare management operations). */
  invalidate(): void {
    this.generation++;
    this.entries = createInMemoryCache({ max: RESPONSE_CACHE_MAX_ENTRIES });
  }

  /** The plugin's view of the store. */
  readonly store = {
    get: (key: string): Stored | null => {
      const found = this.entries.get(key) as Stored | null | undefined;
      if (!found) return null;
      this.hits++;
      return found;
    },
    set: (key: string, result: Stored, entities: Iterable<{ typename: string }>, ttl: number) =>
      this.entries.set(key, result, entities, Math.min(ttl, this.ttlMs)),
    // Mutation answers name the entities they touched; changes invalidate through their notifications.
    invalidate: () => {},
  };
}

/** The key for a principal: its scopes, so keys with the same scopes share answers and no others do. */
const sessionOf = (principal: Principal) => [...principal.scopes].sort().join(',');

/** `query Name` / `query Name(` at the start of a document: the operation name for a served answer's log line. */
const NAMED_QUERY = /^\s*query\s+([_A-Za-z][_0-9A-Za-z]*)/;

/**
 * The plugin; goes after access control (whose principal it reads: a cached answer is served only to an
 * authenticated, rate-limited caller) and after every plugin that refuses operations.
 */
export function useReadResponseCache(
  cache: ResponseCache,
  schema: GraphQLSchema,
  principals: WeakMap<Request, Principal>,
  logger: Logger,
): Plugin[] {
  const served = Symbol.for('servedFromResponseCache');
  const paramsOf = new WeakMap<Request, GraphQLParams>();
  // Documents that can never be stored (a mutation, or a field with a time to live of 0), by text: their
  // requests skip the plugin altogether (no key hashed, no document rewritten, no result copied).
  const never = new Set<string>();
  const skipped = new WeakSet<Request>();
  // Results whose execution overlapped an invalidation: they may hold the state before the change.
  const overlapped = new WeakSet<object>();
  const neverStore = (request: Request) => {
    skipped.add(request);
    const query = paramsOf.get(request)?.query;
    if (!query) return;
    if (never.size >= NEVER_STORED_MAX) never.clear();
    never.add(query);
  };
  const enabled = (request: Request) => {
    if (!principals.has(request) || skipped.has(request)) return false;
    const query = paramsOf.get(request)?.query;
    return !query || !never.has(query);
  };
  return [
    {
      // Before the response cache's hooks: its checks read what these record.
      onParams({ request, params }) {
        paramsOf.set(request, params);
      },
      onExecute({ args }) {
        const { request } = args.contextValue;
        if (getOperationAST(args.document, args.operationName)?.operation !== OperationTypeNode.QUERY) {
          neverStore(request);
          return;
        }
        if (!enabled(request)) return;
        const generation = cache.generation;
        return {
          // Before the response cache's own onExecuteDone, which decides whether to store this result.
          onExecuteDone({ result }) {
            if (cache.generation !== generation && result && typeof result === 'object')
              overlapped.add(result);
          },
        };
      },
      // The operation log's line and the request's operation name, for answers that never executed.
      onExecutionResult({ request, result }) {
        if (!result || typeof result !== 'object' || !(served in result)) return;
        const params = paramsOf.get(request);
        const operationName = params?.operationName ?? NAMED_QUERY.exec(params?.query ?? '')?.[1] ?? null;
        const store = requestContext.getStore();
        if (store) store.operation = operationName;
        logger.info(
          {
            requestId: currentRequestId(),
            operationName,
            actor: principals.get(request)?.name,
            cached: true,
          },
          'graphql operation',
        );
      },
    },
    useResponseCache({
      cache: cache.store,
      ttl: cache.ttlMs,
      ttlPerSchemaCoordinate: uncacheableCoordinates(schema),
      // A principal is set once access control authenticated the request. Without one the plugin's
      // `If-None-Match` shortcut, which would answer 304 before authentication, stays off.
      enabled,
      session: (request) => {
        const principal = principals.get(request);
        return principal ? sessionOf(principal) : null;
      },
      shouldCacheResult: ({ result }) => !result.errors?.length && !overlapped.has(result),
      onTtl: ({ ttl, context }) => {
        if (ttl === 0) neverStore((context as { request: Request }).request);
        return ttl;
      },
    }),
  ];
}
