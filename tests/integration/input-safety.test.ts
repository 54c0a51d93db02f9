/**
 * Inputs that used to reach PostgreSQL (or a stack) and fail more than themselves, through the real HTTP
 * server: NUL and lone surrogates beside valid requests (assignment batching) and valid events (a batch),
 * conversion values whose squares underflow, JSON nested 100,000 deep, sample-size plans beyond the
 * API's integers, and event timestamps outside the documented window. Each is a typed rejection of
 * exactly the bad input; everything valid beside it succeeds.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { LIMITS } from '../../src/config';
import { type DatabaseHandle, queryRows } from '../../src/db/client';
import { getVariants } from '../../src/experiments/repository';
import { openTestDatabase } from '../support/db';
import { createRunningExperiment } from '../support/factories';
import { rowCounts } from '../support/rows';
import {
  makeKey,
  postGraphQL,
  productionSecurity,
  rawPost,
  startTestServer,
  type TestServer,
} from '../support/server';

let handle: DatabaseHandle;
let server: TestServer;
let key: string;

beforeAll(async () => {
  handle = await openTestDatabase();
  server = await startTestServer(handle, { security: productionSecurity() });
  key = (await makeKey(handle.db, ['admin'])).key;
});
afterAll(async () => {
  await server?.close();
  await handle?.close();
});

const post = (query: string, variables?: Record<string, unknown>) =>
  postGraphQL(server.url, query, variables, { key });
const assign = (body: unknown) => rawPost(`${server.base}/v1/assignments`, JSON.stringify(body), { key });

async function storedUsers(experimentId: string): Promise<string[]> {
  const rows = await queryRows<{ userId: string }>(
    handle.db,
    sql`SELECT user_id AS "userId" FROM experiment_assignments WHERE experiment_id = ${experimentId} ORDER BY user_id`,
  );
  return rows.map((r) => r.userId);
}

const BAD_STRINGS = ['a\u0000b', '\ud800', 'x\udfff'];

describe('one caller’s bad string never fails another’s assignment', () => {
  it('40 valid and 1 bad concurrent SDK requests: the 40 succeed, the bad one is a 400 naming userId', async () => {
    const experiment = await createRunningExperiment(handle.db);
    for (const bad of BAD_STRINGS) {
      const users = Array.from({ length: 40 }, (_, i) => `ok-${i}-${randomUUID().slice(0, 6)}`);
      const responses = await Promise.all([
        ...users.slice(0, 20).map((userId) => assign({ experimentKey: experiment.key, userId })),
        assign({ experimentKey: experiment.key, userId: bad }),
        ...users.slice(20).map((userId) => assign({ experimentKey: experiment.key, userId })),
      ]);
      const badResponse = responses[20];
      expect(badResponse.status).toBe(400);
      expect(badResponse.body.error).toMatchObject({
        code: 'VALIDATION_FAILED',
        fields: [{ path: ['userId'], message: expect.stringMatching(/NUL|surrogate/) }],
      });
      const good = responses.filter((_, i) => i !== 20);
      expect(good.map((r) => [r.status, r.body.reason])).toEqual(Array(40).fill([200, 'ASSIGNED']));
      expect(await storedUsers(experiment.id)).toEqual(expect.arrayContaining(users));
    }
    expect(await storedUsers(experiment.id)).toHaveLength(40 * BAD_STRINGS.length);
  });

  it('the same through GraphQL: every valid assignVariant succeeds beside a bad one', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const ASSIGN = `mutation($k: String!, $u: String!) {
      assignVariant(experimentKey: $k, userId: $u) {
        __typename ... on Assignment { reason } ... on ValidationError { fieldErrors { path } }
      }
    }`;
    const users = Array.from({ length: 20 }, (_, i) => `gql-${i}`);
    const responses = await Promise.all([
      post(ASSIGN, { k: experiment.key, u: 'bad\u0000user' }),
      ...users.map((u) => post(ASSIGN, { k: experiment.key, u })),
    ]);
    expect(responses[0].body.data.assignVariant).toEqual({
      __typename: 'ValidationError',
      fieldErrors: [{ path: ['userId'] }],
    });
    expect(responses.slice(1).map((r) => r.body.data?.assignVariant?.reason)).toEqual(
      Array(20).fill('ASSIGNED'),
    );
  });

  it('experimentKeys [valid, bad] is refused whole before anything is assigned', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const response = await assign({ experimentKeys: [experiment.key, 'a\u0000b'], userId: 'keys-1' });
    expect(response.status).toBe(400);
    expect(response.body.error.fields.map((f: { path: string[] }) => f.path)).toEqual([
      ['experimentKeys', '1'],
    ]);
    expect(await storedUsers(experiment.id)).toEqual([]);
  });
});

const RECORD = `mutation($events: [EventInput!]!) {
  recordEvents(events: $events) { accepted duplicates rejected { index code fieldErrors { path message } } }
}`;

describe('recordEvents: bad events are rejected by index, the rest are written', () => {
  it('NUL and lone surrogates in userId, metricName and metadata (values and keys, at any depth)', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [variant] = await getVariants(handle.db, experiment.id);
    const event = (overrides: Record<string, unknown>) => ({
      kind: 'CONVERSION',
      experimentKey: experiment.key,
      metricName: 'conversion',
      userId: `u-${randomUUID().slice(0, 8)}`,
      variantId: variant.id,
      eventId: randomUUID(),
      ...overrides,
    });
    const events = [
      event({}),
      event({ userId: 'nul\u0000user' }),
      event({ metadata: { page: { section: ['ok', 'bad\u0000'] } } }),
      event({ metadata: { 'key\ud800': 1 } }),
      event({ metricName: 'conv\udfffersion' }),
      event({ experimentKey: `${experiment.key}\u0000` }),
      event({}),
    ];
    const response = await post(RECORD, { events });
    expect(response.status).toBe(200);
    const result = response.body.data.recordEvents;
    expect(result.accepted).toBe(2);
    expect(result.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [1, 'VALIDATION_FAILED'],
      [2, 'VALIDATION_FAILED'],
      [3, 'VALIDATION_FAILED'],
      [4, 'VALIDATION_FAILED'],
      [5, 'VALIDATION_FAILED'],
    ]);
    const paths = result.rejected.map((r: { fieldErrors: { path: string[] }[] }) =>
      r.fieldErrors[0].path.join('.'),
    );
    expect(paths).toEqual([
      'events.1.userId',
      'events.2.metadata.page.section.1',
      'events.3.metadata',
      'events.4.metricName',
      'events.5.experimentKey',
    ]);
    expect((await rowCounts(handle.db, experiment.id)).conversions).toBe(2);
  });

  it('values whose squares underflow (1e-200, 5e-324) are rejected by index; 1e-100 and 0 are written', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [variant] = await getVariants(handle.db, experiment.id);
    const values = [1.5, 1e-200, 5e-324, -1e-200, LIMITS.minEventValue, 0, -2.5];
    const events = values.map((value) => ({
      kind: 'CONVERSION',
      experimentKey: experiment.key,
      metricName: 'revenue',
      userId: `value-${randomUUID().slice(0, 8)}`,
      variantId: variant.id,
      eventId: randomUUID(),
      value,
    }));
    const response = await post(RECORD, { events });
    const result = response.body.data.recordEvents;
    expect(result.rejected.map((r: { index: number }) => r.index)).toEqual([1, 2, 3]);
    expect(result.rejected[0].fieldErrors).toEqual([
      { path: ['events', '1', 'value'], message: 'value must be 0 or at least 1e-100 in absolute value' },
    ]);
    expect(result.accepted).toBe(4);
    expect((await rowCounts(handle.db, experiment.id)).conversions).toBe(4);
  });
});

/** A string inside `levels` nested arrays, as JSON text. */
const nested = (levels: number) => `${'['.repeat(levels)}"deep"${']'.repeat(levels)}`;

describe('JSON nesting', () => {
  it('metadata nested 100,000 deep (a body under 1 MB) is a typed ValidationError, not a stack overflow', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [variant] = await getVariants(handle.db, experiment.id);
    const query = `mutation($input: RecordExposureInput!) {
      recordExposure(input: $input) { __typename ... on ValidationError { fieldErrors { path message } } }
    }`;
    const input = `{"experimentKey":${JSON.stringify(experiment.key)},"userId":"deep-1","variantId":"${variant.id}","metadata":{"tree":${nested(100_000)}}}`;
    const body = `{"query":${JSON.stringify(query)},"variables":{"input":${input}}}`;
    expect(body.length).toBeLessThan(1024 * 1024);
    const response = await rawPost(server.url, body, { key });
    expect(response.status).toBe(200);
    expect(response.body.data.recordExposure.__typename).toBe('ValidationError');
    const [error] = response.body.data.recordExposure.fieldErrors;
    expect(error.path.slice(0, 3)).toEqual(['input', 'metadata', 'tree']);
    expect(error.message).toMatch(`more than ${LIMITS.jsonMaxDepth} levels deep`);
    expect(await rowCounts(handle.db, experiment.id)).toMatchObject({ assignments: 0, exposures: 0 });
  });

  it('a variant config nested 100,000 deep is refused the same way', async () => {
    const query = `mutation($input: CreateExperimentInput!) {
      createExperiment(input: $input) { __typename ... on ValidationError { fieldErrors { path } } }
    }`;
    const input = `{"key":"deep-config-${randomUUID().slice(0, 8)}","name":"Deep","variants":[{"name":"a","config":{"x":${nested(100_000)}}}]}`;
    const response = await rawPost(
      server.url,
      `{"query":${JSON.stringify(query)},"variables":{"input":${input}}}`,
      {
        key,
      },
    );
    expect(response.status).toBe(200);
    expect(response.body.data.createExperiment.__typename).toBe('ValidationError');
    expect(response.body.data.createExperiment.fieldErrors[0].path.slice(0, 5)).toEqual([
      'input',
      'variants',
      '0',
      'config',
      'x',
    ]);
  });

  it(`metadata ${LIMITS.jsonMaxDepth} levels deep is accepted, one more (or 1,000) is not`, async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [variant] = await getVariants(handle.db, experiment.id);
    const record = (userId: string, metadata: unknown) =>
      post(`mutation($input: RecordExposureInput!) { recordExposure(input: $input) { __typename } }`, {
        input: { experimentKey: experiment.key, userId, variantId: variant.id, metadata },
      });
    // The metadata object itself is level 1.
    const object = (levels: number) => ({ tree: JSON.parse(nested(levels - 1)) });
    expect((await record('depth-ok', object(LIMITS.jsonMaxDepth))).body.data.recordExposure.__typename).toBe(
      'RecordEventSuccess',
    );
    for (const depth of [LIMITS.jsonMaxDepth + 1, 1000]) {
      const response = await record(`depth-${depth}`, object(depth));
      expect(response.body.data.recordExposure.__typename).toBe('ValidationError');
    }
    expect((await rowCounts(handle.db, experiment.id)).exposures).toBe(1);
  });
});

describe('sampleSize plans beyond the API’s integers', () => {
  it.each([
    ['a tiny effect', 'baselineRate: 0.5, minimumDetectableEffect: 0.000001'],
    ['a billion variants', 'baselineRate: 0.1, minimumDetectableEffect: 0.05, variants: 1000000000'],
  ])('%s: null units with reason TOO_MANY_UNITS, not an error', async (_what, args) => {
    const response = await post(`{ sampleSize(${args}) { unitsPerVariant totalUnits reason } }`);
    expect(response.body).toEqual({
      data: { sampleSize: { unitsPerVariant: null, totalUnits: null, reason: 'TOO_MANY_UNITS' } },
    });
  });

  it('a plan that fits is answered as before', async () => {
    const response = await post(
      '{ sampleSize(baselineRate: 0.1, minimumDetectableEffect: 0.05) { totalUnits reason } }',
    );
    expect(response.body.data.sampleSize.reason).toBeNull();
    expect(response.body.data.sampleSize.totalUnits).toBeGreaterThan(0);
  });
});

describe('occurredAt window', () => {
  const EXPOSE = `mutation($input: RecordExposureInput!) {
    recordExposure(input: $input) { __typename ... on ValidationError { fieldErrors { path message } } }
  }`;

  it('year 0001 (long before the experiment existed) is rejected; within the tolerance it is accepted', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [variant] = await getVariants(handle.db, experiment.id);
    const expose = (userId: string, occurredAt: string) =>
      post(EXPOSE, { input: { experimentKey: experiment.key, userId, variantId: variant.id, occurredAt } });

    const ancient = await expose('ancient', '0001-01-01T00:00:00.000Z');
    expect(ancient.body.data.recordExposure).toEqual({
      __typename: 'ValidationError',
      fieldErrors: [
        {
          path: ['input', 'occurredAt'],
          message: expect.stringMatching(/must not be more than 24 hours before experiment .* was created/),
        },
      ],
    });
    const justBefore = new Date(experiment.createdAt.getTime() - LIMITS.occurredAtMaxBeforeCreationMs / 2);
    expect((await expose('skewed', justBefore.toISOString())).body.data.recordExposure.__typename).toBe(
      'RecordEventSuccess',
    );
    const tooEarly = new Date(experiment.createdAt.getTime() - LIMITS.occurredAtMaxBeforeCreationMs - 60_000);
    expect((await expose('too-early', tooEarly.toISOString())).body.data.recordExposure.__typename).toBe(
      'ValidationError',
    );
    expect((await rowCounts(handle.db, experiment.id)).exposures).toBe(1);
  });
});
