/**
 * SIGTERM on the real service (`node --import tsx src/main.ts`, spawned): it stops accepting
 * connections at once, finishes the requests in flight, closes the pool and exits 0 within
 * SHUTDOWN_TIMEOUT_MS; a request that would outlast that bound does not keep it alive.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { type DatabaseHandle, queryRows } from '../../src/db/client';
import { openTestDatabase, testDriver } from '../support/db';
import { runDatabaseUrl } from '../support/environment';
import { createTestExperiment, uniqueKey } from '../support/factories';
import { exitWithin, type SpawnedService, spawnService } from '../support/processes';
import { eventually, makeKey, postGraphQL, sleep } from '../support/server';

const SHUTDOWN_TIMEOUT_MS = 5000;
/** How long the test waits for the process to be gone: the service's bound plus room for a busy machine. */
const EXIT_WAIT_MS = SHUTDOWN_TIMEOUT_MS + 15_000;

let handle: DatabaseHandle;
let dataDir: string;

beforeAll(async () => {
  handle = await openTestDatabase();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'sona-shutdown-'));
});
afterAll(async () => {
  await handle?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** The service on this run's database: PostgreSQL (with API keys), or a fresh embedded one. */
async function startService(
  env: Record<string, string> = {},
): Promise<{ service: SpawnedService; key?: string }> {
  const base = { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), LOG_LEVEL: 'info', ...env };
  if (testDriver() === 'postgres') {
    const service = await spawnService({ ...base, DATABASE_URL: runDatabaseUrl() });
    return { service, key: (await makeKey(handle.db, ['admin'])).key };
  }
  const service = await spawnService({ ...base, PGLITE_DIR: path.join(dataDir, uniqueKey('pglite')) });
  return { service };
}

/** Resolves once the service has logged that it received the signal. */
async function shuttingDown(service: SpawnedService) {
  expect(await eventually(async () => service.output().includes('shutting down'), 5000, 20)).toBe(true);
}

async function refusesConnections(service: SpawnedService): Promise<boolean> {
  return fetch(`${service.base}/healthz`).then(
    () => false,
    (err: Error & { cause?: { code?: string } }) => err.cause?.code === 'ECONNREFUSED',
  );
}

/** A POST whose body is sent in two parts, so the request is in flight for as long as the test wants. */
function slowPost(service: SpawnedService, body: string, headers: Record<string, string>) {
  const url = new URL(service.url);
  const req = request({
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      ...headers,
    },
  });
  const response = new Promise<{ status: number; body: any }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
  });
  const half = Math.floor(body.length / 2);
  req.write(body.slice(0, half));
  return {
    response,
    finish() {
      req.end(body.slice(half));
    },
  };
}

const CREATE = `mutation Create($input: CreateExperimentInput!) {
  createExperiment(input: $input) { __typename ... on Experiment { id key } ... on Error { code message } }
}`;

describe('SIGTERM', () => {
  it('finishes a request in flight, refuses new connections, and exits 0 in time', async () => {
    const { service, key } = await startService();
    try {
      const input = { key: uniqueKey('shutdown'), name: 'Created while shutting down' };
      const slow = slowPost(service, JSON.stringify({ query: CREATE, variables: { input } }), {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
      });
      await sleep(200); // the server has the request's headers and half its body

      service.child.kill('SIGTERM');
      await shuttingDown(service);
      expect(await refusesConnections(service)).toBe(true);
      expect(service.child.exitCode).toBeNull(); // still serving the request in flight

      slow.finish();
      const response = await slow.response;
      expect(response.status).toBe(200);
      expect(response.body.data.createExperiment).toMatchObject({ __typename: 'Experiment', key: input.key });

      // In time: the service's own SHUTDOWN_TIMEOUT_MS timer did not fire (it exits 1 and logs "shutdown
      // timed out" when it does). Judged from the service's side, not by this process's clock, which a
      // busy machine delays.
      const exit = await exitWithin(service, EXIT_WAIT_MS);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(service.output()).toContain('"msg":"stopped"');
      expect(service.output()).not.toContain('shutdown timed out');

      if (testDriver() === 'postgres') {
        const rows = await queryRows<{ n: number }>(
          handle.db,
          sql`SELECT count(*)::int AS n FROM experiments WHERE key = ${input.key}`,
        );
        expect(rows[0].n).toBe(1);
      }
    } finally {
      await service.kill();
    }
  });

  if (testDriver() === 'postgres') {
    /** Holds a row lock from the test's own connection until released. */
    async function lockExperiment(id: string) {
      let release!: () => void;
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => {
        locked = resolve;
      });
      const done = handle.db.transaction(async (tx) => {
        await tx.execute(sql`SELECT id FROM experiments WHERE id = ${id} FOR UPDATE`);
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

    /** Waits until this many statements of the service wait for a lock. */
    async function waitingOnLocks(n: number) {
      const ok = await eventually(async () => {
        const [row] = await queryRows<{ n: number }>(
          handle.db,
          sql`SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE datname = current_database() AND application_name = 'sona-experiments'
                 AND wait_event_type = 'Lock'`,
        );
        return row.n >= n;
      }, 10_000);
      expect(ok).toBe(true);
    }

    const RENAME = `mutation Rename($id: ID!, $name: String!) {
      updateExperiment(id: $id, input: { name: $name }) { __typename ... on Experiment { name } }
    }`;

    it('requests waiting on the database complete after the signal; then it exits 0', async () => {
      const { service, key } = await startService();
      const experiment = await createTestExperiment(handle.db);
      let unlock: (() => Promise<void>) | null = await lockExperiment(experiment.id);
      try {
        const inFlight = [1, 2, 3].map((i) =>
          postGraphQL(service.url, RENAME, { id: experiment.id, name: `Renamed ${i}` }, { key }),
        );
        await waitingOnLocks(inFlight.length); // all three are inside the service, blocked on the row
        service.child.kill('SIGTERM');
        await shuttingDown(service);
        expect(await refusesConnections(service)).toBe(true);

        await sleep(300);
        await unlock();
        unlock = null;
        const responses = await Promise.all(inFlight);
        for (const response of responses) {
          expect(response.status).toBe(200);
          expect(response.body.data.updateExperiment.__typename).toBe('Experiment');
        }
        expect(await exitWithin(service, EXIT_WAIT_MS)).toEqual({ code: 0, signal: null });
        expect(service.output()).not.toContain('shutdown timed out');
        const [audit] = await queryRows<{ n: number }>(
          handle.db,
          sql`SELECT count(*)::int AS n FROM audit_log WHERE entity_id = ${experiment.id} AND action = 'experiment.updated'`,
        );
        expect(audit.n).toBe(3);
      } finally {
        await unlock?.();
        await service.kill();
      }
    });

    it('a request that outlasts SHUTDOWN_TIMEOUT_MS does not keep the process alive', async () => {
      const timeout = 1500;
      const { service, key } = await startService({ SHUTDOWN_TIMEOUT_MS: String(timeout) });
      const experiment = await createTestExperiment(handle.db);
      let unlock: (() => Promise<void>) | null = await lockExperiment(experiment.id);
      try {
        const stuck = postGraphQL(service.url, RENAME, { id: experiment.id, name: 'Never' }, { key }).then(
          () => 'answered',
          () => 'connection lost',
        );
        await waitingOnLocks(1);
        const signalled = Date.now();
        service.child.kill('SIGTERM');
        const exit = await exitWithin(service, timeout + EXIT_WAIT_MS);
        expect(exit).toEqual({ code: 1, signal: null });
        expect(Date.now() - signalled).toBeGreaterThanOrEqual(timeout - 50);
        expect(service.output()).toContain('shutdown timed out');
        expect(await stuck).toBe('connection lost');
      } finally {
        await unlock?.();
        unlock = null;
        await service.kill();
      }
      // The rename never committed: its transaction died with the process.
      const [row] = await queryRows<{ name: string }>(
        handle.db,
        sql`SELECT name FROM experiments WHERE id = ${experiment.id}`,
      );
      expect(row.name).toBe(experiment.name);
    });
  }
});
