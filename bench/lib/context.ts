/** What every scenario gets from bench/run.ts. */
import type { DatabaseHandle } from '../../src/db/client';
import type { Sql } from './database';
import type { Options, Sizes } from './options';
import type { Report } from './report';
import type { ServerProcess } from './server';

export interface Context {
  options: Options;
  sizes: Sizes;
  report: Report;
  /** The harness's own PostgreSQL client on the bench database (setup, COPY, raw-view SQL). */
  sql: Sql;
  /** The project's DatabaseHandle on the bench database, in this process (statement counting). */
  handle: DatabaseHandle;
  /** The bench database's URL (peers of the head-to-head connect to it). */
  benchUrl: string;
  /** The real server, in a child process. */
  server: ServerProcess;
  /** Unique per run: keeps generated ids apart. */
  runId: string;
  log(message: string): void;
}

export type Scenario = (ctx: Context) => Promise<void>;
