import { sql } from 'drizzle-orm';
import type { DatabaseHandle } from './client';

/** Drops everything this service owns (public schema and the migrations journal). Development only. */
export async function resetDatabase(handle: DatabaseHandle): Promise<void> {
  await handle.db.execute(sql`DROP SCHEMA IF EXISTS public CASCADE`);
  await handle.db.execute(sql`DROP SCHEMA IF EXISTS drizzle CASCADE`);
  await handle.db.execute(sql`CREATE SCHEMA public`);
}
