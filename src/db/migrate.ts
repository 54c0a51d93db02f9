import path from 'node:path';
import { PROJECT_ROOT } from '../paths';
import type { DatabaseHandle } from './client';

/** The committed migrations folder (from source and from the dist/ bundle alike). */
export const MIGRATIONS_FOLDER = path.join(PROJECT_ROOT, 'drizzle');

// Any constant works; it only has to be the same in every process that migrates this database.
const MIGRATION_LOCK = 0x50a4_0001;

/** Applies pending migrations; applying twice is a no-op. Safe when several instances start at once. */
export async function migrateDatabase(handle: DatabaseHandle): Promise<void> {
  if (handle.driver === 'pglite') {
    const { migrate } = await import('drizzle-orm/pglite/migrator');
    await migrate(handle.db as never, { migrationsFolder: MIGRATIONS_FOLDER });
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
    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await client.end({ timeout: 5 });
  }
}
