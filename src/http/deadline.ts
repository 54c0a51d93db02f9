/**
 * The request deadline (REQUEST_TIMEOUT_MS). A request that passes it is answered TIMEOUT only when
 * nothing of it committed, and then nothing of it ever will:
 *
 * - its transactions neither begin nor send COMMIT once the deadline has passed (they throw
 *   DeadlineExceededError and roll back);
 * - a COMMIT already sent when the deadline passes is waited for: if it (or an earlier transaction of the
 *   request) committed, the request runs to its end and the client gets the real outcome, late; only if
 *   nothing committed is the answer TIMEOUT.
 *
 * Waiting for a pool connection cannot be cancelled (postgres.js has no timeout for it): a request past
 * its deadline may still get one, and its transaction then refuses to begin. Single statements outside
 * a transaction are not held back: they are reads, or assignment's insert-if-absent, which is idempotent
 * (a retry finds the stored assignment).
 */
import { DomainError } from '../common/errors';
import type { Database } from '../db/client';

export const TIMED_OUT = Symbol('timed out');

export const timeoutMessage = (ms: number) => `The request did not finish within ${ms} ms; retry shortly`;

/** A transaction of a request whose deadline has passed: refused before BEGIN or before COMMIT. */
export class DeadlineExceededError extends DomainError {
  readonly code = 'TIMEOUT';
  constructor() {
    super('The request passed its deadline before this change could be written; nothing of it was written');
    this.name = 'DeadlineExceededError';
  }
}

/** One request's deadline, shared by the HTTP layer (which answers) and the request's database. */
export class RequestDeadline {
  private passed = false;
  /** Transactions whose COMMIT has been sent and not yet answered. */
  private committing = 0;
  /** Some transaction of the request committed: TIMEOUT would no longer be true. */
  private committed = false;
  private idle: (() => void)[] = [];

  get expired(): boolean {
    return this.passed;
  }

  /**
   * Marks the deadline as passed; resolves once no COMMIT is in flight, with whether the request may be
   * answered TIMEOUT (nothing committed, and from now on nothing will).
   */
  async expire(): Promise<boolean> {
    this.passed = true;
    if (this.committing > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    return !this.committed;
  }

  /**
   * The database as this request uses it: every method is the database's own, except `transaction`, which
   * checks the deadline before BEGIN and before COMMIT and records a COMMIT in flight.
   */
  database(db: Database): Database {
    const transaction: Database['transaction'] = async (work, config) => {
      if (this.passed) throw new DeadlineExceededError();
      let sentCommit = false;
      try {
        const result = await db.transaction(async (tx) => {
          const value = await work(tx);
          // Drizzle sends COMMIT as soon as this returns: decide now whether it may.
          if (this.passed) throw new DeadlineExceededError();
          this.committing++;
          sentCommit = true;
          return value;
        }, config);
        if (sentCommit) this.committed = true;
        return result;
      } finally {
        if (sentCommit) this.commitAnswered();
      }
    };
    return new Proxy(db, {
      get: (target, property, receiver) =>
        property === 'transaction' ? transaction : Reflect.get(target, property, receiver),
    });
  }

  private commitAnswered(): void {
    this.committing--;
    if (this.committing === 0) for (const resolve of this.idle.splice(0)) resolve();
  }
}

/**
 * Runs a request's work against its deadline. TIMED_OUT when the deadline passed and nothing of the work
 * committed (see RequestDeadline); otherwise the work's own outcome, however late.
 */
export async function withDeadline<T>(
  ms: number,
  work: (deadline: RequestDeadline) => T | Promise<T>,
): Promise<T | typeof TIMED_OUT> {
  const deadline = new RequestDeadline();
  const outcome = Promise.resolve().then(() => work(deadline));
  let timer: NodeJS.Timeout | undefined;
  // Expiring at the moment the timer fires is what stops later transactions from beginning or committing.
  const passed = new Promise<{ mayTimeOut: Promise<boolean> }>((resolve) => {
    timer = setTimeout(() => resolve({ mayTimeOut: deadline.expire() }), ms);
  });
  try {
    const first = await Promise.race([
      outcome.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      passed,
    ]);
    if ('value' in first) return first.value;
    if ('error' in first) throw first.error;
    // Nothing committed: TIMEOUT, and nothing will. Something did: the client gets what really happened.
    return (await first.mayTimeOut) ? TIMED_OUT : await outcome;
  } finally {
    clearTimeout(timer);
  }
}
