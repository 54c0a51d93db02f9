/**
 * The real HTTP server for security and fault tests, in-process on an ephemeral port (createService +
 * createHttpServer, as src/main.ts wires them). The service as a child process is in ./processes.ts.
 * Traffic goes to 127.0.0.1 only.
 */
import type { Metrics } from '../../src/observability/metrics';
import { LiveUpdates } from '../../src/live/updates';
import type { Tracing } from '../../src/observability/tracing';
import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { ExperimentConfigCache } from '../../src/assignments/config-cache';
import { Authenticator } from '../../src/auth/authenticator';
import { createApiKey } from '../../src/auth/service';
import type { Scope } from '../../src/auth/scopes';
import type { SecurityConfig } from '../../src/config';
import {
  type Database,
  type DatabaseHandle,
  openDatabase,
  type StatementObserver,
} from '../../src/db/client';
import { type App, createService } from '../../src/http/app';
import type { RateLimiter } from '../../src/http/rate-limit';
import { createHttpServer } from '../../src/http/server';
import { createLogger } from '../../src/logger';
import { createScratchDatabase, openTestDatabase, testDriver } from './db';
import { uniqueKey } from './factories';

/** Production settings, spelled out so no test depends on the environment it runs in. */
export function productionSecurity(overrides: Partial<SecurityConfig> = {}): SecurityConfig {
  return {
    authRequired: true,
    graphiql: false,
    introspection: false,
    fieldSuggestions: false,
    maxBodyBytes: 1024 * 1024,
    requestTimeoutMs: 15_000,
    rateLimitPerSecond: 0,
    rateLimitBurst: 0,
    authFailuresPerMinute: 0,
    redisUrl: null,
    cacheTtlMs: 5000,
    shutdownTimeoutMs: 10_000,
    ...overrides,
  };
}

export interface IsolatedDatabase {
  handle: DatabaseHandle;
  /** postgres:// URL on PostgreSQL (its own database), null on PGlite. */
  url: string | null;
  close(): Promise<void>;
}

/**
 * A migrated and seeded database no other test file writes to: whole-table row counts stay exact, and
 * terminating "the server's backends" (datname = this database) touches no other file's connections.
 * On PGlite that is the file's usual in-memory database; on PostgreSQL a scratch database of its own.
 */
export async function openIsolatedDatabase(
  options: { observer?: StatementObserver } = {},
): Promise<IsolatedDatabase> {
  if (testDriver() === 'pglite') {
    const handle = await openTestDatabase(options);
    return { handle, url: null, close: () => handle.close() };
  }
  const scratch = await createScratchDatabase({ migrated: true });
  await scratch.handle.close();
  // The test's own connections go by another name than the service's ("sona-experiments"), so fault
  // tests can terminate the service's backends without touching the test's (a URL parameter wins).
  const handle = await openDatabase(
    {
      driver: 'postgres',
      url: `${scratch.url}?application_name=sona-tests`,
      poolSize: 5,
      statementTimeoutMs: 30_000,
      connectTimeoutSeconds: 10,
    },
    { observer: options.observer },
  );
  return {
    handle,
    url: scratch.url,
    async close() {
      await handle.close();
      await scratch.drop();
    },
  };
}

/** The service's logger (src/logger.ts), writing JSON lines the test can read. */
export interface LogCapture {
  logger: Logger;
  lines(): Record<string, any>[];
  text(): string;
}

export function captureLogs(level = 'info'): LogCapture {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const logger = createLogger(level, stream);
  return {
    logger,
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
  };
}

export interface TestServer {
  base: string;
  url: string;
  app: App;
  server: Server;
  authenticator: Authenticator;
  logs: LogCapture;
  close(): Promise<void>;
}

export interface TestServerOptions {
  security?: SecurityConfig;
  authenticator?: Authenticator;
  rateLimiter?: RateLimiter | null;
  logs?: LogCapture;
  configCache?: ExperimentConfigCache;
  metrics?: Metrics;
  tracing?: Tracing | null;
  /**
   * Subscriptions' change notifications; one listening on `handle` is made when absent. null: none
   * (subscriptions refused), for a server whose database cannot be reached.
   */
  live?: LiveUpdates | null;
}

/** The real server on 127.0.0.1:0 over a test database, with an authenticator listening for revocations. */
export async function startTestServer(
  handle: DatabaseHandle,
  options: TestServerOptions = {},
): Promise<TestServer> {
  const security = options.security ?? productionSecurity();
  const logs = options.logs ?? captureLogs();
  const authenticator =
    options.authenticator ??
    new Authenticator(handle.db, security.authRequired, {
      cacheTtlMs: security.cacheTtlMs,
      failures: options.rateLimiter?.authFailures,
    });
  const ownAuthenticator = !options.authenticator;
  if (ownAuthenticator) await authenticator.start(handle);
  const ownLive = options.live === undefined;
  const live = ownLive ? new LiveUpdates() : options.live;
  if (ownLive) await live?.start(handle);
  const { app, routes } = createService({
    db: handle.db,
    logger: logs.logger,
    security,
    authenticator,
    rateLimiter: options.rateLimiter ?? null,
    configCache: options.configCache,
    metrics: options.metrics,
    live,
  });
  const server = createHttpServer(
    app,
    handle,
    { ...security, logger: logs.logger, metrics: options.metrics, tracing: options.tracing },
    routes,
  );
  // fetch keeps idle connections 4 s and the server 5 s: on a busy machine a late client timer reused a
  // connection the server had just closed (ECONNRESET). The test's server keeps them longer than any client.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    url: `${base}/graphql`,
    app,
    server,
    authenticator,
    logs,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (ownAuthenticator) await authenticator.stop();
      if (ownLive) await live?.stop();
    },
  };
}

/** A new API key with a unique name; returns the secret and the stored metadata. */
/** SHA-256 hex of a text, computed independently of the code under test (keys are stored as this). */
export const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** A configuration cache whose every read runs `source`: a fault injected where assignment reads config. */
export function failingConfigCache(source: () => Promise<unknown>): ExperimentConfigCache {
  return { source, invalidate() {} } as unknown as ExperimentConfigCache;
}

export async function makeKey(db: Database, scopes: Scope[], name = uniqueKey(`key-${scopes.join('-')}`)) {
  const { key, apiKey } = await createApiKey(db, 'test', { name, scopes });
  return { key, name: apiKey.name, id: apiKey.id };
}

export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

async function toResult(response: Response): Promise<HttpResult> {
  const text = await response.text();
  let body: any = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: response.status, headers: response.headers, text, body };
}

export interface PostOptions {
  key?: string;
  headers?: Record<string, string>;
  operationName?: string;
}

/** POSTs one GraphQL operation as JSON. */
export async function postGraphQL(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  options: PostOptions = {},
): Promise<HttpResult> {
  return rawPost(url, JSON.stringify({ query, variables, operationName: options.operationName }), options);
}

/** POSTs any body (JSON by default) with an optional API key. */
export async function rawPost(
  url: string,
  body: string,
  options: PostOptions & { contentType?: string } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = {
    'content-type': options.contentType ?? 'application/json',
    accept: 'application/graphql-response+json, application/json',
    ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
    ...options.headers,
  };
  return toResult(await fetch(url, { method: 'POST', headers, body }));
}

export async function getUrl(url: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  return toResult(await fetch(url, { headers }));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until the check passes or the deadline passes; returns whether it passed. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 5000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}
