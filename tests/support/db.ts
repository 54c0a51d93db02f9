/**
 * Databases for tests. On PostgreSQL every file shares the run's fresh database (tests make their own
 * data with unique keys, so files run concurrently); on PGlite every file gets an in-memory instance.
 */
import postgres from 'postgres';
import {
  openDatabase,
  type DatabaseHandle,
  type OpenOptions,
  type StatementObserver,
} from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { seedDatabase } from '../../src/db/seed';
import {
  RUN_EMPTY_SNAPSHOT_VAR,
  RUN_SNAPSHOT_VAR,
  RUN_TEMPLATE_VAR,
  runDatabaseUrl,
  testDriver,
  withDatabaseName,
} from './environment';

export { testDriver };

declare global {
  /** Set by tests/support/test-environment.js: what this Jest worker's test files share. */
  var sonaPgliteAssets: { snapshot(file: string): Promise<Blob> } | undefined;
}

/**
 * Settings for every test file's PGlite. shared_buffers: PostgreSQL zeroes its whole buffer pool at
 * start-up (PGlite's memset, on fresh WebAssembly memory), which with the default 128MB was the largest
 * single cost of an open: one took ~1.1 CPU-s in plain Node on this machine, ~0.55 with 16MB. A test
 * file's database starts at ~12 MB; a smaller pool only means pages go back to PGlite's in-memory files
 * more often, nothing a statement returns changes (the PostgreSQL tier runs the same tests with its own).
 */
export const PGLITE_TEST_SETTINGS = { shared_buffers: '16MB' };

/**
 * A new in-memory PGlite started from one of the run's snapshots (global-setup.ts): the migrated and
 * seeded database, or the empty one initdb made (no initdb per scratch database). The snapshot comes from
 * the worker (test-environment.js): read once, and handed to PGlite without a copy per open.
 */
async function openPgliteSnapshot(variable: string, options: OpenOptions = {}): Promise<DatabaseHandle> {
  const file = process.env[variable];
  const assets = globalThis.sonaPgliteAssets;
  if (!file || !assets) {
    throw new Error(
      `${file ? 'tests/support/test-environment.js is not the test environment' : `${variable} is not set`}: ` +
        "tests must run through the repository's jest config (its global setup and test environment)",
    );
  }
  const snapshot = await assets.snapshot(file);
  return openDatabase(
    { driver: 'pglite', dataDir: 'memory://', snapshot },
    { ...options, pgliteSettings: PGLITE_TEST_SETTINGS },
  );
}

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
  return openPgliteSnapshot(RUN_SNAPSHOT_VAR, open);
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
    const handle = await openPgliteSnapshot(options.migrated ? RUN_SNAPSHOT_VAR : RUN_EMPTY_SNAPSHOT_VAR);
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
