import path from 'node:path';
import { PROJECT_ROOT } from '../paths';
import type { DatabaseHandle } from './client';
import { applyRepeatableFiles, loadRepeatableFiles } from './repeatable';

/** The committed migrations folder (from source and from the dist/ bundle alike). */
export const MIGRATIONS_FOLDER = path.join(PROJECT_ROOT, 'drizzle');

/** Functions, triggers and views: one current definition each, applied after the journal (./repeatable). */
export const REPEATABLE_FOLDER = path.join(MIGRATIONS_FOLDER, 'repeatable');

// Any constant works; it only has to be the same in every process that migrates this database.
const MIGRATION_LOCK = 0x50a4_0001;

/**
 * Applies pending migrations, then the repeatable SQL files that changed; applying twice is a no-op.
 * Safe when several instances start at once.
 */
export async function migrateDatabase(handle: DatabaseHandle): Promise<void> {
  const repeatable = loadRepeatableFiles(REPEATABLE_FOLDER);
  if (handle.driver === 'pglite') {
    const { migrate } = await import('drizzle-orm/pglite/migrator');
    const { drizzle } = await import('drizzle-orm/pglite');
    const { PGlite } = await import('@electric-sql/pglite');
    if (!(handle.raw instanceof PGlite)) throw new Error('a PGlite handle without a PGlite client');
    await migrate(drizzle(handle.raw), { migrationsFolder: MIGRATIONS_FOLDER });
    await applyRepeatableFiles(handle.db, repeatable);
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
    await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
    await applyRepeatableFiles(db, repeatable);
  } finally {
    await client.end({ timeout: 5 });
  }
}
