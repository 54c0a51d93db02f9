import path from 'node:path';
import { PROJECT_ROOT } from '../paths';
import { ensurePartitionsAhead } from '../events/partitions';
import type { DatabaseHandle } from './client';
import { applyRepeatableFiles, loadRepeatableFiles } from './repeatable';

/** The committed migrations folder (from source and from the dist/ bundle alike). */
export const MIGRATIONS_FOLDER = path.join(PROJECT_ROOT, 'drizzle');

/** Functions, triggers and views: one current definition each, applied after the journal (./repeatable). */
export const REPEATABLE_FOLDER = path.join(MIGRATIONS_FOLDER, 'repeatable');

// Any constant works; it only has to be the same in every process that migrates this database.
const MIGRATION_LOCK = 0x50a4_0001;

export interface MigrateOptions {
  /** Another migrations folder: tests migrate a database to an earlier version of the schema. */
  migrationsFolder?: string;
  /** false: skip creating the raw event tables' partitions ahead (a schema from before they existed). */
  partitions?: boolean;
}

/**
 * Applies pending migrations, then the repeatable SQL files that changed, then creates the raw event
 * tables' monthly partitions ahead (src/events/partitions.ts); applying twice is a no-op. Safe when several
 * instances start at once.
 */
export async function migrateDatabase(handle: DatabaseHandle, options: MigrateOptions = {}): Promise<void> {
  const migrationsFolder = options.migrationsFolder ?? MIGRATIONS_FOLDER;
  const repeatable = loadRepeatableFiles(REPEATABLE_FOLDER);
  if (handle.driver === 'pglite') {
    const { migrate } = await import('drizzle-orm/pglite/migrator');
    const { drizzle } = await import('drizzle-orm/pglite');
    const { PGlite } = await import('@electric-sql/pglite');
    if (!(handle.raw instanceof PGlite)) throw new Error('a PGlite handle without a PGlite client');
    await migrate(drizzle(handle.raw), { migrationsFolder });
    await applyRepeatableFiles(handle.db, repeatable);
    if (options.partitions !== false) await ensurePartitionsAhead(handle.db, new Date());
    return;
  }
  const { migrate } = await import('drizzle-orm/postgres-js/migrator');
  const { drizzle } = await import('drizzle-orm/postgres-js');
  const { default: postgres } = await import('postgres');
  if (handle.config.driver !== 'postgres') throw new Error('unreachable');
  // The advisory lock must be held by one session for the whole run: a one-connection client.
  const client = postgres(handle.config.url, { max: 1, onnotice: () => {} });
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK})`;
    const db = drizzle(client);
    await migrate(db, { migrationsFolder });
    await applyRepeatableFiles(db, repeatable);
    if (options.partitions !== false) await ensurePartitionsAhead(db, new Date());
  } finally {
    await client.end({ timeout: 5 });
  }
}
