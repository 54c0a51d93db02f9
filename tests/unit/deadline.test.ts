/**
 * The request deadline's promise, step by step against a database stand-in whose COMMIT the test
 * holds open: TIMEOUT is answered only when nothing of the request committed, and then nothing of it
 * commits later; a COMMIT already sent is waited for and the real outcome answered.
 */
import { describe, expect, it } from '@jest/globals';
import type { Database } from '../../src/db/client';
import { DeadlineExceededError, TIMED_OUT, withDeadline } from '../../src/http/deadline';

/** A promise and its resolve/reject, to hold a step open until the test lets it go. */
function gate<T = void>() {
  let open!: (value: T) => void;
  let fail!: (error: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/**
 * Just enough of a database: `transaction` runs the work, then "sends COMMIT" and waits for the test to
 * answer it (`commit.open()` commits, `commit.fail()` fails it). Records what happened.
 */
function fakeDatabase() {
  const log: string[] = [];
  let commit = gate();
  const db = {
    label: 'the database itself',
    async transaction(work: (tx: unknown) => Promise<unknown>) {
      log.push('BEGIN');
      let result: unknown;
      try {
        result = await work({});
      } catch (err) {
        log.push('ROLLBACK');
        throw err;
      }
      log.push('COMMIT sent');
      await commit.promise;
      log.push('COMMIT done');
      return result;
    },
  };
  return {
    db: db as unknown as Database,
    log,
    get commit() {
      return commit;
    },
    resetCommit() {
      commit = gate();
    },
  };
}

const DEADLINE_MS = 20;
const afterDeadline = () => new Promise((resolve) => setTimeout(resolve, DEADLINE_MS * 3));

describe('withDeadline', () => {
  it('returns the work’s result when it finishes in time', async () => {
    expect(await withDeadline(DEADLINE_MS, async () => 'done')).toBe('done');
  });

  it('a COMMIT in flight when the deadline passes is waited for, and the real outcome answered', async () => {
    const fake = fakeDatabase();
    const answer = withDeadline(DEADLINE_MS, async (deadline) => {
      const db = deadline.database(fake.db);
      return db.transaction(async () => 'created');
    });
    await afterDeadline(); // the deadline passes while COMMIT is in flight
    expect(fake.log).toEqual(['BEGIN', 'COMMIT sent']);
    fake.commit.open();
    expect(await answer).toBe('created');
    expect(fake.log).toEqual(['BEGIN', 'COMMIT sent', 'COMMIT done']);
  });

  it('a COMMIT in flight that fails leaves nothing committed: TIMEOUT', async () => {
    const fake = fakeDatabase();
    const answer = withDeadline(DEADLINE_MS, async (deadline) =>
      deadline.database(fake.db).transaction(async () => 'created'),
    );
    await afterDeadline();
    fake.commit.fail(new Error('could not serialize access'));
    expect(await answer).toBe(TIMED_OUT);
  });

  it('work still running at the deadline: TIMEOUT at once, and its transaction never sends COMMIT', async () => {
    const fake = fakeDatabase();
    const working = gate();
    let refused: unknown;
    const answer = withDeadline(DEADLINE_MS, async (deadline) =>
      deadline
        .database(fake.db)
        .transaction(async () => {
          await working.promise;
          return 'created';
        })
        .catch((err) => {
          refused = err;
          throw err;
        }),
    );
    expect(await answer).toBe(TIMED_OUT);
    working.open();
    await afterDeadline();
    expect(refused).toBeInstanceOf(DeadlineExceededError);
    expect(fake.log).toEqual(['BEGIN', 'ROLLBACK']);
  });

  it('a transaction asked for after the deadline does not even begin', async () => {
    const fake = fakeDatabase();
    let refused: unknown;
    const answer = withDeadline(DEADLINE_MS, async (deadline) => {
      await afterDeadline();
      return deadline
        .database(fake.db)
        .transaction(async () => 'created')
        .catch((err) => {
          refused = err;
          throw err;
        });
    });
    expect(await answer).toBe(TIMED_OUT);
    await afterDeadline();
    expect(refused).toBeInstanceOf(DeadlineExceededError);
    expect(fake.log).toEqual([]);
  });

  it('once something committed, the answer is the real outcome, and later transactions are refused', async () => {
    const fake = fakeDatabase();
    const answer = withDeadline(DEADLINE_MS, async (deadline) => {
      const db = deadline.database(fake.db);
      const first = await db.transaction(async () => 'first');
      await afterDeadline();
      const second = await db.transaction(async () => 'second').catch((err: Error) => err.name);
      return [first, second];
    });
    fake.commit.open(); // the first COMMIT returns before the deadline
    expect(await answer).toEqual(['first', 'DeadlineExceededError']);
    expect(fake.log).toEqual(['BEGIN', 'COMMIT sent', 'COMMIT done']);
  });

  it('everything but transaction is the database’s own', async () => {
    const fake = fakeDatabase();
    await withDeadline(DEADLINE_MS, async (deadline) => {
      const db = deadline.database(fake.db) as unknown as { label: string };
      expect(db.label).toBe('the database itself');
    });
  });
});
