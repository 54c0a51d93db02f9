/**
 * Starts the service: opens the configured database (PostgreSQL when DATABASE_URL is set, otherwise the
 * embedded PGlite under .data/), migrates it, seeds a brand-new embedded one, and serves GraphQL.
 */
import { seedDatabase } from '../seed/seed';
import { ExperimentConfigCache } from './assignments/config-cache';
import { loadConfig } from './config';
import { openDatabase } from './db/client';
import { migrateDatabase } from './db/migrate';
import { createApp } from './http/app';
import { createHttpServer } from './http/server';
import { createLogger } from './logger';

const config = loadConfig();
const logger = createLogger(config.logLevel);
const startedAt = Date.now();

const handle = await openDatabase(config.database);
await migrateDatabase(handle);
if (handle.created && handle.driver === 'pglite' && config.seedOnFirstStart) {
  const report = await seedDatabase(handle.db);
  logger.info({ seed: report }, 'new embedded database seeded');
}

const configCache = new ExperimentConfigCache();
await configCache.start(handle);
const app = createApp({ db: handle.db, logger, configCache });
const server = createHttpServer(app, handle);
server.listen(config.port, config.host, () => {
  const where = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${config.port}/graphql`;
  logger.info(
    { url: where, database: handle.driver, location: handle.location, startupMs: Date.now() - startedAt },
    `sona-experiments listening on ${where} (database: ${handle.driver} at ${handle.location})`,
  );
});

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: finishing in-flight requests');
  const force = setTimeout(() => {
    logger.error('shutdown timed out; exiting');
    process.exit(1);
  }, 10_000);
  force.unref();
  server.close();
  server.closeIdleConnections();
  await new Promise<void>((resolve) => server.on('close', () => resolve()));
  await configCache.stop();
  await handle.close();
  logger.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
