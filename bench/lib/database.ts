/** The bench database: created fresh on the given server, migrated with the project's migrator, dropped. */
import postgres from 'postgres';
import { databaseConfigFromEnv } from '../../src/config';
import { type DatabaseHandle, openDatabase } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';

export type Sql = postgres.Sql;

export function databaseUrl(serverUrl: string, name: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Where the server lives, without credentials, for the report. */
export function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

export function benchDatabaseName(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').replace(/\..*$/, '');
  return `sona_bench_${stamp}_${process.pid}`;
}

async function withAdmin<T>(serverUrl: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = postgres(serverUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function createDatabase(serverUrl: string, name: string): Promise<void> {
  await withAdmin(serverUrl, (sql) => sql.unsafe(`CREATE DATABASE ${quoteIdent(name)}`));
}

export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await withAdmin(serverUrl, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));
}

function quoteIdent(name: string): string {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`refusing odd database name ${name}`);
  return `"${name}"`;
}

/** Opens the project's own DatabaseHandle on the bench database and migrates it. */
export async function openAndMigrate(url: string): Promise<DatabaseHandle> {
  const handle = await openDatabase(databaseConfigFromEnv({ DATABASE_URL: url, DB_POOL_SIZE: '4' }));
  await migrateDatabase(handle);
  return handle;
}

/** The harness's own client, for setup, COPY and the raw-view queries (no statement timeout). */
export function harnessClient(url: string): Sql {
  return postgres(url, {
    max: 6,
    onnotice: () => {},
    connect_timeout: 10,
    idle_timeout: 30,
    connection: { application_name: 'sona-bench' },
  });
}
