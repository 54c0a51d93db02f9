/**
 * The job runner: periodic work inside the service (schedules, webhook delivery). Every instance runs one;
 * each run of a job is one transaction that first takes the job's transaction-scoped advisory lock
 * (`pg_try_advisory_xact_lock`), so on PostgreSQL exactly one instance does a job at a time and the others
 * skip it until their next tick. The job's effects and its record in `jobs` commit together: a process
 * that dies mid-run leaves neither, and the next run (on any instance) does the work again. On PGlite the
 * instances of one process share one connection, whose transactions run one after the other.
 *
 * Why not pg-boss or graphile-worker: both open their own node-postgres pool to a PostgreSQL server, so
 * neither can run on the embedded PGlite, and we would keep two runners. See docs/design.md.
 */
import { hostname } from 'node:os';
import { eq, sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Database, Db } from '../db/client';
import { parseRows } from '../db/rows';
import { jobs } from '../db/schema';

export interface Job {
  /** Unique; names the advisory lock and the row in `jobs`. */
  name: string;
  /**
   * One run, inside the run's transaction while holding the job's lock. `now` is the runner's clock (tests
   * move it). Throwing rolls back everything the run wrote; the failure is recorded on the job's row.
   * `afterCommit` hands over what to do once that transaction has committed, outside any transaction and
   * the lock (calls to other services: waiting on them must hold neither a connection in a transaction
   * nor, on the embedded database, its only connection); the round waits for it, and its failure is
   * logged and recorded on the job's row. Nothing of it runs if the run fails.
   */
  run(tx: Db, now: Date, afterCommit: (work: AfterCommit) => void): Promise<void>;
}

/** A job's work after its run committed, given the database (not a transaction). */
export type AfterCommit = (db: Database) => Promise<void>;

export type JobOutcome = 'ran' | 'skipped' | 'failed';

export interface JobRunnerOptions {
  db: Database;
  jobs: readonly Job[];
  /** Time between the end of one round of runs and the start of the next; 0 disables the timer. */
  intervalMs: number;
  /** The clock jobs see; tests inject one. */
  now?: () => Date;
  logger?: Pick<Logger, 'warn' | 'error' | 'debug'>;
  /** Written to `jobs.last_instance`; host and process id by default. */
  instance?: string;
}

/** Advisory lock namespace of the jobs (the two-key form; the key is hashtext of the job's name). */
const JOB_LOCK_CLASS = 'sona.jobs';

export class JobRunner {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = true;
  private readonly now: () => Date;
  private readonly instance: string;

  constructor(private readonly options: JobRunnerOptions) {
    this.now = options.now ?? (() => new Date());
    this.instance = options.instance ?? `${hostname()}:${process.pid}`;
  }

  /** Runs every job now and then every interval, until stop(). Does nothing when the interval is 0. */
  start(): void {
    if (this.options.intervalMs <= 0 || !this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops the timer and waits for a run in progress to finish (its transaction commits or rolls back). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  /** One round: each job once, in order. Rounds never overlap within an instance. */
  async tick(): Promise<Record<string, JobOutcome>> {
    while (this.running) await this.running.catch(() => {});
    const round = this.round();
    this.running = round;
    try {
      return await round;
    } finally {
      this.running = null;
    }
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.tick()
        .catch((error: unknown) => this.options.logger?.error({ err: error }, 'job round failed'))
        .finally(() => {
          if (!this.stopped) this.schedule(this.options.intervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }

  private async round(): Promise<Record<string, JobOutcome>> {
    const outcomes: Record<string, JobOutcome> = {};
    for (const job of this.options.jobs) {
      try {
        outcomes[job.name] = await this.runJob(job);
      } catch (err) {
        // The transaction itself failed (the database went away): nothing of the run committed.
        this.options.logger?.error({ err, job: job.name }, 'job run could not commit');
        outcomes[job.name] = 'failed';
      }
    }
    return outcomes;
  }

  private async runJob(job: Job): Promise<JobOutcome> {
    const { db, logger } = this.options;
    let afterCommit: AfterCommit | undefined;
    const outcome = await db.transaction(async (tx): Promise<JobOutcome> => {
      const [{ locked }] = await parseRows(
        tx,
        sql`/* tryJobLock */ SELECT pg_try_advisory_xact_lock(hashtext(${JOB_LOCK_CLASS}), hashtext(${job.name})) AS locked`,
        z.object({ locked: z.boolean() }),
      );
      if (!locked) return 'skipped';
      const startedAt = this.now();
      let error: string | null = null;
      try {
        // A savepoint: a failed run's writes go, its record below stays.
        await tx.transaction((run) =>
          job.run(run, startedAt, (work) => {
            afterCommit = work;
          }),
        );
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
        logger?.warn({ err, job: job.name }, 'job run failed');
      }
      const record = {
        lastStartedAt: startedAt,
        lastFinishedAt: this.now(),
        lastInstance: this.instance,
        lastError: error,
      };
      await tx
        .insert(jobs)
        .values({ name: job.name, runs: 1, ...record })
        .onConflictDoUpdate({ target: jobs.name, set: { runs: sql`${jobs.runs} + 1`, ...record } });
      return error === null ? 'ran' : 'failed';
    });
    const work = afterCommit as AfterCommit | undefined; // set inside the callback above
    if (outcome !== 'ran' || !work) return outcome;
    let error: string | null = null;
    try {
      await work(db);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      logger?.warn({ err, job: job.name }, 'job run failed after its commit');
    }
    // The run ends here; best effort, as the database may be what failed.
    await db
      .update(jobs)
      .set({ lastError: error, lastFinishedAt: this.now() })
      .where(eq(jobs.name, job.name))
      .catch((err: unknown) => logger?.warn({ err, job: job.name }, 'job record not updated'));
    return error === null ? 'ran' : 'failed';
  }
}

/** A job's record, for tests and the operator. */
export async function getJobRecord(db: Db, name: string) {
  const [row] = await db.select().from(jobs).where(eq(jobs.name, name));
  return row ?? null;
}
