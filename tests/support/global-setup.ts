import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';
import { openDatabase } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { seedDatabase } from '../../src/db/seed';
import { PGLITE_TEST_SETTINGS } from './db';
import {
  RUN_DRIVER_VAR,
  RUN_EMPTY_SNAPSHOT_VAR,
  RUN_SNAPSHOT_VAR,
  RUN_TEMPLATE_VAR,
  RUN_URL_VAR,
  containerRuntimeLikely,
  withDatabaseName,
} from './environment';

interface RunState {
  adminUrl?: string;
  database?: string;
  template?: string;
  container?: { stop(): Promise<unknown> };
  snapshotFiles?: string[];
}

/** Writes the instance's data directory to a new file, for test files to start instances from. */
async function dumpPglite(pg: PGlite, name: string): Promise<string> {
  // The dump is taken from a running instance, so each instance started from it runs crash recovery,
  // replaying the WAL written since the last checkpoint (for the migrated one, the migrations and the
  // seed: ~0.13 CPU-s per open here). A checkpoint first leaves nothing to replay. It shrinks nothing:
  // the WAL segment is a 16 MB file however little of it is used.
  await pg.exec('CHECKPOINT');
  const dump = await pg.dumpDataDir('none');
  const file = path.join(
    os.tmpdir(),
    `sona-test-pglite-${process.pid}-${Date.now().toString(36)}-${name}.tar`,
  );
  writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
  return file;
}

/**
 * Runs initdb, the migrations and the seed once, in one in-memory PGlite, and dumps it twice: before
 * migrating (what initdb made, for scratch databases that test the migrations themselves) and after
 * seeding (the run's database). Every test file then starts its own instances from these copies instead
 * of running initdb, the migrations and the seed again (tests/support/db.ts).
 */
async function writePgliteSnapshots(): Promise<{ empty: string; migrated: string }> {
  // The same settings as the instances started from the dumps: they are not part of the dump (they are
  // start parameters), and the small pool saves the setup the same start-up cost.
  const handle = await openDatabase(
    { driver: 'pglite', dataDir: 'memory://' },
    { pgliteSettings: PGLITE_TEST_SETTINGS },
  );
  try {
    const pg = handle.raw as PGlite;
    const empty = await dumpPglite(pg, 'empty');
    await migrateDatabase(handle);
    await seedDatabase(handle.db);
    return { empty, migrated: await dumpPglite(pg, 'migrated') };
  } finally {
    await handle.close();
  }
}

declare global {
  var __sonaTestRun: RunState | undefined;
}

async function startContainer(): Promise<{ url: string; stop(): Promise<unknown> } | null> {
  if (!containerRuntimeLikely()) return null;
  try {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await Promise.race([
      new PostgreSqlContainer('postgres:16-alpine').start(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('container start timed out')), 60_000),
      ),
    ]);
    return { url: container.getConnectionUri(), stop: () => container.stop() };
  } catch (err) {
    console.warn(`[tests] no usable container runtime (${(err as Error).message}); using PGlite`);
    return null;
  }
}

export default async function globalSetup(): Promise<void> {
  const state: RunState = {};
  globalThis.__sonaTestRun = state;
  let serverUrl =
    process.env.TEST_DB === 'pglite' ? undefined : process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  if (!serverUrl && process.env.TEST_DB !== 'pglite') {
    const container = await startContainer();
    if (container) {
      state.container = container;
      serverUrl = container.url;
    }
  }
  if (!serverUrl) {
    process.env[RUN_DRIVER_VAR] = 'pglite';
    const snapshots = await writePgliteSnapshots();
    state.snapshotFiles = [snapshots.empty, snapshots.migrated];
    process.env[RUN_EMPTY_SNAPSHOT_VAR] = snapshots.empty;
    process.env[RUN_SNAPSHOT_VAR] = snapshots.migrated;
    console.log('\n[tests] database: embedded PGlite (one in-memory instance per test file)');
    return;
  }
  // Every run gets its own database, so parallel runs on one server never collide. It is a copy of a
  // template migrated and seeded here once: files that need a database of their own
  // (openIsolatedDatabase) copy the same template instead of running the migrations again.
  const database = `sona_test_${Date.now().toString(36)}_${process.pid}`;
  const template = `${database}_template`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${template}`);
    state.adminUrl = serverUrl;
    state.template = template;
    const handle = await openDatabase({
      driver: 'postgres',
      url: withDatabaseName(serverUrl, template),
      poolSize: 2,
      statementTimeoutMs: 30_000,
      connectTimeoutSeconds: 10,
    });
    try {
      await migrateDatabase(handle);
      await seedDatabase(handle.db);
    } finally {
      await handle.close();
    }
    await admin.unsafe(`CREATE DATABASE ${database} TEMPLATE ${template}`);
    state.database = database;
  } finally {
    await admin.end();
  }
  const url = withDatabaseName(serverUrl, database);
  process.env[RUN_DRIVER_VAR] = 'postgres';
  process.env[RUN_URL_VAR] = url;
  process.env[RUN_TEMPLATE_VAR] = template;
  console.log(`\n[tests] database: PostgreSQL, fresh database ${database}`);
}
