/**
 * The composition root: builds every process-wide part once (authenticator, assignment batcher,
 * assignment dependencies) and wires GraphQL (src/http/yoga.ts) and the SDK endpoint
 * (src/assignments/http.ts) with the same ones. Nothing here reads the environment: src/main.ts loads
 * the configuration and hands it in.
 */
import type { Logger } from 'pino';
import { AssignmentBatcher } from '../assignments/batcher';
import type { ExperimentConfigCache } from '../assignments/config-cache';
import { ASSIGNMENTS_PATH, createAssignmentEndpoint } from '../assignments/http';
import { SDK_PAYLOAD_PATH, createSdkPayloadEndpoint } from '../assignments/sdk-payload';
import { EVENTS_PATH, createEventsEndpoint } from '../events/http';
import type { AssignmentDeps } from '../assignments/service';
import { Authenticator } from '../auth/authenticator';
import type { SecurityConfig } from '../config';
import type { Database } from '../db/client';
import type { ReplicaSet } from '../db/replicas';
import { createMetricsEndpoint, METRICS_PATH } from '../observability/http';
import type { LiveUpdates } from '../live/updates';
import type { Metrics } from '../observability/metrics';
import type { RateLimiter } from './rate-limit';
import type { ResponseCache } from './plugins/response-cache';
import type { Route } from './server';
import { type App, createGraphQLApp } from './yoga';

export type { App, ServerContext } from './yoga';

export interface AppOptions {
  db: Database;
  logger: Logger;
  security: SecurityConfig;
  /**
   * Verifies API keys; one per process (it caches verified keys, and main.ts starts it listening for
   * revocations). Made from `security` when absent.
   */
  authenticator?: Authenticator;
  rateLimiter?: RateLimiter | null;
  /** Assignment's configuration cache; without one every assignment reads the configuration. */
  configCache?: ExperimentConfigCache;
  /** Groups concurrent assignments' SQL; one per process (made from `db` when absent). */
  assignmentBatcher?: AssignmentBatcher;
  /** The instance's metrics, served at GET /metrics; none are kept when absent. */
  metrics?: Metrics;
  /** Read replicas for read-only GraphQL operations (DATABASE_REPLICA_URLS). */
  replicas?: ReplicaSet | null;
  /** Stored answers of read queries; one per process, listening for changes. None: every query executes. */
  responseCache?: ResponseCache | null;
  /** EVENT_RETENTION_DAYS: events older than the retention are refused. */
  eventRetentionDays?: number | null;
  /** Change notifications for GraphQL subscriptions; one per process, listening. None: subscriptions are refused. */
  live?: LiveUpdates | null;
}

export interface Service {
  /** GraphQL at /graphql (yoga). */
  app: App;
  /** The routes outside GraphQL, for createHttpServer. */
  routes: Record<string, Route>;
}

/**
 * The whole HTTP surface: GraphQL, the SDK assignment endpoint and (with metrics) GET /metrics, sharing
 * one authenticator, rate limiter, configuration cache, assignment batcher and metrics registry.
 */
export function createService(options: AppOptions): Service {
  const { db, logger, security } = options;
  const rateLimiter = options.rateLimiter ?? null;
  const authenticator =
    options.authenticator ??
    new Authenticator(db, security.authRequired, {
      cacheTtlMs: security.cacheTtlMs,
      failures: rateLimiter?.authFailures,
    });
  const assignment: AssignmentDeps = {
    config: options.configCache?.source,
    memory: options.configCache,
    batcher: options.assignmentBatcher ?? new AssignmentBatcher(db),
    observer: options.metrics,
    eventRetentionDays: options.eventRetentionDays ?? null,
    // With Redis, live updates of ingestion go out after commit instead of by NOTIFY.
    resultsChanged: options.live?.publisher ?? undefined,
  };
  const app = createGraphQLApp({
    db,
    logger,
    security,
    authenticator,
    rateLimiter,
    assignment,
    configCache: options.configCache ?? null,
    metrics: options.metrics ?? null,
    replicas: options.replicas ?? null,
    responseCache: options.responseCache ?? null,
    live: options.live ?? null,
  });
  // Every JSON route shares these: the same keys, rate limit, limits, deadline and error counting.
  const endpoint = {
    logger,
    authenticator,
    rateLimiter,
    maxBodyBytes: security.maxBodyBytes,
    requestTimeoutMs: security.requestTimeoutMs,
    metrics: options.metrics,
  };
  const assignments = createAssignmentEndpoint({ ...endpoint, db, deps: assignment });
  const sdkPayload = createSdkPayloadEndpoint({ ...endpoint, db, configCache: options.configCache ?? null });
  const events = createEventsEndpoint({ ...endpoint, db, deps: assignment });
  const routes: Record<string, Route> = {
    [ASSIGNMENTS_PATH]: assignments,
    [SDK_PAYLOAD_PATH]: sdkPayload,
    [EVENTS_PATH]: events,
  };
  if (options.metrics)
    routes[METRICS_PATH] = createMetricsEndpoint({ ...endpoint, metrics: options.metrics });
  return { app, routes };
}

/** GraphQL alone, wired like the full service (tests and benchmarks that need no other route). */
export function createApp(options: AppOptions): App {
  return createService(options).app;
}
