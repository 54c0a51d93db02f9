/**
 * Production hardening of the real HTTP server: the defaults that turn it on, no introspection, no
 * GraphiQL, no field suggestions, masked unexpected errors with a request id, and structured logs that
 * never carry a key. Rate limiting judges a one-second window: tests/system/rate-limit.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { securityConfigFromEnv } from '../../src/config';
import type { DatabaseHandle } from '../../src/db/client';
import { openTestDatabase } from '../support/db';
import { createRunningExperiment } from '../support/factories';
import {
  captureLogs,
  failingConfigCache,
  getUrl,
  makeKey,
  postGraphQL,
  productionSecurity,
  sha256,
  startTestServer,
  type TestServer,
} from '../support/server';

let handle: DatabaseHandle;
let production: TestServer;
let development: TestServer;
let key: string;

beforeAll(async () => {
  handle = await openTestDatabase();
  production = await startTestServer(handle, { security: productionSecurity() });
  development = await startTestServer(handle, { security: securityConfigFromEnv({}) });
  key = (await makeKey(handle.db, ['admin'])).key;
});
afterAll(async () => {
  await production?.close();
  await development?.close();
  await handle?.close();
});

describe('configuration', () => {
  it('production and DATABASE_URL turn everything on; the embedded default is for exploring', () => {
    const prod = securityConfigFromEnv({ NODE_ENV: 'production' });
    expect(prod).toMatchObject({
      authRequired: true,
      graphiql: false,
      introspection: false,
      fieldSuggestions: false,
    });
    expect(securityConfigFromEnv({ DATABASE_URL: 'postgres://db/x' }).authRequired).toBe(true);
    expect(securityConfigFromEnv({})).toMatchObject({
      authRequired: false,
      graphiql: true,
      introspection: true,
    });
    expect(
      securityConfigFromEnv({ NODE_ENV: 'production', INTROSPECTION_ENABLED: 'true' }).introspection,
    ).toBe(true);
    expect(prod.maxBodyBytes).toBe(1024 * 1024);
    expect(() => securityConfigFromEnv({ RATE_LIMIT_PER_SECOND: '-1' })).toThrow(/non-negative integer/);
    expect(() => securityConfigFromEnv({ GRAPHIQL_ENABLED: 'maybe' })).toThrow(/true or false/);
  });
});

describe('schema discovery is closed in production', () => {
  it('introspection (__schema, __type) is refused; __typename still works', async () => {
    for (const query of [
      '{ __schema { types { name } } }',
      '{ __type(name: "Experiment") { fields { name } } }',
    ]) {
      const refused = await postGraphQL(production.url, query, {}, { key });
      expect(refused.status).toBe(400);
      expect(refused.body.data).toBeUndefined();
      expect(refused.body.errors[0].message).toMatch(/introspection has been disabled/);
      expect(refused.text).not.toMatch(/"data"|"name":"Experiment"|"kind"/);
    }
    const typename = await postGraphQL(production.url, '{ __typename }', {}, { key });
    expect(typename.body).toEqual({ data: { __typename: 'Query' } });
    // The same query in development answers.
    const open = await postGraphQL(development.url, '{ __type(name: "Experiment") { name } }');
    expect(open.body).toEqual({ data: { __type: { name: 'Experiment' } } });
  });

  it('GraphiQL is not served: a browser gets no IDE', async () => {
    const response = await getUrl(production.url, { accept: 'text/html' });
    expect(response.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    expect(response.text).not.toMatch(/graphiql|<html/i);
    const dev = await getUrl(development.url, { accept: 'text/html' });
    expect(dev.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('errors suggest no field, argument or enum value ("Did you mean" never appears)', async () => {
    const probes = [
      '{ experimentz { totalCount } }',
      '{ experiments(frist: 1) { totalCount } }',
      '{ experiments(status: RUNING) { totalCount } }',
      '{ experiments { edges { node { variantz { id } } } } }',
      'mutation { createExperiment(input: { kye: "x", name: "y" }) { __typename } }',
    ];
    // The same mistakes in variables are caught while coercing them, after validation.
    const withVariables: [string, Record<string, unknown>][] = [
      ['query($s: ExperimentStatus) { experiments(status: $s) { totalCount } }', { s: 'RUNING' }],
      [
        'mutation($i: CreateExperimentInput!) { createExperiment(input: $i) { __typename } }',
        { i: { kye: 'x', name: 'y' } },
      ],
      [
        'mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { __typename } }',
        { i: { name: 'n', scopes: ['REED'] } },
      ],
    ];
    for (const [query, variables] of [...probes.map((q) => [q, {}] as const), ...withVariables]) {
      const refused = await postGraphQL(production.url, query, variables, { key });
      expect(refused.status).toBe(400);
      expect(refused.text).not.toMatch(/Did you mean/i);
      expect(refused.text).not.toMatch(/"experiments"|"status"|"variants"|"key"/);
      // Development helps instead.
      const helped = await postGraphQL(development.url, query, variables);
      expect(helped.text).toMatch(/Did you mean/);
    }
  });
});

describe('unexpected errors', () => {
  it('are masked, carry the request id of their log line, and the response has an x-request-id header', async () => {
    const logs = captureLogs();
    // A configuration source that fails like a bug deep inside would: internal words in its message.
    const failing = failingConfigCache(async () => {
      throw new Error('relation "experiments" does not exist: SELECT * FROM experiments WHERE key = $1');
    });
    const server = await startTestServer(handle, {
      security: productionSecurity(),
      logs,
      configCache: failing,
    });
    try {
      const running = await createRunningExperiment(handle.db);
      const response = await postGraphQL(
        server.url,
        `mutation Assign { assignVariant(experimentKey: "${running.key}", userId: "u1") { __typename } }`,
        {},
        { key },
      );
      const requestId = response.headers.get('x-request-id');
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(response.body.errors).toEqual([
        {
          message: 'Unexpected error.',
          locations: [{ line: 1, column: 19 }],
          path: ['assignVariant'],
          extensions: { code: 'INTERNAL_SERVER_ERROR', requestId },
        },
      ]);
      expect(response.text).not.toMatch(/relation|SELECT|experiments WHERE|stack|\.ts:/);

      const logged = logs.lines().find((line) => line.msg === 'unexpected error');
      expect(logged).toMatchObject({ level: 50, requestId, fault: 'INTERNAL_SERVER_ERROR' });
      expect(logged!.err.message).toContain('relation "experiments" does not exist');
      expect(logged!.err.stack).toEqual(expect.any(String)); // the detail is in the log, for operators

      // A client's own request id (safe characters only) is kept, so its logs and ours line up.
      const own = `client-${randomUUID()}`;
      const traced = await postGraphQL(
        server.url,
        `mutation { assignVariant(experimentKey: "${running.key}", userId: "u2") { __typename } }`,
        {},
        { key, headers: { 'x-request-id': own } },
      );
      expect(traced.headers.get('x-request-id')).toBe(own);
      expect(traced.body.errors[0].extensions.requestId).toBe(own);
      const unsafe = await postGraphQL(
        server.url,
        '{ __typename }',
        {},
        { key, headers: { 'x-request-id': 'a b"<script>' } },
      );
      expect(unsafe.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await server.close();
    }
  });
});

describe('logs', () => {
  it('one JSON line per operation with request id, operation name, duration and actor, and never the key', async () => {
    const logs = captureLogs();
    const server = await startTestServer(handle, { security: productionSecurity(), logs });
    try {
      const { key: secret, name } = await makeKey(handle.db, ['read']);
      const requestId = `log-${randomUUID()}`;
      const ok = await postGraphQL(
        server.url,
        'query DashboardList { experiments(first: 2) { totalCount } }',
        {},
        {
          key: secret,
          headers: { 'x-request-id': requestId },
        },
      );
      expect(ok.status).toBe(200);
      // Failures too: a refused write, a bad key (with a secret-looking value), an invalid document.
      await postGraphQL(
        server.url,
        'mutation Nope { deleteExperiment(id: "x") { __typename } }',
        {},
        { key: secret },
      );
      await postGraphQL(
        server.url,
        '{ __typename }',
        {},
        { key: 'sona_this-looks-secret-and-must-not-be-logged' },
      );
      await postGraphQL(server.url, '{ nope }', {}, { key: secret });

      const lines = logs.lines(); // every line parses as JSON
      const line = lines.find((l) => l.requestId === requestId);
      expect(line).toMatchObject({
        level: 30,
        service: 'sona-experiments',
        msg: 'graphql operation',
        operationName: 'DashboardList',
        actor: name,
        errors: 0,
      });
      expect(line!.durationMs).toEqual(expect.any(Number));
      expect(line!.durationMs).toBeGreaterThanOrEqual(0);
      expect(line!.time).toEqual(expect.any(Number));
      const forbidden = lines.find((l) => l.operationName === 'Nope');
      expect(forbidden).toMatchObject({ errors: 1, actor: name });

      const text = logs.text();
      for (const secretText of [secret, secret.slice(5), sha256(secret), 'this-looks-secret', 'Bearer']) {
        expect(text).not.toContain(secretText);
      }
    } finally {
      await server.close();
    }
  });

  it('a failed query is logged with its SQL and the driver’s error, never its parameters', async () => {
    const logs = captureLogs();
    const hash = sha256(`sona_${randomUUID()}`);
    const failing = failingConfigCache(async () => {
      const driverError = Object.assign(new Error('terminating connection due to administrator command'), {
        code: '57P01',
        severity: 'FATAL',
      });
      throw new DrizzleQueryError('select "id" from "api_keys" where "key_hash" = $1', [hash], driverError);
    });
    const server = await startTestServer(handle, {
      security: productionSecurity(),
      logs,
      configCache: failing,
    });
    try {
      const running = await createRunningExperiment(handle.db);
      const response = await postGraphQL(
        server.url,
        `mutation { assignVariant(experimentKey: "${running.key}", userId: "u1") { __typename } }`,
        {},
        { key },
      );
      expect(response.status).toBe(503);
      expect(response.body.errors[0].extensions.code).toBe('SERVICE_UNAVAILABLE');
      const line = logs.lines().find((l) => l.msg === 'unexpected error');
      expect(line).toMatchObject({
        fault: 'SERVICE_UNAVAILABLE',
        query: 'select "id" from "api_keys" where "key_hash" = $1',
        err: { message: 'terminating connection due to administrator command', code: '57P01' },
      });
      expect(line!.at.length).toBeGreaterThan(0);
      expect(logs.text()).not.toContain(hash);
      expect(response.text).not.toContain(hash);
    } finally {
      await server.close();
    }
  });

  it('redacts key-like fields should a caller ever log them', () => {
    const logs = captureLogs();
    logs.logger.info(
      { req: { headers: { authorization: 'Bearer sona_x' } }, ctx: { apiKey: 'sona_y', key_hash: 'abc' } },
      'careless',
    );
    const [line] = logs.lines();
    expect(line.req.headers.authorization).toBe('[redacted]');
    expect(line.ctx).toEqual({ apiKey: '[redacted]', key_hash: '[redacted]' });
  });
});
