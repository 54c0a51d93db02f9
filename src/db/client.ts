/**
 * Builds the Drizzle database from configuration. `DATABASE_URL` set → PostgreSQL through postgres.js;
 * unset → embedded PGlite. Nothing outside this folder knows which driver it runs on.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { getTableName, is, sql, type SQL } from 'drizzle-orm';
import {
  type AnyPgColumn,
  type PgDatabase,
  PgDialect,
  type PgQueryResultHKT,
  type PgTable,
  type PgTransaction,
} from 'drizzle-orm/pg-core';
import { PostgresJsSession } from 'drizzle-orm/postgres-js/session';
import type { DatabaseConfig } from '../config';
import * as schema from './schema';

export type Schema = typeof schema;
/** A database or a transaction: repositories accept either, so callers (and tests) choose the scope. */
export type Database = PgDatabase<PgQueryResultHKT, Schema>;
export type Transaction = PgTransaction<PgQueryResultHKT, Schema>;
export type Db = Database | Transaction;

export interface StatementCounter {
  count: number;
}

/**
 * Sees every statement the application sends through Drizzle (tracing spans, timeout counts): `start` is
 * called as it is sent and returns what to call once it settled, with the error if it failed.
 */
export interface StatementObserver {
  start(text: string): (error?: unknown) => void;
}

/** The pool's connections by state and the statements waiting for one (PostgreSQL only). */
export interface PoolStats {
  max: number;
  idle: number;
  busy: number;
  /** Held by a transaction. */
  reserved: number;
  connecting: number;
  waiting: number;
}

export interface OpenOptions {
  observer?: StatementObserver;
  /**
   * In-memory PGlite only: server settings (`-c name=value`) on top of PGlite's own start parameters.
   * Tests open one instance per file and set what makes an open cheaper (tests/support/db.ts).
   */
  pgliteSettings?: Record<string, string>;
}

export interface DatabaseHandle {
  db: Database;
  driver: 'postgres' | 'pglite';
  /** Where the data lives, for the start-up banner (no credentials). */
  location: string;
  /** True when an embedded database was created by this open (the caller seeds it). */
  created: boolean;
  /** Counts every statement Drizzle sends; tests use it to prove the absence of N+1 queries. */
  statements: StatementCounter;
  /** The connection pool's state now; null on the embedded database (one in-process connection). */
  pool(): PoolStats | null;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The raw driver client (postgres.js Sql or PGlite), for bulk paths. */
  raw: unknown;
  /**
   * LISTEN on a channel; resolves once listening, returns the unsubscribe. postgres.js keeps a dedicated
   * connection and re-listens after reconnecting; PGlite delivers its own NOTIFYs in-process.
   * `onListen` runs each time the LISTEN takes effect: at first, and after every reconnection, when
   * whatever was notified while the connection was down has been missed.
   */
  listen(
    channel: string,
    onNotify: (payload: string) => void,
    onListen?: () => void,
  ): Promise<() => Promise<void>>;
  config: DatabaseConfig;
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable url)';
  }
}

/** A settling promise-like that reports to the observer when it settles, without changing the outcome. */
function observed<T extends PromiseLike<unknown>>(pending: T, done: (error?: unknown) => void): T {
  const then = pending.then.bind(pending);
  // postgres.js queries are lazy thenables that Drizzle awaits (after `.values()`, which returns the same
  // object): hooking `then` on the instance sees the outcome without starting the query early.
  Object.defineProperty(pending, 'then', {
    value: (onFulfilled?: (v: unknown) => unknown, onRejected?: (e: unknown) => unknown) =>
      then(
        (value) => {
          done();
          return onFulfilled ? onFulfilled(value) : value;
        },
        (error) => {
          done(error);
          if (onRejected) return onRejected(error);
          throw error;
        },
      ),
    configurable: true,
    writable: true,
  });
  return pending;
}

type PostgresClient = import('postgres').Sql;
type Unsafe = PostgresClient['unsafe'];

/**
 * The postgres.js client Drizzle sees, reporting each statement (and those of its transactions and
 * savepoints) to the observer. The bare client stays the handle's `raw`.
 */
function observePostgres<C extends object>(client: C, observer: StatementObserver): C {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property === 'unsafe') {
        const unsafe = value as Unsafe;
        return (text: string, ...rest: unknown[]) =>
          observed(
            (unsafe as (...args: unknown[]) => PromiseLike<unknown>)(text, ...rest),
            observer.start(text),
          );
      }
      if (property === 'begin' || property === 'savepoint') {
        const open = value as (...args: unknown[]) => unknown;
        return (...args: unknown[]) => {
          const fn = args.at(-1) as (tx: object) => unknown;
          return open.apply(target, [
            ...args.slice(0, -1),
            (tx: object) => fn(observePostgres(tx, observer)),
          ]);
        };
      }
      return value;
    },
  });
}

export async function openDatabase(
  config: DatabaseConfig,
  options: OpenOptions = {},
): Promise<DatabaseHandle> {
  const { observer } = options;
  const statements: StatementCounter = { count: 0 };
  const logger = {
    logQuery() {
      statements.count++;
    },
  };
  if (config.driver === 'postgres') {
    const { default: postgres } = await import('postgres');
    const { drizzle } = await import('drizzle-orm/postgres-js');
    const client = postgres(config.url, {
      max: config.poolSize,
      connect_timeout: config.connectTimeoutSeconds,
      idle_timeout: 60,
      onnotice: () => {},
      connection: { statement_timeout: config.statementTimeoutMs, application_name: 'sona-experiments' },
    });
    const db = drizzle(observer ? observePostgres(client, observer) : client, {
      schema,
      logger,
    }) as unknown as Database;
    // patches/README.md (5): postgres.js keeps its pool's state private; the patch exposes it.
    const stats = (client as unknown as { stats?: () => PoolStats }).stats;
    return {
      db,
      driver: 'postgres',
      location: redact(config.url),
      created: false,
      statements,
      pool: () => stats?.() ?? null,
      raw: client,
      config,
      async listen(channel, onNotify, onListen) {
        const request = await client.listen(channel, onNotify, onListen);
        return () => request.unlisten();
      },
      async ping() {
        await client`select 1`;
      },
      async close() {
        await client.end({ timeout: 5 });
      },
    };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const inMemory = config.dataDir.startsWith('memory://');
  const snapshot = inMemory ? config.snapshot : undefined;
  let created = inMemory && !snapshot;
  if (!inMemory) {
    created = !existsSync(path.join(config.dataDir, 'PG_VERSION'));
    mkdirSync(config.dataDir, { recursive: true });
  }
  const settings = Object.entries((inMemory && options.pgliteSettings) || {}).flatMap(([name, value]) => [
    '-c',
    `${name}=${value}`,
  ]);
  const client = inMemory
    ? await PGlite.create({
        ...(snapshot ? { loadDataDir: snapshot } : {}),
        ...(settings.length ? { startParams: [...PGlite.defaultStartParams, ...settings] } : {}),
      })
    : await PGlite.create(config.dataDir);
  const db = drizzle(observer ? observePglite(client, observer) : client, {
    schema,
    logger,
  }) as unknown as Database;
  return {
    db,
    driver: 'pglite',
    location: inMemory ? 'memory://' : config.dataDir,
    created,
    statements,
    pool: () => null,
    raw: client,
    config,
    async listen(channel, onNotify, onListen) {
      // In-process: the subscription never drops, so it takes effect exactly once.
      const unsubscribe = await client.listen(channel, onNotify);
      onListen?.();
      return () => unsubscribe();
    },
    async ping() {
      await client.query('select 1');
    },
    async close() {
      if (!client.closed) await client.close();
    },
  };
}

type PgliteLike = Pick<import('@electric-sql/pglite').PGlite, 'query' | 'transaction'>;

/** PGlite as Drizzle sees it, reporting each statement (and those of its transactions) to the observer. */
function observePglite<C extends object>(client: C, observer: StatementObserver): C {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property === 'query') {
        const query = (value as PgliteLike['query']).bind(target);
        return (text: string, ...rest: unknown[]) => {
          const done = observer.start(text);
          // A native promise: `await` would not call a `then` set on it, so chain instead.
          return (query as (...args: unknown[]) => Promise<unknown>)(text, ...rest).then(
            (value) => {
              done();
              return value;
            },
            (error: unknown) => {
              done(error);
              throw error;
            },
          );
        };
      }
      if (property === 'transaction') {
        const transaction = (value as PgliteLike['transaction']).bind(target);
        return (fn: (tx: object) => unknown) =>
          transaction((tx) => fn(observePglite(tx, observer)) as Promise<unknown>);
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Runs raw SQL and returns its rows, whichever driver executes it, as they come: unchecked, for tests
 * and scripts reading rows they wrote. Application code parses its rows (parseRows in ./rows).
 */
export async function queryRows<T>(db: Pick<Db, 'execute'>, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown;
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

const preparingDialect = new PgDialect();

/** The part of a Drizzle session that runs a statement under a name (postgres.js then prepares it). */
interface PreparingSession {
  prepareQuery(
    query: { sql: string; params: unknown[] },
    fields: undefined,
    name: string,
    isResponseInArrayMode: boolean,
  ): { execute(): Promise<unknown> };
}

/**
 * queryRows for a statement whose text repeats request after request (the planned reads): on
 * PostgreSQL it is prepared once per connection (postgres.js names it by its text) and afterwards only
 * bound and executed, so PostgreSQL stops parsing and planning it for every request. Drizzle's
 * `execute` never prepares. PGlite, and anything that is not a postgres.js session, runs it as
 * queryRows does.
 */
export async function queryPreparedRows<T>(db: Pick<Db, 'execute'>, query: SQL, name: string): Promise<T[]> {
  const session = (db as { session?: unknown }).session;
  if (!is(session, PostgresJsSession)) return queryRows<T>(db, query);
  const prepared = (session as unknown as PreparingSession).prepareQuery(
    preparingDialect.sqlToQuery(query),
    undefined,
    name,
    false,
  );
  return (await prepared.execute()) as T[];
}

/**
 * A whole array (or list of records) as ONE bind parameter, decoded in SQL with json_array_elements_text
 * or json_to_recordset. Drivers disagree on native array parameters; JSON text works the same on both,
 * and keeps any batch far below the protocol's 65,534-parameter limit.
 */
export function jsonParam(value: unknown): SQL {
  return sql`${JSON.stringify(value)}::json`;
}

/**
 * A statement whose text never changes, with a batch (jsonb) as one of its parameters (the others are
 * constants), rendered to text once: `build` gets the batch's place and returns the statement. Drizzle
 * otherwise rebuilds a large template from its fragments on every call (~1.7 ms of CPU per batch for the
 * fold). The text is the same on both drivers, so postgres.js keeps it prepared.
 */
export function batchStatement(build: (batch: SQL) => SQL): (batch: unknown) => SQL {
  const marker = Symbol('batch');
  const query = preparingDialect.sqlToQuery(build(sql`${marker}::jsonb`));
  // Drizzle numbers every interpolated value anew, in order: text, $1, text, $2, …, text.
  const pieces = query.sql.split(/\$(\d+)/);
  const at = query.params.indexOf(marker);
  const numbered = pieces.every((piece, i) => i % 2 === 0 || piece === String((i + 1) / 2));
  if (at < 0 || query.params.lastIndexOf(marker) !== at || !numbered)
    throw new Error('a batch statement binds its batch once, its parameters numbered in order');
  const texts = pieces.filter((_, i) => i % 2 === 0).map((text) => sql.raw(text));
  return (batch) => {
    const chunks: SQL[] = [texts[0]];
    query.params.forEach((param, i) => {
      chunks.push(sql`${i === at ? JSON.stringify(batch) : param}`, texts[i + 1]);
    });
    return sql.join(chunks);
  };
}

/** Like jsonParam, as jsonb: json_to_recordset re-parses its input per column, jsonb_to_recordset does not. */
export function jsonbParam(value: unknown): SQL {
  return sql`${JSON.stringify(value)}::jsonb`;
}

/**
 * Columns by their bare names, for where SQL takes no table qualifier (INSERT column lists, ON CONFLICT
 * targets, SET): raw SQL names every table and column through the schema objects, so a rename in
 * ./schema reaches it (a column interpolated as `${column}` renders qualified, `"table"."column"`).
 */
export function columnNames(...columns: AnyPgColumn[]): SQL {
  return sql.join(
    columns.map((c) => sql.identifier(c.name)),
    sql`, `,
  );
}

/**
 * `"table" AS "alias"`, for raw SQL's FROM, JOIN and INSERT INTO, given a table and an alias() of it
 * (whose columns render as `"alias"."column"`; the alias itself renders as its bare name).
 */
export function tableAs(table: PgTable, aliased: PgTable): SQL {
  return sql`${table} AS ${sql.identifier(getTableName(aliased))}`;
}
