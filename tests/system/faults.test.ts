/**
 * Timeouts and database faults through the real HTTP server: a request never hangs (waiting for a free
 * connection or for a lock ends in a clean TIMEOUT), a database that goes away gives 503s and comes back
 * without a restart, and backends killed in the middle of ingestion lose no acknowledged event and
 * duplicate none. The PostgreSQL-only tests run on a database of their own, so terminating "the
 * server's backends" touches no other test file's connections. These faults are what the postgres.js
 * patch (patches/README.md) is for: without it the spawned server dies or hangs here. How faults are
 * classified is tested in tests/unit/fault-classification.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { type DatabaseHandle, openDatabase } from '../../src/db/client';
import { getVariants } from '../../src/experiments/repository';
import { testDriver } from '../support/db';
import { withDatabaseName } from '../support/environment';
import { createRunningExperiment, createTestExperiment, uniqueKey } from '../support/factories';
import { exitWithin, type SpawnedService, spawnService } from '../support/processes';
import {
  eventually,
  getUrl,
  type IsolatedDatabase,
  makeKey,
  openIsolatedDatabase,
  postGraphQL,
  productionSecurity,
  sleep,
  startTestServer,
} from '../support/server';

let iso: IsolatedDatabase;

beforeAll(async () => {
  iso = await openIsolatedDatabase();
});
afterAll(async () => {
  await iso?.close();
});

const LIST = 'query List { experiments(first: 1) { totalCount } }';

/** Waits until the key's first use has been recorded, so later requests run no statement for it. */
async function warm(url: string, key: string) {
  expect((await postGraphQL(url, '{ __typename }', {}, { key })).status).toBe(200);
  const touched = await eventually(async () => {
    const rows = (await iso.handle.db.execute(
      sql`SELECT 1 FROM api_keys WHERE last_used_at IS NOT NULL AND prefix = ${key.slice(0, 11)}`,
    )) as unknown as { length?: number; rows?: unknown[] };
    return (rows.rows ?? (rows as unknown[])).length > 0;
  });
  expect(touched).toBe(true);
}

describe('waiting for a free database connection', () => {
  it('ends in a clean TIMEOUT (503) within requestTimeoutMs, writes nothing later, and the next request succeeds', async () => {
    // One connection: PGlite has only one; on PostgreSQL a pool of one.
    const serverHandle: DatabaseHandle =
      testDriver() === 'postgres'
        ? await openDatabase({
            driver: 'postgres',
            url: iso.url!,
            poolSize: 1,
            statementTimeoutMs: 30_000,
            connectTimeoutSeconds: 10,
          })
        : iso.handle;
    const requestTimeoutMs = 500;
    const server = await startTestServer(serverHandle, {
      security: productionSecurity({ requestTimeoutMs }),
    });
    try {
      const { key } = await makeKey(iso.handle.db, ['write']);
      await warm(server.url, key);

      let release!: () => void;
      let begun!: () => void;
      const inTransaction = new Promise<void>((resolve) => {
        begun = resolve;
      });
      const held = serverHandle.db.transaction(async (tx) => {
        await tx.execute(sql`SELECT 1`);
        begun();
        await new Promise<void>((resolve) => {
          release = resolve;
        });
      });
      await inTransaction;

      const experimentKey = uniqueKey('timed-out');
      const CREATE = `mutation Create($key: String!) {
        createExperiment(input: { key: $key, name: "Too late" }) { __typename }
      }`;
      const started = Date.now();
      const response = await postGraphQL(server.url, CREATE, { key: experimentKey }, { key });
      const elapsed = Date.now() - started;

      expect(response.status).toBe(503);
      expect(response.body.errors).toEqual([
        {
          message: `The request did not finish within ${requestTimeoutMs} ms; retry shortly`,
          extensions: { code: 'TIMEOUT', requestId: response.headers.get('x-request-id') },
        },
      ]);
      // Ended by the deadline, not by the pool (the held transaction would wait for ever): the margin
      // only absorbs a busy machine.
      expect(elapsed).toBeGreaterThanOrEqual(requestTimeoutMs - 5);
      expect(elapsed).toBeLessThan(requestTimeoutMs + 5000);

      // The connection frees up: the abandoned request gets it, and must not write after all.
      release();
      await held;
      const count = async () => {
        const rows = (await iso.handle.db.execute(
          sql`SELECT count(*)::int AS n FROM experiments WHERE key = ${experimentKey}`,
        )) as unknown as { rows?: { n: number }[] } & { n: number }[];
        return (rows.rows ?? rows)[0].n;
      };
      await sleep(300);
      expect(await count()).toBe(0);

      // Retrying (as the client was told to) works, once.
      const retried = await postGraphQL(server.url, CREATE, { key: experimentKey }, { key });
      expect(retried.status).toBe(200);
      expect(retried.body.data.createExperiment.__typename).toBe('Experiment');
      expect(await count()).toBe(1);
    } finally {
      await server.close();
      if (serverHandle !== iso.handle) await serverHandle.close();
    }
  });
});

if (testDriver() === 'postgres') {
  describe('PostgreSQL faults', () => {
    let admin: postgres.Sql;
    /** On the server's maintenance database: a database cannot close its doors from inside. */
    let maintenance: postgres.Sql;
    let dbName: string;

    beforeAll(() => {
      dbName = new URL(iso.url!).pathname.slice(1);
      // Not "sona-experiments": the terminations below spare this connection.
      admin = postgres(iso.url!, {
        max: 3,
        onnotice: () => {},
        connection: { application_name: 'sona-fault-test' },
      });
      maintenance = postgres(withDatabaseName(iso.url!, 'postgres'), { max: 1, onnotice: () => {} });
    });
    afterAll(async () => {
      await maintenance?.unsafe(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
      await maintenance?.end();
      await admin?.end();
    });

    const serverDatabase = (options: { poolSize: number; statementTimeoutMs?: number }) =>
      openDatabase({
        driver: 'postgres',
        url: iso.url!,
        poolSize: options.poolSize,
        statementTimeoutMs: options.statementTimeoutMs ?? 30_000,
        connectTimeoutSeconds: 3,
      });

    /** Terminates every backend of the service on this database; returns how many. */
    async function terminateServerBackends(): Promise<number> {
      const rows = await admin`
        SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'sona-experiments' AND pid <> pg_backend_pid()`;
      return rows.filter((r) => r.done).length;
    }

    /** Locks an experiment row FOR UPDATE from another connection until the returned function is called. */
    async function lockExperimentRow(id: string): Promise<() => Promise<void>> {
      let release!: () => void;
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => {
        locked = resolve;
      });
      const done = admin.begin(async (tx) => {
        await tx`SELECT id FROM experiments WHERE id = ${id} FOR UPDATE`;
        locked();
        await new Promise<void>((resolve) => {
          release = resolve;
        });
      });
      await isLocked;
      return async () => {
        release();
        await done;
      };
    }

    it('statement_timeout: a request blocked on a row lock gets TIMEOUT (503) and changes nothing', async () => {
      const serverHandle = await serverDatabase({ poolSize: 2, statementTimeoutMs: 300 });
      const server = await startTestServer(serverHandle, { security: productionSecurity() });
      try {
        const { key } = await makeKey(iso.handle.db, ['write']);
        await warm(server.url, key);
        const experiment = await createTestExperiment(iso.handle.db, { name: 'Before the lock' });
        const UPDATE = `mutation Rename($id: ID!) {
          updateExperiment(id: $id, input: { name: "Renamed" }) { __typename ... on Experiment { name } }
        }`;

        const unlock = await lockExperimentRow(experiment.id);
        let response: Awaited<ReturnType<typeof postGraphQL>>;
        const started = Date.now();
        try {
          response = await postGraphQL(server.url, UPDATE, { id: experiment.id }, { key });
        } finally {
          await unlock();
        }
        const elapsed = Date.now() - started;
        expect(response.status).toBe(503);
        expect(response.body.data).toBeNull();
        expect(response.body.errors).toHaveLength(1);
        expect(response.body.errors[0]).toMatchObject({
          message: 'The operation took too long and was cancelled; retry shortly.',
          path: ['updateExperiment'],
          extensions: { code: 'TIMEOUT', requestId: response.headers.get('x-request-id') },
        });
        expect(response.text).not.toMatch(/statement timeout|canceling|57014|SELECT|FOR UPDATE/i);
        expect(elapsed).toBeGreaterThanOrEqual(280);
        expect(elapsed).toBeLessThan(5000);

        const [row] = await admin`SELECT name FROM experiments WHERE id = ${experiment.id}`;
        expect(row.name).toBe('Before the lock');
        const [audits] =
          await admin`SELECT count(*)::int AS n FROM audit_log WHERE entity_id = ${experiment.id}`;
        expect(audits.n).toBe(1); // experiment.created only

        // Once the lock is gone the same request goes through.
        const retried = await postGraphQL(server.url, UPDATE, { id: experiment.id }, { key });
        expect(retried.body.data.updateExperiment).toEqual({ __typename: 'Experiment', name: 'Renamed' });
      } finally {
        await server.close();
        await serverHandle.close();
      }
    });

    describe('the real service (node src/main.ts) while its database fails', () => {
      // A spawned server, so a crash shows as an exit, not as a test-runner error.
      let service: SpawnedService;
      let key: string;

      beforeAll(async () => {
        service = await spawnService({
          DATABASE_URL: iso.url!,
          DB_POOL_SIZE: '4',
          DB_CONNECT_TIMEOUT_SECONDS: '3',
          REQUEST_TIMEOUT_MS: '8000',
          RATE_LIMIT_PER_SECOND: '0',
          LOG_LEVEL: 'info',
        });
        key = (await makeKey(iso.handle.db, ['admin'])).key;
        expect((await postGraphQL(service.url, LIST, {}, { key })).status).toBe(200);
      });

      afterAll(async () => {
        if (!service) return;
        service.child.kill('SIGTERM');
        await exitWithin(service, 15_000);
        await service.kill();
      });

      /** Still running; otherwise the end of what it printed (the crash). */
      const alive = () =>
        service.child.exitCode === null
          ? 'running'
          : `exited ${service.child.exitCode}:\n${service.output().split('\n').slice(-40).join('\n')}`;

      /** Log lines of masked errors the service classified as bugs (there should be none). */
      const internalErrors = () =>
        service
          .output()
          .split('\n')
          .filter((line) => line.includes('"fault":"INTERNAL_SERVER_ERROR"'));

      it('database down: /readyz answers 503, requests get SERVICE_UNAVAILABLE, and it recovers by itself', async () => {
        const running = await createRunningExperiment(iso.handle.db);
        expect((await getUrl(`${service.base}/readyz`)).status).toBe(200);

        // Down: no new connection is accepted, and every existing one is killed.
        await maintenance.unsafe(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
        try {
          expect(await terminateServerBackends()).toBeGreaterThan(0);
          const ready = await getUrl(`${service.base}/readyz`);
          expect(ready.status).toBe(503);
          expect(ready.body).toEqual({ status: 'unavailable', database: 'postgres' });

          // Reads that need the database: LIST itself may be answered from the response cache (nothing
          // can change while the database is down, so that answer is still true); assignment counts never
          // are.
          const COUNTS = 'query Counts { experiments(first: 1) { edges { node { assignmentCount } } } }';
          const requests = [
            COUNTS,
            `mutation { assignVariant(experimentKey: "${running.key}", userId: "down-1") { __typename } }`,
            `mutation { updateExperiment(id: "${running.id}", input: { name: "x" }) { __typename } }`,
            COUNTS,
          ];
          for (const query of requests) {
            const started = Date.now();
            const response = await postGraphQL(service.url, query, {}, { key });
            expect({ query, status: response.status, errors: response.body?.errors }).toEqual({
              query,
              status: 503,
              errors: [
                expect.objectContaining({
                  message: 'The database is unavailable; retry shortly.',
                  extensions: expect.objectContaining({
                    code: 'SERVICE_UNAVAILABLE',
                    requestId: response.headers.get('x-request-id'),
                  }),
                }),
              ],
            });
            expect(Date.now() - started).toBeLessThan(5000); // refused fast, not left to the deadline
            expect(response.text).not.toMatch(/accepting connections|ECONNRESET|terminating|administrator/i);
          }
        } finally {
          await maintenance.unsafe(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
        }

        // Back: without a restart, readiness and requests recover.
        const ready = await eventually(
          async () => (await getUrl(`${service.base}/readyz`)).status === 200,
          20_000,
          200,
        );
        expect(ready).toBe(true);
        const answering = await eventually(
          async () => (await postGraphQL(service.url, LIST, {}, { key })).status === 200,
          20_000,
          200,
        );
        expect(answering).toBe(true);
        expect(alive()).toBe('running');
        expect(internalErrors()).toEqual([]);
      });

      it('backends terminated again and again during ingestion: every acknowledged event exactly once, aggregates exact', async () => {
        const BATCHES = 40;
        const BATCH_SIZE = 50;
        const WORKERS = 4;
        const experiment = await createRunningExperiment(iso.handle.db);
        const variants = await getVariants(iso.handle.db, experiment.id);

        // Client-made event ids; a user always names the same variant (SDK-side evaluation).
        const batches = Array.from({ length: BATCHES }, (_, b) =>
          Array.from({ length: BATCH_SIZE }, (_, i) => {
            const user = (b * 7 + i) % 300;
            const conversion = (b + i) % 3 === 0;
            return {
              kind: conversion ? 'CONVERSION' : 'EXPOSURE',
              experimentKey: experiment.key,
              userId: `fault-user-${user}`,
              variantId: variants[user % variants.length].id,
              eventId: randomUUID(),
              ...(conversion ? { metricName: 'watch_minutes', value: 1 + ((b * i) % 7) } : {}),
            };
          }),
        );
        const RECORD = `mutation Record($events: [EventInput!]!) {
          recordEvents(events: $events) { accepted duplicates rejected { index code message } }
        }`;

        const acknowledged = new Set<number>();
        const outcomes = {
          sent: 0,
          retries: 0,
          networkErrors: 0,
          unavailable: 0,
          unclean: [] as string[],
        };

        /** Sends one batch once; true when the service acknowledged it (and said so cleanly). */
        async function send(index: number): Promise<boolean> {
          outcomes.sent++;
          try {
            const response = await postGraphQL(service.url, RECORD, { events: batches[index] }, { key });
            const result = response.body?.data?.recordEvents;
            if (response.status === 200 && result) {
              // A first delivery is accepted, a replay (the acknowledgement was lost, or the batch is
              // sent again on purpose) is all duplicates: never a rejection, never a partial batch.
              if (result.rejected.length || result.accepted + result.duplicates !== BATCH_SIZE) {
                outcomes.unclean.push(`batch ${index}: ${JSON.stringify(result)}`);
              }
              acknowledged.add(index);
              return true;
            }
            const code = response.body?.errors?.[0]?.extensions?.code;
            if (code === 'SERVICE_UNAVAILABLE' || code === 'TIMEOUT') outcomes.unavailable++;
            else outcomes.unclean.push(`${response.status} ${response.text.slice(0, 300)}`);
          } catch {
            outcomes.networkErrors++;
          }
          outcomes.retries++;
          return false;
        }

        // Faults: backends are terminated every 150 ms for FAULT_ROUNDS rounds, while clients keep
        // sending the batches round-robin (failed ones again with the same event ids, acknowledged ones
        // as replays). How many get through in that window depends on the machine's load and is not
        // judged; what was acknowledged, and what is stored, is.
        const FAULT_ROUNDS = 20;
        let terminated = 0;
        let faulting = true;
        const terminator = (async () => {
          for (let round = 0; round < FAULT_ROUNDS; round++) {
            terminated += await terminateServerBackends();
            await sleep(150);
          }
          faulting = false;
        })();
        let cursor = 0;
        async function faultClient() {
          while (faulting && service.child.exitCode === null) {
            const ok = await send(cursor++ % BATCHES);
            if (!ok) await sleep(25);
          }
        }
        await Promise.all([terminator, ...Array.from({ length: WORKERS }, faultClient)]);

        // Recovery: with the database left alone, every batch not yet acknowledged is retried (same event
        // ids) until it is. A batch that still fails here is a service that did not recover.
        const pending = Array.from({ length: BATCHES }, (_, i) => i).filter((i) => !acknowledged.has(i));
        const recoveryDeadline = Date.now() + 90_000;
        async function recoveryClient() {
          for (let index = pending.shift(); index !== undefined; index = pending.shift()) {
            for (let attempt = 1; !(await send(index)); attempt++) {
              if (Date.now() > recoveryDeadline || service.child.exitCode !== null) return;
              await sleep(Math.min(500, 25 * attempt));
            }
          }
        }
        await Promise.all(Array.from({ length: WORKERS }, recoveryClient));

        console.log(
          `faults during ingestion: ${terminated} backends terminated; ${outcomes.sent} requests, ` +
            `${outcomes.retries} failed (${outcomes.unavailable} SERVICE_UNAVAILABLE/TIMEOUT, ` +
            `${outcomes.networkErrors} network errors)`,
        );
        expect(alive()).toBe('running'); // the faults never took the service down
        expect({ unclean: outcomes.unclean, internal: internalErrors() }).toEqual({
          unclean: [],
          internal: [],
        });
        expect(acknowledged.size).toBe(BATCHES); // after the faults, every batch went through
        expect(terminated).toBeGreaterThan(0);
        expect(outcomes.retries).toBeGreaterThan(0); // the faults did hit requests

        // Every acknowledged event id is stored exactly once, and nothing else is.
        const stored = await admin<{ event_id: string; n: number }[]>`
          SELECT event_id::text, count(*)::int AS n FROM (
            SELECT event_id FROM experiment_exposures WHERE experiment_id = ${experiment.id}
            UNION ALL
            SELECT event_id FROM experiment_conversions WHERE experiment_id = ${experiment.id}
          ) e GROUP BY event_id`;
        const counts = new Map(stored.map((r) => [r.event_id, r.n]));
        const sent = batches.flat().map((e) => e.eventId);
        expect(sent.filter((id) => counts.get(id) !== 1)).toEqual([]);
        expect(counts.size).toBe(sent.length);

        // The maintained aggregates are exactly what a rebuild from the raw events gives.
        const snapshot = async () => ({
          variants: await admin`
            SELECT variant_id::text, metric_name, events, units, sum, sum_squares, exposed_units, exposed_sum, exposed_sum_squares
              FROM experiment_variant_stats WHERE experiment_id = ${experiment.id}
             ORDER BY variant_id, metric_name`,
          units: await admin`
            SELECT user_id, metric_name, variant_id::text, events, total
              FROM experiment_user_metrics WHERE experiment_id = ${experiment.id}
             ORDER BY user_id, metric_name`,
        });
        const maintained = await snapshot();
        expect(maintained.variants.length).toBeGreaterThan(0);
        await admin`SELECT rebuild_experiment_stats(ARRAY[${experiment.id}]::uuid[])`;
        const rebuilt = await snapshot();
        expect(maintained).toEqual(rebuilt);

        const exposures = batches.flat().filter((e) => e.kind === 'EXPOSURE').length;
        const [totals] = await admin`
          SELECT coalesce(sum(events), 0)::int AS exposures FROM experiment_variant_stats
           WHERE experiment_id = ${experiment.id} AND metric_name = 'exposure'`;
        expect(totals.exposures).toBe(exposures);
      });
    });
  });
}
