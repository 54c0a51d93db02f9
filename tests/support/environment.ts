/**
 * Which database the test run uses, decided once in global setup: TEST_DB=pglite forces the embedded
 * database; otherwise TEST_DATABASE_URL (or DATABASE_URL) → a PostgreSQL 16 container when a container
 * runtime answers → embedded PGlite.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const RUN_URL_VAR = 'SONA_TEST_RUN_DATABASE_URL';
export const RUN_DRIVER_VAR = 'SONA_TEST_RUN_DRIVER';
/** On PGlite: a file holding the migrated, seeded database (PGlite's dumpDataDir), made once per run. */
export const RUN_SNAPSHOT_VAR = 'SONA_TEST_RUN_PGLITE_SNAPSHOT';
/** On PGlite: the same instance dumped before migrating (what initdb made), for scratch databases. */
export const RUN_EMPTY_SNAPSHOT_VAR = 'SONA_TEST_RUN_PGLITE_EMPTY_SNAPSHOT';
/**
 * On PostgreSQL: a migrated, seeded database nobody connects to, made once per run; the run's database and
 * every isolated one are `CREATE DATABASE … TEMPLATE` copies of it (a file copy, not the migrations again).
 */
export const RUN_TEMPLATE_VAR = 'SONA_TEST_RUN_TEMPLATE_DATABASE';

/** Cheap checks before asking testcontainers, which otherwise spends seconds failing. */
export function containerRuntimeLikely(): boolean {
  if (process.env.DOCKER_HOST || process.env.TESTCONTAINERS_HOST_OVERRIDE) return true;
  const props = path.join(os.homedir(), '.testcontainers.properties');
  if (existsSync(props) && /docker\.host|tc\.host/.test(readFileSync(props, 'utf8'))) return true;
  return ['/var/run/docker.sock', path.join(os.homedir(), '.docker/run/docker.sock')].some((p) =>
    existsSync(p),
  );
}

export function testDriver(): 'postgres' | 'pglite' {
  return process.env[RUN_DRIVER_VAR] === 'postgres' ? 'postgres' : 'pglite';
}

export function runDatabaseUrl(): string {
  const url = process.env[RUN_URL_VAR];
  if (!url) throw new Error(`${RUN_URL_VAR} is not set: tests must run through jest's global setup`);
  return url;
}

/** The same server URL with another database name. */
export function withDatabaseName(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}
