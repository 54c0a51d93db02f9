/**
 * The response cache of read queries (src/http/plugins/response-cache.ts): repeated reads cost no SQL,
 * every change (through this instance or any other) is seen at once, what ingestion feeds is never
 * stored, answers are kept per scope set, and errors and mutations are never stored.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import pino, { type Logger } from 'pino';
import { notifyExperimentChanged } from '../../src/assignments/config-cache';
import type { Scope } from '../../src/auth/scopes';
import { securityConfigFromEnv, type SecurityConfig } from '../../src/config';
import type { DatabaseHandle } from '../../src/db/client';
import { createExperimentService } from '../../src/experiments/service';
import { type App, createApp } from '../../src/http/app';
import { ResponseCache } from '../../src/http/plugins/response-cache';
import { type GraphQLResponse, gqlOk } from '../support/app';
import { openTestDatabase, testDriver } from '../support/db';
import { createRunningWithVariants, createTestExperiment } from '../support/factories';
import { captureLogs, eventually, makeKey, productionSecurity, sha256 } from '../support/server';

const silent = pino({ level: process.env.TEST_LOG_LEVEL || 'silent' });

let handle: DatabaseHandle;
const caches: ResponseCache[] = [];

async function cachedApp(
  on: DatabaseHandle,
  options: { ttlMs?: number; security?: SecurityConfig; logger?: Logger } = {},
): Promise<{ app: App; cache: ResponseCache }> {
  const cache = new ResponseCache(options.ttlMs ?? 60_000);
  await cache.start(on);
  caches.push(cache);
  const app = createApp({
    db: on.db,
    logger: options.logger ?? silent,
    security: options.security ?? securityConfigFromEnv({}),
    responseCache: cache,
  });
  return { app, cache };
}

beforeAll(async () => {
  handle = await openTestDatabase();
});
afterAll(async () => {
  await Promise.all(caches.map((c) => c.stop()));
  await handle?.close();
});

/** Statements the handle ran during `work`, and its result. */
async function counted<T>(on: DatabaseHandle, work: () => Promise<T>): Promise<[T, number]> {
  const before = on.statements.count;
  const result = await work();
  return [result, on.statements.count - before];
}

const EXPERIMENT = `query Experiment($key: String!) {
  experiment(key: $key) { id key name status description variants { id name weight } auditLog(first: 5) { action } }
}`;

const LIST = `{ experiments(first: 3) { totalCount edges { node { id key status variants { id name weight } } } } }`;

describe('reads served from the cache', () => {
  it('a repeated read (one experiment, a list) is answered without SQL, with the same answer', async () => {
    const { app } = await cachedApp(handle);
    const experiment = await createTestExperiment(handle.db);
    const [first, firstStatements] = await counted(handle, () =>
      gqlOk(app, EXPERIMENT, { key: experiment.key }),
    );
    expect(firstStatements).toBeGreaterThan(0);
    expect(first.experiment.key).toBe(experiment.key);
    const [second, secondStatements] = await counted(handle, () =>
      gqlOk(app, EXPERIMENT, { key: experiment.key }),
    );
    expect(secondStatements).toBe(0);
    expect(second).toEqual(first);

    const list = await gqlOk(app, LIST);
    const [again, listStatements] = await counted(handle, () => gqlOk(app, LIST));
    expect(listStatements).toBe(0);
    expect(again).toEqual(list);
    // Other variables are another answer.
    const other = await createTestExperiment(handle.db);
    const [otherAnswer, otherStatements] = await counted(handle, () =>
      gqlOk(app, EXPERIMENT, { key: other.key }),
    );
    expect(otherStatements).toBeGreaterThan(0);
    expect(otherAnswer.experiment.key).toBe(other.key);
  });

  it('an answer served from the cache is logged like any operation, marked cached', async () => {
    const logs = captureLogs();
    const { app } = await cachedApp(handle, { logger: logs.logger });
    const experiment = await createTestExperiment(handle.db);
    await gqlOk(app, EXPERIMENT, { key: experiment.key });
    await gqlOk(app, EXPERIMENT, { key: experiment.key });
    const operations = logs.lines().filter((line) => line.msg === 'graphql operation');
    expect(operations).toHaveLength(2);
    expect(operations[0]).toMatchObject({ operationName: 'Experiment', actor: 'anonymous' });
    expect(operations[0].cached).toBeUndefined();
    expect(operations[1]).toMatchObject({ operationName: 'Experiment', actor: 'anonymous', cached: true });
  });

  it('a change through this instance is seen by the next read', async () => {
    const { app } = await cachedApp(handle);
    const experiment = await createTestExperiment(handle.db);
    expect((await gqlOk(app, EXPERIMENT, { key: experiment.key })).experiment.status).toBe('DRAFT');
    await gqlOk(
      app,
      `mutation ($id: ID!) { startExperiment(id: $id) { __typename ... on Error { message } } }`,
      { id: experiment.id },
    );
    const after = await gqlOk(app, EXPERIMENT, { key: experiment.key });
    expect(after.experiment.status).toBe('RUNNING');
    expect(after.experiment.auditLog[0].action).toBe('experiment.started');
    await gqlOk(
      app,
      `mutation ($id: ID!) { updateExperiment(id: $id, input: { description: "changed" }) { __typename } }`,
      { id: experiment.id },
    );
    expect((await gqlOk(app, EXPERIMENT, { key: experiment.key })).experiment.description).toBe('changed');
  });

  it('a change through another instance (its notification) drops the answers', async () => {
    const { app } = await cachedApp(handle);
    const experiment = await createTestExperiment(handle.db);
    await gqlOk(app, EXPERIMENT, { key: experiment.key });
    // Another process's service: it notifies inside its transaction, as every instance's does.
    const elsewhere = createExperimentService({
      db: handle.db,
      actor: { name: 'elsewhere' },
      onChange: (id, tx) => notifyExperimentChanged(tx, id),
    });
    await elsewhere.transition(experiment.id, 'start');
    const seen = await eventually(
      async () => (await gqlOk(app, EXPERIMENT, { key: experiment.key })).experiment.status === 'RUNNING',
    );
    expect(seen).toBe(true);
  });

  const onPostgres = testDriver() === 'postgres' ? it : it.skip;
  onPostgres(
    'a lifecycle mutation through a second instance (own connections) reaches the first',
    async () => {
      const other = await openTestDatabase();
      let stopSecond = async () => {};
      try {
        const { app: first } = await cachedApp(handle);
        const { app: second, cache: secondCache } = await cachedApp(other);
        // Its LISTEN is on `other`: stopped before `other` closes.
        caches.splice(caches.indexOf(secondCache), 1);
        stopSecond = () => secondCache.stop();
        const experiment = await createTestExperiment(handle.db);
        const listed = () => gqlOk(first, EXPERIMENT, { key: experiment.key });
        await listed();
        const [, statements] = await counted(handle, listed);
        expect(statements).toBe(0);
        await gqlOk(second, `mutation ($id: ID!) { startExperiment(id: $id) { __typename } }`, {
          id: experiment.id,
        });
        expect(await eventually(async () => (await listed()).experiment.status === 'RUNNING')).toBe(true);
      } finally {
        await stopSecond();
        await other.close();
      }
    },
  );

  it('an answer whose execution overlapped a change is not stored', async () => {
    // A change committing while the read's statement runs: the invalidation lands mid-execution.
    let cache: ResponseCache | null = null;
    let changeDuringRead = false;
    const observed = await openTestDatabase({
      observer: {
        start: () => () => {
          if (changeDuringRead) cache?.invalidate();
        },
      },
    });
    try {
      cache = new ResponseCache(60_000);
      const app = createApp({
        db: observed.db,
        logger: silent,
        security: securityConfigFromEnv({}),
        responseCache: cache,
      });
      const experiment = await createTestExperiment(observed.db);
      changeDuringRead = true;
      await gqlOk(app, EXPERIMENT, { key: experiment.key });
      changeDuringRead = false;
      const [, statements] = await counted(observed, () => gqlOk(app, EXPERIMENT, { key: experiment.key }));
      expect(statements).toBeGreaterThan(0);
      // Without a change meanwhile, that answer was stored.
      const [, again] = await counted(observed, () => gqlOk(app, EXPERIMENT, { key: experiment.key }));
      expect(again).toBe(0);
    } finally {
      await observed.close();
    }
  });

  it('a change that notified nobody is seen once the time to live is over', async () => {
    const { app } = await cachedApp(handle, { ttlMs: 200 });
    const experiment = await createTestExperiment(handle.db);
    await gqlOk(app, EXPERIMENT, { key: experiment.key });
    await handle.db.execute(sql`UPDATE experiments SET name = 'renamed behind' WHERE id = ${experiment.id}`);
    const seen = await eventually(
      async () =>
        (await gqlOk(app, EXPERIMENT, { key: experiment.key })).experiment.name === 'renamed behind',
    );
    expect(seen).toBe(true);
  });
});

describe('what is never stored', () => {
  it('what ingestion and assignment feed is never stale', async () => {
    const { app, cache } = await cachedApp(handle);
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const DASHBOARD = `query ($key: String!) { experiment(key: $key) { key assignmentCount metricNames
      metrics { variantMetrics { variant { id } exposures conversions } } variants { id metrics { exposures } } } }`;
    const hits = cache.hits;
    // Asked twice: had it been stored, the second would be served.
    await gqlOk(app, DASHBOARD, { key: experiment.key });
    const before = await gqlOk(app, DASHBOARD, { key: experiment.key });
    expect(before.experiment.assignmentCount).toBe(0);
    const record = (field: string, extra = '') =>
      gqlOk(
        app,
        `mutation ($e: String!, $v: ID!) { ${field}(input: { experimentKey: $e, userId: "u1", variantId: $v${extra} }) { __typename } }`,
        { e: experiment.key, v: variants[0].id },
      );
    expect(await record('recordExposure')).toEqual({ recordExposure: { __typename: 'RecordEventSuccess' } });
    expect(await record('recordConversion', ', metricName: "purchase"')).toEqual({
      recordConversion: { __typename: 'RecordEventSuccess' },
    });
    const [after, statements] = await counted(handle, () => gqlOk(app, DASHBOARD, { key: experiment.key }));
    expect(statements).toBeGreaterThan(0);
    expect(cache.hits).toBe(hits);
    expect(after.experiment.assignmentCount).toBe(1);
    expect(after.experiment.metricNames).toContain('purchase');
    const row = after.experiment.metrics.variantMetrics.find(
      (m: { variant: { id: string } }) => m.variant.id === variants[0].id,
    );
    expect(row).toMatchObject({ exposures: 1, conversions: 1 });
    expect(after.experiment.variants[0].metrics.exposures).toBe(1);
  });

  it('answers with errors are not stored', async () => {
    const { app, cache } = await cachedApp(handle);
    const broken = `{ experiment(id: "00000000-0000-0000-0000-000000000000", key: "both") { id } }`;
    const post = () =>
      app.fetch('http://localhost/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: broken }),
      });
    const first = (await (await post()).json()) as GraphQLResponse;
    expect(first.errors?.length).toBeGreaterThan(0);
    const second = (await (await post()).json()) as GraphQLResponse;
    expect(second.errors?.length).toBeGreaterThan(0);
    expect(cache.hits).toBe(0);
  });

  it('mutations are never stored: the same mutation twice writes twice', async () => {
    const { app, cache } = await cachedApp(handle);
    const experiment = await createTestExperiment(handle.db);
    const update = `mutation ($id: ID!) { updateExperiment(id: $id, input: { description: "same" }) { __typename } }`;
    await gqlOk(app, update, { id: experiment.id });
    await gqlOk(app, update, { id: experiment.id });
    expect(cache.hits).toBe(0);
    const log = await gqlOk(app, EXPERIMENT, { key: experiment.key });
    expect(
      log.experiment.auditLog.filter((e: { action: string }) => e.action === 'experiment.updated'),
    ).toHaveLength(2);
  });
});

describe('answers per scope set', () => {
  const post = async (
    app: App,
    key: string | null,
    query: string,
    variables?: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) => {
    const response = await app.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...headers,
      },
      body: JSON.stringify({ query, variables }),
    });
    return {
      status: response.status,
      etag: response.headers.get('etag'),
      body: (await response.json()) as GraphQLResponse,
    };
  };

  it('a read key and an admin key never share an answer; other scopes are refused as before', async () => {
    const { app, cache } = await cachedApp(handle, { security: productionSecurity() });
    const experiment = await createTestExperiment(handle.db);
    const keys = {} as Record<'read' | 'admin' | 'assign', string>;
    for (const scope of ['read', 'admin', 'assign'] as Scope[]) {
      keys[scope as 'read'] = (await makeKey(handle.db, [scope])).key;
    }
    const vars = { key: experiment.key };
    const read = await post(app, keys.read, EXPERIMENT, vars);
    expect(read.status).toBe(200);
    const hits = cache.hits;
    // The admin key's first read executes (its own entry), its second is served.
    const [admin, adminStatements] = await counted(handle, () => post(app, keys.admin, EXPERIMENT, vars));
    expect(admin.body.data).toEqual(read.body.data);
    expect(adminStatements).toBeGreaterThan(0);
    expect(cache.hits).toBe(hits);
    await post(app, keys.admin, EXPERIMENT, vars);
    expect(cache.hits).toBe(hits + 1);
    // Whatever is stored, a key without `read` and a caller without a key are refused.
    const assign = await post(app, keys.assign, EXPERIMENT, vars);
    expect(assign.status).toBe(403);
    expect(assign.body.data ?? null).toBeNull();
    const anonymous = await post(app, null, EXPERIMENT, vars);
    expect(anonymous.status).toBe(401);
    expect(cache.hits).toBe(hits + 1);
    // The plugin's conditional-request shortcut (a 304 for a known ETag, answered before authentication)
    // is off: a caller without a key who sends the read key's entry as If-None-Match still gets 401.
    expect(read.etag).toBeTruthy();
    const entry = sha256([EXPERIMENT, '', JSON.stringify(vars), 'read'].join('|'));
    expect(entry).toBe(read.etag);
    const conditional = await post(app, null, EXPERIMENT, vars, { 'if-none-match': entry });
    expect(conditional.status).toBe(401);
    expect(cache.store.get(entry)).not.toBeNull(); // that is the read key's stored answer
  });
});
