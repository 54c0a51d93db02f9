/**
 * Starts the service: opens the configured database (PostgreSQL when DATABASE_URL is set, otherwise the
 * embedded PGlite under .data/), migrates it, seeds a brand-new embedded one, and serves GraphQL.
 */
import { ExperimentConfigCache } from './assignments/config-cache';
import { loadConfigFromDb } from './assignments/service';
import { Authenticator } from './auth/authenticator';
import { loadConfig, WEBHOOKS_DISABLED } from './config';
import { openDatabase } from './db/client';
import { migrateDatabase } from './db/migrate';
import { ReplicaSet } from './db/replicas';
import { seedDatabase } from './db/seed';
import { createService } from './http/app';
import { createDashboard, ensureDashboardBuilt } from './http/dashboard';
import { ResponseCache } from './http/plugins/response-cache';
import { createRateLimiter } from './http/rate-limit';
import { createHttpServer } from './http/server';
import { partitionJob } from './events/partitions';
import { JobRunner } from './jobs/runner';
import { createLogger } from './logger';
import { Metrics } from './observability/metrics';
import { startTracing, tracingObserver } from './observability/tracing';
import { monitorJob } from './monitoring/service';
import { scheduleJob } from './scheduling/service';
import { banditJob } from './bandits/service';
import { deliveryJob } from './webhooks/service';
import { notifyExperimentChanged } from './assignments/config-cache';
import { LiveUpdates } from './live/updates';

const config = loadConfig();
const { security } = config;
const logger = createLogger(config.logLevel);
const startedAt = Date.now();

// Before the database opens: its statements become spans of the requests that send them.
const tracing = await startTracing();
const handle = await openDatabase(config.database, {
  observer: tracing ? tracingObserver(tracing) : undefined,
});
await migrateDatabase(handle);
if (handle.created && handle.driver === 'pglite' && config.seedOnFirstStart) {
  const report = await seedDatabase(handle.db);
  logger.info({ seed: report }, 'new embedded database seeded');
}

if (config.replicas.urls.length && config.database.driver !== 'postgres') {
  throw new Error('DATABASE_REPLICA_URLS needs DATABASE_URL (the embedded database has no replicas)');
}
const replicas =
  config.replicas.urls.length && config.database.driver === 'postgres'
    ? await ReplicaSet.open(config.database, config.replicas, {
        observer: tracing ? tracingObserver(tracing) : undefined,
        logger,
      })
    : null;

const configCache = new ExperimentConfigCache(loadConfigFromDb, security.cacheTtlMs);
await configCache.start(handle);
const responseCache = config.responseCacheTtlMs > 0 ? new ResponseCache(config.responseCacheTtlMs) : null;
await responseCache?.start(handle);
// GraphQL subscriptions: one LISTEN per channel for the process, whatever the number of subscribers.
const live = new LiveUpdates();
await live.start(handle, security.redisUrl);
const metrics = new Metrics({
  pool: () => handle.pool(),
  configCache,
  replicaLags: replicas ? () => replicas.lags() : undefined,
});
const rateLimiter = await createRateLimiter(security, (limit) => metrics.rateLimit(limit));
const authenticator = new Authenticator(handle.db, security.authRequired, {
  cacheTtlMs: security.cacheTtlMs,
  failures: rateLimiter?.authFailures,
});
await authenticator.start(handle);
const { app, routes } = createService({
  db: handle.db,
  logger,
  security,
  authenticator,
  rateLimiter,
  configCache,
  metrics,
  replicas,
  responseCache,
  eventRetentionDays: config.eventRetentionDays,
  live,
});
// Periodic work (README, Automation): every instance runs a runner; each job runs on one instance at a time.
const experimentChanges = {
  onChange: (experimentId: string, tx: Parameters<typeof notifyExperimentChanged>[0]) =>
    notifyExperimentChanged(tx, experimentId),
  afterCommit: () => configCache.invalidate(),
};
const jobs = new JobRunner({
  db: handle.db,
  intervalMs: config.jobsIntervalMs,
  // JOBS_CLOCK_OFFSET_MS (README, Configuration): 0 in production.
  now: () => new Date(Date.now() + config.jobsClockOffsetMs),
  logger,
  jobs: [
    scheduleJob(experimentChanges),
    // After the schedules, before the deliveries: a breach found this round is sent this round.
    monitorJob(experimentChanges),
    banditJob(experimentChanges),
    deliveryJob(security.webhooks ?? WEBHOOKS_DISABLED),
    partitionJob({
      retentionDays: config.eventRetentionDays,
      onChange: (change) => logger.info(change, 'event partitions changed'),
    }),
  ],
});
jobs.start();
// The dashboard at `/`: built on first start when missing (a fresh clone), served from memory.
const dashboard = ensureDashboardBuilt(logger) ? createDashboard() : null;
const server = createHttpServer(app, handle, { ...security, logger, metrics, tracing, dashboard }, routes);

if (!security.authRequired) {
  logger.warn(
    'AUTHENTICATION IS OFF: every request acts as "anonymous" with all scopes. This is only allowed on the embedded database; set DATABASE_URL or NODE_ENV=production to require API keys.',
  );
}

server.listen(config.port, config.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const where = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}/graphql`;
  logger.info(
    {
      url: where,
      database: handle.driver,
      location: handle.location,
      auth: security.authRequired ? 'api-keys' : 'off',
      graphiql: security.graphiql,
      dashboard: dashboard ? where.replace(/\/graphql$/, '/') : null,
      tracing: tracing !== null,
      replicas: config.replicas.urls.length,
      startupMs: Date.now() - startedAt,
    },
    `sona-experiments listening on ${where} (database: ${handle.driver} at ${handle.location})`,
  );
});

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
  const force = setTimeout(() => {
    logger.error({ timeoutMs: security.shutdownTimeoutMs }, 'shutdown timed out; exiting');
    process.exit(1);
  }, security.shutdownTimeoutMs);
  force.unref();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  // Subscriptions' streams end, so their connections close and the server can.
  await live.stop();
  await closed;
  // A job run in progress commits or rolls back before the database closes.
  await jobs.stop();
  await Promise.allSettled([
    configCache.stop(),
    responseCache?.stop(),
    authenticator.stop(),
    rateLimiter?.close(),
    tracing?.shutdown(),
    replicas?.close(),
  ]);
  await handle.close();
  logger.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
