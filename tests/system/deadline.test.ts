/**
 * The request deadline against a COMMIT in flight (PostgreSQL): a deferred constraint trigger makes
 * COMMIT itself slow for marked rows, so the deadline passes while COMMIT is running. The answer must be
 * the truth: the real outcome when the change committed, TIMEOUT only when nothing was written (and then
 * nothing ever is). The old code answered TIMEOUT for changes that then committed.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { queryRows } from '../../src/db/client';
import { getVariants } from '../../src/experiments/repository';
import { testDriver } from '../support/db';
import { createRunningExperiment, uniqueKey } from '../support/factories';
import {
  type IsolatedDatabase,
  makeKey,
  openIsolatedDatabase,
  postGraphQL,
  productionSecurity,
  sleep,
  startTestServer,
  type TestServer,
} from '../support/server';

const REQUEST_TIMEOUT_MS = 1000;
/** How long COMMIT takes for a marked row: far beyond the deadline, so any success answered came after it. */
const COMMIT_SECONDS = 2.5;
const MARK = 'slow-commit-';

// PGlite runs in this thread: a slow COMMIT there blocks the timer too, so the race cannot happen.
const onPostgres = testDriver() === 'postgres' ? describe : describe.skip;

onPostgres('a COMMIT in flight when the request deadline passes', () => {
  let iso: IsolatedDatabase;
  let server: TestServer;
  let key: string;

  beforeAll(async () => {
    iso = await openIsolatedDatabase();
    const db = iso.handle.db;
    await db.execute(
      sql.raw(`CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(${COMMIT_SECONDS}); RETURN NULL; END $$`),
    );
    // Deferred: runs at COMMIT, after the request's work has finished.
    await db.execute(
      sql.raw(`CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON experiments
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.key LIKE '${MARK}%') EXECUTE FUNCTION slow_commit()`),
    );
    await db.execute(
      sql.raw(`CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON experiment_exposures
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.user_id = '${MARK}marker') EXECUTE FUNCTION slow_commit()`),
    );
    server = await startTestServer(iso.handle, {
      security: productionSecurity({ requestTimeoutMs: REQUEST_TIMEOUT_MS }),
    });
    key = (await makeKey(db, ['admin'])).key;
    expect((await postGraphQL(server.url, '{ __typename }', {}, { key })).status).toBe(200);
  });
  afterAll(async () => {
    await server?.close();
    await iso?.close();
  });

  const count = async (query: ReturnType<typeof sql>) => {
    const [row] = await queryRows<{ n: number }>(iso.handle.db, query);
    return row.n;
  };

  /**
   * Sends requests until one's work finished before the deadline (its COMMIT was then in flight), at most
   * a few times: a loaded machine may spend the whole deadline on the work, and then TIMEOUT is right.
   */
  async function untilCommitRaced(
    send: () => Promise<{ status: number; body: any }>,
    written: () => Promise<boolean>,
  ) {
    for (let attempt = 0; attempt < 4; attempt++) {
      const response = await send();
      if (response.status === 503) {
        // TIMEOUT must mean nothing was written, not even once the slow COMMIT would have finished.
        expect(response.body.errors[0].extensions.code).toBe('TIMEOUT');
        await sleep(COMMIT_SECONDS * 1000 + 500);
        expect(await written()).toBe(false);
        continue;
      }
      return response;
    }
    throw new Error('every attempt spent the whole deadline before COMMIT; the machine is too loaded');
  }

  it('createExperiment answers the created experiment, not TIMEOUT', async () => {
    let experimentKey = '';
    const response = await untilCommitRaced(
      () => {
        experimentKey = uniqueKey(MARK.slice(0, -1));
        return postGraphQL(
          server.url,
          `mutation($key: String!) { createExperiment(input: { key: $key, name: "Slow" }) { __typename ... on Experiment { key } } }`,
          { key: experimentKey },
          { key },
        );
      },
      async () =>
        (await count(sql`SELECT count(*)::int AS n FROM experiments WHERE key = ${experimentKey}`)) > 0,
    );
    expect(response.status).toBe(200);
    expect(response.body.data.createExperiment).toEqual({ __typename: 'Experiment', key: experimentKey });
    expect(await count(sql`SELECT count(*)::int AS n FROM experiments WHERE key = ${experimentKey}`)).toBe(1);
  });

  it('recordEvents answers what it wrote, not TIMEOUT', async () => {
    const experiment = await createRunningExperiment(iso.handle.db);
    const [variant] = await getVariants(iso.handle.db, experiment.id);
    const exposures = async () =>
      count(sql`SELECT count(*)::int AS n FROM experiment_exposures WHERE experiment_id = ${experiment.id}`);
    const response = await untilCommitRaced(
      () => {
        const events = Array.from({ length: 200 }, (_, i) => ({
          kind: 'EXPOSURE',
          experimentKey: experiment.key,
          userId: i === 0 ? `${MARK}marker` : `u-${randomUUID().slice(0, 8)}`,
          variantId: variant.id,
          eventId: randomUUID(),
        }));
        return postGraphQL(
          server.url,
          'mutation($events: [EventInput!]!) { recordEvents(events: $events) { accepted rejected { index } } }',
          { events },
          { key },
        );
      },
      async () => (await exposures()) > 0,
    );
    expect(response.status).toBe(200);
    expect(response.body.data.recordEvents).toEqual({ accepted: 200, rejected: [] });
    expect(await exposures()).toBe(200);
  });
});
