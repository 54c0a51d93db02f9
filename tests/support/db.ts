/**
 * Databases for tests. On PostgreSQL every file shares the run's fresh database (tests make their own
 * data with unique keys, so files run concurrently); on PGlite every file gets an in-memory instance.
 */
import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import { openDatabase, type DatabaseHandle, type StatementObserver } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { seedDatabase } from '../../src/db/seed';
import {
  RUN_SNAPSHOT_VAR,
  RUN_TEMPLATE_VAR,
  runDatabaseUrl,
  testDriver,
  withDatabaseName,
} from './environment';

export { testDriver };

/** The run's migrated and seeded database. */
export async function openTestDatabase(
  options: { poolSize?: number; observer?: StatementObserver } = {},
): Promise<DatabaseHandle> {
  const open = { observer: options.observer };
  if (testDriver() === 'postgres') {
    return openDatabase(
      {
        driver: 'postgres',
        url: runDatabaseUrl(),
        poolSize: options.poolSize ?? 5,
        statementTimeoutMs: 30_000,
        connectTimeoutSeconds: 10,
      },
      open,
    );
  }
  // A copy of the run's migrated and seeded database (see global-setup.ts); without one (a file run
  // outside Jest's global setup), migrate and seed a new instance.
  const snapshotFile = process.env[RUN_SNAPSHOT_VAR];
  if (snapshotFile) {
    const snapshot = new Blob([readFileSync(snapshotFile)]);
    return openDatabase({ driver: 'pglite', dataDir: 'memory://', snapshot }, open);
  }
  const handle = await openDatabase({ driver: 'pglite', dataDir: 'memory://' }, open);
  await migrateDatabase(handle);
  await seedDatabase(handle.db);
  return handle;
}

export interface ScratchDatabase {
  handle: DatabaseHandle;
  /** postgres:// URL on PostgreSQL; null on PGlite. */
  url: string | null;
  drop(): Promise<void>;
}

/**
 * A database of its own: empty (not migrated) by default, for tests of migrations themselves; with
 * `migrated`, migrated and seeded like the run's database (on PostgreSQL a copy of the run's template, see
 * global-setup.ts; on PGlite an instance from the run's snapshot).
 */
export async function createScratchDatabase(options: { migrated?: boolean } = {}): Promise<ScratchDatabase> {
  if (testDriver() === 'pglite') {
    const handle = options.migrated
      ? await openTestDatabase()
      : await openDatabase({ driver: 'pglite', dataDir: 'memory://' });
    return { handle, url: null, drop: () => handle.close() };
  }
  const runUrl = runDatabaseUrl();
  const template = process.env[RUN_TEMPLATE_VAR];
  const name = `${new URL(runUrl).pathname.slice(1)}_s${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(runUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(
      `CREATE DATABASE ${name}${options.migrated && template ? ` TEMPLATE ${template}` : ''}`,
    );
  } finally {
    await admin.end();
  }
  const url = withDatabaseName(runUrl, name);
  const handle = await openDatabase({
    driver: 'postgres',
    url,
    poolSize: 3,
    statementTimeoutMs: 30_000,
    connectTimeoutSeconds: 10,
  });
  if (options.migrated && !template) {
    await migrateDatabase(handle);
    await seedDatabase(handle.db);
  }
  return {
    handle,
    url,
    async drop() {
      await handle.close();
      const a = postgres(runUrl, { max: 1, onnotice: () => {} });
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}
