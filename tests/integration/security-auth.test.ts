/**
 * Access control over the real HTTP server with production settings: API keys (created by the service
 * and the admin mutations; random, shown once, stored as a hash), authentication (401), scopes enforced
 * per field (FORBIDDEN naming the scope, nothing written), audit actors, and the embedded default
 * without keys. The CLI (`npm run apikey`) and the started service's warning are in tests/system.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { Authenticator } from '../../src/auth/authenticator';
import { createApiKey, revokeApiKey } from '../../src/auth/service';
import { type DatabaseHandle, openDatabase, queryRows } from '../../src/db/client';
import { openTestDatabase, testDriver } from '../support/db';
import { runDatabaseUrl } from '../support/environment';
import {
  createRunningExperiment,
  createTestExperiment,
  experimentService,
  uniqueKey,
} from '../support/factories';
import {
  eventually,
  makeKey,
  postGraphQL,
  productionSecurity,
  sha256,
  startTestServer,
  type TestServer,
} from '../support/server';

let handle: DatabaseHandle;
let server: TestServer;

beforeAll(async () => {
  handle = await openTestDatabase();
  server = await startTestServer(handle, { security: productionSecurity() });
});
afterAll(async () => {
  await server?.close();
  await handle?.close();
});

const CREATE = `mutation Create($input: CreateExperimentInput!) {
  createExperiment(input: $input) { __typename ... on Experiment { id key } ... on Error { code message } }
}`;
const LIST = `query List { experiments(first: 1) { totalCount } }`;
const ASSIGN = `mutation Assign($key: String!, $userId: String!) {
  assignVariant(experimentKey: $key, userId: $userId) { __typename ... on Assignment { enrolled reason variant { id } } }
}`;
const EXPOSE = `mutation Expose($input: RecordExposureInput!) {
  recordExposure(input: $input) { __typename ... on RecordEventSuccess { eventId duplicate } ... on Error { code } }
}`;
const CONVERT = `mutation Convert($input: RecordConversionInput!) {
  recordConversion(input: $input) { __typename ... on RecordEventSuccess { eventId } ... on Error { code } }
}`;
const RECORD = `mutation Record($events: [EventInput!]!) {
  recordEvents(events: $events) { accepted duplicates rejected { index code } }
}`;
const CREATE_KEY = `mutation CreateKey($input: CreateApiKeyInput!) {
  createApiKey(input: $input) {
    __typename
    ... on CreateApiKeySuccess { key apiKey { id name prefix scopes } }
    ... on Error { code message }
  }
}`;
const REVOKE_KEY = `mutation RevokeKey($id: ID!) {
  revokeApiKey(id: $id) { __typename ... on ApiKey { id revokedAt } ... on Error { code message } }
}`;

const experimentInput = (key = uniqueKey('auth')) => ({
  key,
  name: 'Made through the API',
  variants: [{ name: 'control', isControl: true }, { name: 'treatment' }],
});

async function experimentsWithKey(key: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(
    handle.db,
    sql`SELECT count(*)::int AS n FROM experiments WHERE key = ${key}`,
  );
  return row.n;
}

async function auditByActor(actor: string): Promise<{ action: string; actor: string }[]> {
  return queryRows(
    handle.db,
    sql`SELECT action, actor FROM audit_log WHERE actor = ${actor} ORDER BY created_at, id`,
  );
}

/** A request's GraphQL status for a key: 200, or the 401 once the key is refused. */
async function statusWith(key: string): Promise<number> {
  return (await postGraphQL(server.url, LIST, {}, { key })).status;
}

function expectForbidden(response: Awaited<ReturnType<typeof postGraphQL>>, field: string, scope: string) {
  expect(response.status).toBe(403);
  expect(response.body.data).toBeNull();
  expect(response.body.errors).toHaveLength(1);
  const [error] = response.body.errors;
  expect(error.extensions.code).toBe('FORBIDDEN');
  expect(error.extensions.requiredScopes).toEqual([scope]);
  expect(error.message).toContain(field);
  expect(error.message).toContain(`\`${scope}\``);
}

describe('API keys', () => {
  it('are random (256 bits), differ every time, and only their SHA-256 is stored', async () => {
    const a = await createApiKey(handle.db, 'test', { name: uniqueKey('random-a'), scopes: ['read'] });
    const b = await createApiKey(handle.db, 'test', { name: uniqueKey('random-b'), scopes: ['read'] });
    for (const { key } of [a, b]) {
      expect(key).toMatch(/^sona_[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
      expect(Buffer.from(key.slice(5), 'base64url')).toHaveLength(32);
    }
    expect(a.key).not.toBe(b.key);
    expect(a.apiKey).not.toHaveProperty('keyHash');
    expect(JSON.stringify(a.apiKey)).not.toContain(a.key);

    const [row] = await queryRows<Record<string, unknown>>(
      handle.db,
      sql`SELECT row_to_json(k)::text AS json, k.key_hash FROM api_keys k WHERE id = ${a.apiKey.id}`,
    );
    expect(row.key_hash).toBe(sha256(a.key));
    expect(row.json).not.toContain(a.key);
    expect(row.json).not.toContain(a.key.slice(5));
    expect(row.json).toContain(a.key.slice(0, 11)); // the prefix, to recognise it in listings
  });

  it('work in the Authorization header, and last use is recorded', async () => {
    const { key, id } = await makeKey(handle.db, ['read']);
    const response = await postGraphQL(server.url, LIST, {}, { key });
    expect(response.status).toBe(200);
    expect(response.body.data.experiments.totalCount).toBeGreaterThanOrEqual(3);
    const touched = await eventually(async () => {
      const [row] = await queryRows<{ last_used_at: unknown }>(
        handle.db,
        sql`SELECT last_used_at FROM api_keys WHERE id = ${id}`,
      );
      return row.last_used_at !== null;
    });
    expect(touched).toBe(true);
  });
});

describe('authentication (required)', () => {
  it('no Authorization header → HTTP 401 with an UNAUTHENTICATED GraphQL error', async () => {
    const response = await postGraphQL(server.url, LIST);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    expect(response.body).toEqual({
      errors: [
        { message: expect.stringContaining('Missing API key'), extensions: { code: 'UNAUTHENTICATED' } },
      ],
    });
  });

  it('an unknown key, a malformed header and a key-shaped guess → 401', async () => {
    const attempts = [
      { authorization: 'Bearer sona_not-a-real-key' },
      { authorization: `Bearer sona_${'A'.repeat(43)}` },
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: 'Bearer' },
      { authorization: 'Bearer a b' },
    ];
    for (const headers of attempts) {
      const response = await postGraphQL(server.url, LIST, {}, { headers });
      expect(response.status).toBe(401);
      expect(response.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
      expect(response.body.data).toBeUndefined();
    }
  });

  it('refuses before parsing: an invalid document from an anonymous client says nothing about the schema', async () => {
    const response = await postGraphQL(server.url, '{ experimentz { nope } }');
    expect(response.status).toBe(401);
    expect(response.text).not.toMatch(/experimentz|Cannot query field|Query/);
  });

  it('a revoked key → 401 at once, even after it was cached', async () => {
    const { key, id } = await makeKey(handle.db, ['read']);
    expect(await statusWith(key)).toBe(200); // verified and cached
    await revokeApiKey(handle.db, 'test', { id });
    // The revocation NOTIFY clears the cache (asynchronously on PostgreSQL); the cache TTL is 30 s.
    expect(await eventually(async () => (await statusWith(key)) === 401, 5000)).toBe(true);
    const response = await postGraphQL(server.url, LIST, {}, { key });
    expect(response.body.errors[0]).toEqual({
      message: 'Invalid or revoked API key',
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });

  if (testDriver() === 'postgres') {
    it('a revocation reaches another instance (its own pool and LISTEN connection) through NOTIFY', async () => {
      const other = await openDatabase({
        driver: 'postgres',
        url: runDatabaseUrl(),
        poolSize: 2,
        statementTimeoutMs: 30_000,
        connectTimeoutSeconds: 10,
      });
      const authenticator = new Authenticator(other.db, true);
      await authenticator.start(other);
      try {
        const { key, id, name } = await makeKey(handle.db, ['read']);
        expect((await authenticator.authenticate(`Bearer ${key}`)).name).toBe(name); // cached there now
        await revokeApiKey(handle.db, 'test', { id });
        const refused = await eventually(
          () =>
            authenticator.authenticate(`Bearer ${key}`).then(
              () => false,
              (err: Error) => err.message === 'Invalid or revoked API key',
            ),
          5000,
        );
        expect(refused).toBe(true);
      } finally {
        await authenticator.stop();
        await other.close();
      }
    });
  }
});

describe('scopes', () => {
  it('read: queries, but no mutation (FORBIDDEN naming the scope, nothing written)', async () => {
    const { key, name } = await makeKey(handle.db, ['read']);
    const running = await createRunningExperiment(handle.db);
    expect((await postGraphQL(server.url, LIST, {}, { key })).status).toBe(200);

    const input = experimentInput();
    expectForbidden(
      await postGraphQL(server.url, CREATE, { input }, { key }),
      'Mutation.createExperiment',
      'write',
    );
    expect(await experimentsWithKey(input.key)).toBe(0);
    expectForbidden(
      await postGraphQL(server.url, ASSIGN, { key: running.key, userId: 'reader-1' }, { key }),
      'Mutation.assignVariant',
      'assign',
    );
    const [assigned] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM experiment_assignments WHERE experiment_id = ${running.id}`,
    );
    expect(assigned.n).toBe(0);
    expectForbidden(
      await postGraphQL(server.url, 'query { apiKeys { id } }', {}, { key }),
      'Query.apiKeys',
      'admin',
    );
    expect(await auditByActor(name)).toEqual([]);
  });

  it('assign: assignVariant and record*, but not createExperiment and not queries', async () => {
    const { key, name } = await makeKey(handle.db, ['assign']);
    const running = await createRunningExperiment(handle.db);
    const userId = uniqueKey('user');

    const assigned = await postGraphQL(server.url, ASSIGN, { key: running.key, userId }, { key });
    expect(assigned.status).toBe(200);
    expect(assigned.body.data.assignVariant).toMatchObject({ __typename: 'Assignment', enrolled: true });
    const exposed = await postGraphQL(
      server.url,
      EXPOSE,
      { input: { experimentKey: running.key, userId } },
      { key },
    );
    expect(exposed.body.data.recordExposure.__typename).toBe('RecordEventSuccess');
    const converted = await postGraphQL(
      server.url,
      CONVERT,
      { input: { experimentKey: running.key, userId, metricName: 'conversion' } },
      { key },
    );
    expect(converted.body.data.recordConversion.__typename).toBe('RecordEventSuccess');
    const batch = await postGraphQL(
      server.url,
      RECORD,
      { events: [{ kind: 'EXPOSURE', experimentKey: running.key, userId, eventId: crypto.randomUUID() }] },
      { key },
    );
    expect(batch.body.data.recordEvents).toEqual({ accepted: 1, duplicates: 0, rejected: [] });

    const input = experimentInput();
    expectForbidden(
      await postGraphQL(server.url, CREATE, { input }, { key }),
      'Mutation.createExperiment',
      'write',
    );
    expect(await experimentsWithKey(input.key)).toBe(0);
    expectForbidden(await postGraphQL(server.url, LIST, {}, { key }), 'Query.experiments', 'read');
    expect(await auditByActor(name)).toEqual([]);
  });

  it('write: manages experiments and can read (write implies read), but cannot assign or manage keys', async () => {
    const { key } = await makeKey(handle.db, ['write']);
    const input = experimentInput();
    const created = await postGraphQL(server.url, CREATE, { input }, { key });
    expect(created.status).toBe(200);
    expect(created.body.data.createExperiment).toMatchObject({ __typename: 'Experiment', key: input.key });
    const read = await postGraphQL(
      server.url,
      `query { experiment(key: "${input.key}") { key status } }`,
      {},
      { key },
    );
    expect(read.body).toEqual({ data: { experiment: { key: input.key, status: 'DRAFT' } } });

    expectForbidden(
      await postGraphQL(server.url, ASSIGN, { key: input.key, userId: 'writer-1' }, { key }),
      'Mutation.assignVariant',
      'assign',
    );
    const keyName = uniqueKey('escalation');
    expectForbidden(
      await postGraphQL(server.url, CREATE_KEY, { input: { name: keyName, scopes: ['ADMIN'] } }, { key }),
      'Mutation.createApiKey',
      'admin',
    );
    const [keys] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM api_keys WHERE name = ${keyName}`,
    );
    expect(keys.n).toBe(0);
  });

  it('one forbidden field in an otherwise allowed query is refused with FORBIDDEN', async () => {
    const { key } = await makeKey(handle.db, ['read']);
    const response = await postGraphQL(
      server.url,
      `query Mixed { experiments(first: 1) { totalCount } apiKeys { id } }`,
      {},
      { key },
    );
    expect(response.status).toBe(403);
    expect(response.body.data).toBeNull(); // apiKeys is non-null, so the error propagates to the root
    expect(response.body.errors.map((e: any) => e.extensions.code)).toEqual(['FORBIDDEN']);
  });

  it('assign cannot read an experiment through its assignment: FORBIDDEN, no data, nothing assigned', async () => {
    const { key } = await makeKey(handle.db, ['assign']);
    const secret = uniqueKey('draft-secret');
    const draft = await createTestExperiment(handle.db, {
      description: `hypothesis ${secret}`,
      variants: [
        { name: 'control', isControl: true, config: { strategy: `config-${secret}` } },
        { name: 'treatment', config: { strategy: 'other' } },
      ],
    });
    await experimentService(handle.db, `actor-${secret}`).update(draft.id, { name: 'Renamed' });
    const leak = (root: string) => `${root} {
      experiment {
        description
        variants { config }
        auditLog { actor action details }
        results(metric: "conversion") { variants { units mean } }
      }
    }`;
    const viaMutation = await postGraphQL(
      server.url,
      `mutation { assignVariant(experimentKey: "${draft.key}", userId: "probe") { ... on Assignment ${leak('')} } }`,
      {},
      { key },
    );
    const running = await createRunningExperiment(handle.db, { description: `running ${secret}` });
    expect(
      (await postGraphQL(server.url, ASSIGN, { key: running.key, userId: 'probe' }, { key })).status,
    ).toBe(200);
    const viaQuery = await postGraphQL(
      server.url,
      `query { ${leak(`assignment(experimentKey: "${running.key}", userId: "probe")`)} }`,
      {},
      { key },
    );
    for (const response of [viaMutation, viaQuery]) {
      expectForbidden(response, 'Experiment', 'read');
      expect(response.text).not.toContain(secret);
    }
    // The refused mutation did not run: the probe was never enrolled (the draft would say NOT_RUNNING).
    const [stored] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM experiment_assignments WHERE experiment_id = ${draft.id}`,
    );
    expect(stored.n).toBe(0);
    // What a client needs to apply its assignment stays open to it.
    const applied = await postGraphQL(
      server.url,
      `query { assignment(experimentKey: "${running.key}", userId: "probe") { enrolled variant { id name isControl config } } }`,
      {},
      { key },
    );
    expect(applied.status).toBe(200);
    expect(applied.body.data.assignment).toMatchObject({
      enrolled: true,
      variant: { config: expect.any(Object) },
    });
    expectForbidden(
      await postGraphQL(
        server.url,
        `query { assignment(experimentKey: "${running.key}", userId: "probe") { variant { weight } } }`,
        {},
        { key },
      ),
      'Variant',
      'read',
    );
  });

  it('an operation with one forbidden field runs none of it: no experiment, no audit row, no key', async () => {
    const { key, name } = await makeKey(handle.db, ['write']);
    const experimentKey = uniqueKey('partial-403');
    const keyName = uniqueKey('esc');
    const response = await postGraphQL(
      server.url,
      `mutation {
        a: createExperiment(input: { key: "${experimentKey}", name: "x", variants: [{ name: "control", isControl: true }, { name: "b" }] }) { __typename }
        b: createApiKey(input: { name: "${keyName}", scopes: [ADMIN] }) { __typename }
      }`,
      {},
      { key },
    );
    expectForbidden(response, 'Mutation.createApiKey', 'admin');
    expect(await experimentsWithKey(experimentKey)).toBe(0);
    expect(await auditByActor(name)).toEqual([]);
    const [keys] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM api_keys WHERE name = ${keyName}`,
    );
    expect(keys.n).toBe(0);
  });

  it('admin: creates a key through GraphQL (shown once), lists keys without secrets, revokes it', async () => {
    const { key: adminKey, name: adminName } = await makeKey(handle.db, ['admin']);
    const name = uniqueKey('gql-made');
    const created = await postGraphQL(
      server.url,
      CREATE_KEY,
      { input: { name, scopes: ['READ', 'ASSIGN'] } },
      { key: adminKey },
    );
    expect(created.status).toBe(200);
    const result = created.body.data.createApiKey;
    expect(result.__typename).toBe('CreateApiKeySuccess');
    expect(result.key).toMatch(/^sona_[A-Za-z0-9_-]{43}$/);
    expect(result.apiKey).toMatchObject({
      name,
      scopes: ['READ', 'ASSIGN'],
      prefix: result.key.slice(0, 11),
    });
    expect(await statusWith(result.key)).toBe(200);

    const listed = await postGraphQL(
      server.url,
      `query { apiKeys { id name prefix scopes lastUsedAt revokedAt } }`,
      {},
      { key: adminKey },
    );
    expect(listed.body.data.apiKeys.map((k: any) => k.name)).toContain(name);
    expect(listed.text).not.toContain(result.key);
    expect(listed.text).not.toContain(adminKey);
    expect(listed.text).not.toContain(sha256(result.key));

    const duplicate = await postGraphQL(
      server.url,
      CREATE_KEY,
      { input: { name, scopes: ['READ'] } },
      { key: adminKey },
    );
    expect(duplicate.body.data.createApiKey).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });

    const revoked = await postGraphQL(server.url, REVOKE_KEY, { id: result.apiKey.id }, { key: adminKey });
    expect(revoked.body.data.revokeApiKey).toMatchObject({ __typename: 'ApiKey', id: result.apiKey.id });
    expect(revoked.body.data.revokeApiKey.revokedAt).toEqual(expect.any(String));
    expect(await eventually(async () => (await statusWith(result.key)) === 401, 5000)).toBe(true);

    expect((await auditByActor(adminName)).map((a) => a.action)).toEqual([
      'api_key.created',
      'api_key.revoked',
    ]);
  });

  it('audit entries name the key that made the change', async () => {
    const { key, name } = await makeKey(handle.db, ['write'], uniqueKey('ci-writer'));
    const input = experimentInput();
    const created = await postGraphQL(server.url, CREATE, { input }, { key });
    const id = created.body.data.createExperiment.id;
    await postGraphQL(server.url, `mutation { startExperiment(id: "${id}") { __typename } }`, {}, { key });
    const rows = await queryRows<{ actor: string; action: string }>(
      handle.db,
      sql`SELECT actor, action FROM audit_log WHERE entity_id = ${id} ORDER BY created_at, action`,
    );
    expect(rows).toEqual([
      { actor: name, action: 'experiment.created' },
      { actor: name, action: 'experiment.started' },
    ]);
    const trail = await postGraphQL(
      server.url,
      `query { experiment(id: "${id}") { auditLog { actor action } } }`,
      {},
      { key },
    );
    expect(trail.body.data.experiment.auditLog.map((a: any) => a.actor)).toEqual([name, name]);
  });
});

describe('authentication off (the embedded default)', () => {
  it('acts as "anonymous" with every scope', async () => {
    const open = await startTestServer(handle, { security: productionSecurity({ authRequired: false }) });
    try {
      const input = experimentInput();
      const created = await postGraphQL(open.url, CREATE, { input });
      expect(created.body.data.createExperiment.__typename).toBe('Experiment');
      const keys = await postGraphQL(open.url, 'query { apiKeys { id } }');
      expect(keys.status).toBe(200);
      const [entry] = await queryRows<{ actor: string }>(
        handle.db,
        sql`SELECT actor FROM audit_log WHERE entity_id = ${created.body.data.createExperiment.id}`,
      );
      expect(entry.actor).toBe('anonymous');
      // A key that is sent is still checked: a wrong one is refused, not ignored.
      expect((await postGraphQL(open.url, LIST, {}, { key: 'sona_wrong' })).status).toBe(401);
    } finally {
      await open.close();
    }
  });
});
