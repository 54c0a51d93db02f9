/**
 * Hostile and bad input against the real HTTP server with production settings: oversized and
 * over-nested documents, malformed and batched bodies, cross-site-style requests, wrong types, bad
 * numbers and UUIDs, oversized values, unknown enums, and SQL-injection-looking strings in every string
 * argument of the schema. Each gets a clean error (no stack, no SQL, no driver message) and writes
 * nothing: whole-table row counts are compared before and after, on a database no other file writes to.
 */
import { createMetricService } from '../../src/metrics/service';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import {
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLOutputType,
  getNamedType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  isUnionType,
} from 'graphql';
import { experiments as seedExperiments, sid } from '../../seed/data';
import { queryRows } from '../../src/db/client';
import { getVariants } from '../../src/experiments/repository';
import { createLayerService } from '../../src/layers/service';
import { schema } from '../../src/graphql/schema';
import { LIMITS } from '../../src/config';
import { createRunningExperiment, createTestExperiment, uniqueKey } from '../support/factories';
import {
  eventually,
  getUrl,
  type HttpResult,
  type IsolatedDatabase,
  makeKey,
  openIsolatedDatabase,
  postGraphQL,
  productionSecurity,
  rawPost,
  startTestServer,
  type TestServer,
} from '../support/server';
import { subscribe } from '../support/sse';

let db: IsolatedDatabase;
let server: TestServer;
let key: string;

/** Every statement sent on the file's database, in order (its connections only: the server's run on them). */
const statements: string[] = [];

beforeAll(async () => {
  db = await openIsolatedDatabase({
    observer: {
      start(text) {
        statements.push(text);
        return () => {};
      },
    },
  });
  server = await startTestServer(db.handle, { security: productionSecurity() });
  key = (await makeKey(db.handle.db, ['admin'])).key;
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

const TABLES = [
  'experiments',
  'experiment_variants',
  'experiment_assignments',
  'experiment_overrides',
  'layers',
  'experiment_exposures',
  'experiment_conversions',
  'experiment_user_metrics',
  'experiment_variant_stats',
  'audit_log',
  'api_keys',
  'users',
] as const;

async function rowCounts(): Promise<Record<string, number>> {
  const [row] = await queryRows<Record<string, number>>(
    db.handle.db,
    sql.raw(`SELECT ${TABLES.map((t) => `(SELECT count(*) FROM ${t})::int AS ${t}`).join(', ')}`),
  );
  return row;
}

/** Runs a request and asserts that it changed no row anywhere. */
async function writesNothing(send: () => Promise<HttpResult>): Promise<HttpResult> {
  const before = await rowCounts();
  const result = await send();
  expect(await rowCounts()).toEqual(before);
  return result;
}

const LEAKS =
  /\bat \S+ \(|node_modules|\/work\/|\.[jt]s:\d+|stack|originalError|syntax error at|relation "|column "|violates|duplicate key|PostgresError|pglite|postgres|SQLSTATE|invalid input syntax|\bSELECT\b|\bINSERT\b|\bUPDATE \w|\bDELETE FROM|\bWHERE\b/i;

/** A clean failure: a 4xx, GraphQL errors with messages for people, nothing internal. */
function expectClean(result: HttpResult, echoed: string[] = []) {
  expect(result.status).toBeLessThan(500);
  let text = result.text;
  for (const s of echoed) {
    for (const form of [s, JSON.stringify(s).slice(1, -1)]) text = text.split(form).join('');
  }
  expect(text).not.toMatch(LEAKS);
  for (const error of result.body?.errors ?? []) {
    expect(['INTERNAL_SERVER_ERROR', 'SERVICE_UNAVAILABLE', 'TIMEOUT']).not.toContain(error.extensions?.code);
    expect(Object.keys(error)).not.toContain('stack');
  }
}

/**
 * A clean rejection with GraphQL errors. Refused before execution: a 4xx (given). Refused by a resolver
 * (a bad argument): 200 with `data: null` and the error, as GraphQL over HTTP prescribes.
 */
function expectRejected(result: HttpResult, status?: number) {
  expectClean(result);
  if (status) expect(result.status).toBe(status);
  expect(result.body?.errors?.length).toBeGreaterThan(0);
}

/** One operation; a subscription is answered by its first push (over Server-Sent Events), then dropped. */
async function post(query: string, variables?: Record<string, unknown>): Promise<HttpResult> {
  if (!query.startsWith('subscription')) return postGraphQL(server.url, query, variables, { key });
  const sub = await subscribe(fetch, server.url, query, variables, { authorization: `Bearer ${key}` });
  try {
    const { at: _at, ...body } = await sub.push(0);
    return { status: sub.status, headers: new Headers(), text: JSON.stringify(body), body };
  } finally {
    sub.close();
  }
}

describe('documents too big, too deep or too wide (rejected before execution, no SQL)', () => {
  beforeAll(async () => {
    // The key is verified (and its last use recorded) once; afterwards it comes from the cache.
    await post('{ __typename }');
    const touched = await eventually(async () => {
      const [row] = await queryRows<{ n: number }>(
        db.handle.db,
        sql`SELECT count(*)::int AS n FROM api_keys WHERE last_used_at IS NOT NULL`,
      );
      return row.n > 0;
    });
    expect(touched).toBe(true);
  });

  /**
   * The API key's own statements: verified again when its cache entry expires (5 s) and its last use
   * recorded once a minute. On a busy machine either can fall inside any request; neither is the document's.
   */
  const KEY_STATEMENTS = /from "api_keys" where \("api_keys"\."key_hash" = |\/\* touchApiKey \*\//;

  /** Sends the request and checks that no statement ran for it. */
  async function noSql(send: () => Promise<HttpResult>): Promise<HttpResult> {
    const from = statements.length;
    const before = db.handle.statements.count;
    const result = await writesNothing(send);
    const ran = statements.slice(from);
    expect(db.handle.statements.count - before).toBe(ran.length);
    // The two row-count statements only.
    expect(ran.filter((text) => !KEY_STATEMENTS.test(text))).toHaveLength(1 + 1);
    return result;
  }

  it(`depth > ${LIMITS.maxDepth}`, async () => {
    let selection = 'id';
    for (let i = 0; i < 6; i++) selection = `variants { experiment { ${selection} } }`;
    const result = await noSql(() => post(`{ experiments { edges { node { ${selection} } } } }`));
    expectRejected(result, 400);
    expect(result.body.errors[0].message).toMatch(/depth/i);
  });

  it('deep nesting through fragments counts too', async () => {
    const fragments = Array.from(
      { length: 12 },
      (_, i) => `fragment F${i} on Variant { experiment { variants { ${i < 11 ? `...F${i + 1}` : 'id'} } } }`,
    ).join('\n');
    const result = await noSql(() =>
      post(`{ experiments { edges { node { variants { ...F0 } } } } }\n${fragments}`),
    );
    expectRejected(result, 400);
  });

  it(`more than ${LIMITS.maxAliases} aliases (an alias flood)`, async () => {
    const aliases = Array.from({ length: 50 }, (_, i) => `a${i}: experiments(first: 1) { totalCount }`);
    const result = await noSql(() => post(`{ ${aliases.join(' ')} }`));
    expectRejected(result, 400);
    expect(result.body.errors[0].message).toMatch(/aliases/i);
  });

  it(`more than ${LIMITS.maxTokens} tokens (a huge document)`, async () => {
    const result = await noSql(() => post(`{ ${'__typename '.repeat(LIMITS.maxTokens + 10)}}`));
    expectRejected(result, 400);
    expect(result.body.errors[0].message).toMatch(/token/i);
  });

  it(`more than ${LIMITS.maxDirectives} directives`, async () => {
    const result = await noSql(() =>
      post(`{ __typename ${'@include(if: true) '.repeat(LIMITS.maxDirectives + 5)}}`),
    );
    expectRejected(result, 400);
    expect(result.body.errors[0].message).toMatch(/directive/i);
  });

  it('a wide, expensive page (experiments(first: 100) with heavy nesting) is refused by cost', async () => {
    const result = await noSql(() =>
      post(`{ experiments(first: 100) { edges { node {
        id key name status
        variants { id name metrics { exposures conversions conversionRate } experiment { variants { id name } } }
        auditLog(first: 100) { id actor action details }
        metrics { variantMetrics { exposures conversions } }
      } } } }`),
    );
    expectRejected(result, 400);
    expect(result.body.errors[0].extensions.code).toBe('QUERY_TOO_COMPLEX');
    expect(result.body.errors[0].message).toMatch(/complexity \d+ exceeds the limit of 15000/);
  });

  it('the dashboard query at first: 50 is within the limits', async () => {
    const result = await post(`query Dashboard { experiments(first: 50) {
      edges { node {
        variants { metrics { exposures conversions conversionRate } }
        metrics { variantMetrics { conversions } }
        assignmentCount
      } }
    } }`);
    expect(result.status).toBe(200);
    expect(result.body.errors).toBeUndefined();
    expect(result.body.data.experiments.edges.length).toBeGreaterThanOrEqual(3);
  });

  it('one document is costed again for each set of variables (the cost is kept per operation and variables)', async () => {
    const page = `query Page($first: Int, $audit: Int!) { experiments(first: $first) { edges { node {
      id key name status
      variants { id name metrics { exposures conversions conversionRate } experiment { variants { id name } } }
      auditLog(first: $audit) { id actor action details }
      metrics { variantMetrics { exposures conversions } }
    } } } }`;
    const cheap = { first: 2, audit: 2 };
    expect((await post(page, cheap)).status).toBe(200);
    const dear = await noSql(() => post(page, { first: 100, audit: 100 }));
    expectRejected(dear, 400);
    expect(dear.body.errors[0].extensions.code).toBe('QUERY_TOO_COMPLEX');
    const again = await post(page, cheap);
    expect(again.status).toBe(200);
    expect(again.body.errors).toBeUndefined();
    // The refusal is remembered too, not only the allowed cost.
    expect((await noSql(() => post(page, { first: 100, audit: 100 }))).body.errors[0].extensions.code).toBe(
      'QUERY_TOO_COMPLEX',
    );
  });

  it('first above the page limit is refused', async () => {
    const result = await writesNothing(() => post('{ experiments(first: 101) { totalCount } }'));
    expectRejected(result);
    expect(result.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });
});

describe('bodies and transports', () => {
  it('a body over 1 MB → 413, before it is parsed', async () => {
    const result = await writesNothing(() =>
      rawPost(server.url, JSON.stringify({ query: '{ __typename }', padding: 'x'.repeat(1024 * 1024) }), {
        key,
      }),
    );
    expectRejected(result, 413);
    expect(result.body.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('a batch (JSON array of operations) is refused', async () => {
    const mutation = `mutation { createExperiment(input: { key: "${uniqueKey('batch')}", name: "b" }) { __typename } }`;
    const result = await writesNothing(() =>
      rawPost(server.url, JSON.stringify([{ query: mutation }, { query: mutation }]), { key }),
    );
    expectRejected(result, 400);
  });

  it('a mutation over GET → 405', async () => {
    const query = `mutation { createExperiment(input: { key: "${uniqueKey('get')}", name: "g" }) { __typename } }`;
    const result = await writesNothing(() =>
      getUrl(`${server.url}?query=${encodeURIComponent(query)}`, {
        authorization: `Bearer ${key}`,
        'x-graphql-yoga-csrf': '1',
        accept: 'application/json',
      }),
    );
    expectRejected(result, 405);
    expect(result.headers.get('allow')).toBe('POST');
  });

  it('a form-encoded POST without the CSRF header is refused (a cross-site form cannot set it)', async () => {
    const query = `mutation { createExperiment(input: { key: "${uniqueKey('csrf')}", name: "c" }) { __typename } }`;
    const result = await writesNothing(() =>
      rawPost(server.url, `query=${encodeURIComponent(query)}`, {
        key,
        contentType: 'application/x-www-form-urlencoded',
      }),
    );
    expectRejected(result, 403);
    expect(result.body.errors[0].message).toMatch(/CSRF/);
  });

  it('a GET query without the CSRF header is refused; with it, it is answered', async () => {
    const url = `${server.url}?query=${encodeURIComponent('{ experiments { totalCount } }')}`;
    expectRejected(await getUrl(url, { authorization: `Bearer ${key}` }), 403);
    const ok = await getUrl(url, { authorization: `Bearer ${key}`, 'x-graphql-yoga-csrf': '1' });
    expect(ok.status).toBe(200);
  });

  it.each([
    ['truncated JSON', '{"query": "{ __typename }"'],
    ['not JSON at all', "query { experiments { totalCount } }'; DROP TABLE experiments; --"],
    [
      'NaN in variables',
      '{"query":"query($v: Float) { sampleSize(minimumDetectableEffect: $v) { totalUnits } }","variables":{"v": NaN}}',
    ],
    [
      'Infinity in variables',
      '{"query":"query($v: Float) { sampleSize(minimumDetectableEffect: $v) { totalUnits } }","variables":{"v": Infinity}}',
    ],
    ['an empty body', ''],
  ])('malformed JSON (%s) → 400 without the parser’s words', async (_what, body) => {
    const result = await writesNothing(() => rawPost(server.url, body, { key }));
    expectRejected(result, 400);
    expect(result.text).not.toMatch(/SyntaxError|Unexpected token|position \d+/);
  });

  it('a JSON body that is not an operation → 400', async () => {
    for (const body of [
      '42',
      '"query"',
      '{"query": 42}',
      '{"query": null}',
      '{"variables": "x", "query": "{ __typename }"}',
    ]) {
      const result = await writesNothing(() => rawPost(server.url, body, { key }));
      expectRejected(result, 400);
    }
  });
});

describe('bad values', () => {
  let draftId: string;

  beforeAll(async () => {
    draftId = (await createTestExperiment(db.handle.db)).id;
  });

  const CREATE = `mutation($input: CreateExperimentInput!) {
    createExperiment(input: $input) { __typename ... on ValidationError { code fieldErrors { path message } } }
  }`;

  /** A createExperiment that must be refused as a typed ValidationError on the given path. */
  async function expectInvalidCreate(input: Record<string, unknown>, path: string) {
    const result = await writesNothing(() =>
      post(CREATE, { input: { key: uniqueKey('bad'), name: 'Bad', ...input } }),
    );
    expectClean(result);
    expect(result.body.data.createExperiment.__typename).toBe('ValidationError');
    expect(result.body.data.createExperiment.fieldErrors.map((e: any) => e.path.join('.'))).toContain(path);
  }

  it('wrong types, in literals and in variables → 400', async () => {
    const literal = await writesNothing(() =>
      post(
        `mutation { createExperiment(input: { key: 5, name: true, trafficAllocation: "all" }) { __typename } }`,
      ),
    );
    expectRejected(literal, 400);
    const variables = await writesNothing(() => post(CREATE, { input: { key: ['a'], name: { n: 1 } } }));
    expectRejected(variables, 400);
    const first = await writesNothing(() =>
      post('query($n: Int) { experiments(first: $n) { totalCount } }', { n: 'ten' }),
    );
    expectRejected(first, 400);
    const huge = await writesNothing(() => post('{ experiments(first: 99999999999) { totalCount } }'));
    expectRejected(huge, 400);
  });

  it('invalid UUIDs → a clean error naming the argument, never a database error', async () => {
    const bad = ['not-a-uuid', "1' OR '1'='1", '00000000-0000-0000-0000-00000000000g', '', ' '.repeat(36)];
    for (const id of bad) {
      const lookups = [
        [`query($id: ID!) { experiment(id: $id) { id } }`, 'BAD_USER_INPUT'],
        [`query($id: ID!) { user(id: $id) { id } }`, 'BAD_USER_INPUT'],
      ] as const;
      for (const [query, code] of lookups) {
        const result = await writesNothing(() => post(query, { id }));
        expectRejected(result);
        expect(result.body.errors[0].extensions.code).toBe(code);
      }
      for (const mutation of ['startExperiment', 'deleteExperiment', 'removeVariant', 'revokeApiKey']) {
        const result = await writesNothing(() =>
          post(`mutation($id: ID!) { ${mutation}(id: $id) { __typename ... on Error { code } } }`, { id }),
        );
        expectClean(result);
        expect(result.body.data[mutation]).toEqual({
          __typename: 'ValidationError',
          code: 'VALIDATION_FAILED',
        });
      }
      const metric = await writesNothing(() =>
        post(
          `mutation($input: RecordMetricInput!) { recordMetric(input: $input) { __typename ... on Error { code } } }`,
          { input: { experimentId: id, userId: 'u1', metricName: 'conversion', variantId: id } },
        ),
      );
      expectClean(metric);
      expect(metric.body.data.recordMetric.__typename).toBe('ValidationError');
    }
  });

  it('NaN, Infinity and 1e309 (literals and variables) never reach a resolver', async () => {
    const cases: [string, Record<string, unknown>?][] = [
      ['{ sampleSize(minimumDetectableEffect: 1e309, baselineRate: 0.1) { totalUnits } }'],
      ['{ sampleSize(minimumDetectableEffect: 0.1, baselineRate: -1e400) { totalUnits } }'],
      [
        `mutation { createExperiment(input: { key: "${uniqueKey('inf')}", name: "x", trafficAllocation: 1e309 }) { __typename } }`,
      ],
      [
        `mutation { createExperiment(input: { key: "${uniqueKey('inf')}", name: "x", variants: [{ name: "a", config: { big: 1e999 } }] }) { __typename } }`,
      ],
      [
        'query($v: Float!) { sampleSize(minimumDetectableEffect: $v, baselineRate: 0.1) { totalUnits } }',
        { v: 'NaN' },
      ],
      [
        'query($v: Float!) { sampleSize(minimumDetectableEffect: $v, baselineRate: 0.1) { totalUnits } }',
        { v: 'Infinity' },
      ],
      [
        'query($v: Float!) { sampleSize(minimumDetectableEffect: $v, baselineRate: 0.1) { totalUnits } }',
        { v: null },
      ],
    ];
    for (const [query, variables] of cases) {
      const result = await writesNothing(() => post(query, variables));
      expectRejected(result, 400);
    }
    // 1e309 in a JSON body parses to Infinity, which graphql-js refuses for a Float variable.
    const body = `{"query":"mutation($t: Float) { createExperiment(input: { key: \\"${uniqueKey('inf')}\\", name: \\"x\\", trafficAllocation: $t }) { __typename } }","variables":{"t": 1e309}}`;
    expectRejected(await writesNothing(() => rawPost(server.url, body, { key })), 400);
  });

  it('finite but out-of-range numbers are typed validation errors', async () => {
    await expectInvalidCreate({ trafficAllocation: 1e300 }, 'input.trafficAllocation');
    await expectInvalidCreate({ trafficAllocation: -0.5 }, 'input.trafficAllocation');
    await expectInvalidCreate({ variants: [{ name: 'a', weight: -1 }] }, 'input.variants.0.weight');
    const running = await createRunningExperiment(db.handle.db);
    const [variant] = await getVariants(db.handle.db, running.id);
    const result = await writesNothing(() =>
      post(
        `mutation($input: RecordConversionInput!) { recordConversion(input: $input) { __typename ... on Error { code } } }`,
        {
          input: {
            experimentKey: running.key,
            userId: 'big-spender',
            variantId: variant.id,
            metricName: 'revenue',
            value: 1.7e308,
          },
        },
      ),
    );
    expectClean(result);
    expect(result.body.data.recordConversion).toEqual({
      __typename: 'ValidationError',
      code: 'VALIDATION_FAILED',
    });
  });

  it('oversized strings and configs (> 64 KB) are refused, whatever the field', async () => {
    const big = 'x'.repeat(70 * 1024);
    await expectInvalidCreate({ name: big }, 'input.name');
    await expectInvalidCreate({ description: big }, 'input.description');
    await expectInvalidCreate({ hashSeed: big }, 'input.hashSeed');
    await expectInvalidCreate({ key: big }, 'input.key');
    await expectInvalidCreate(
      { variants: [{ name: 'a', config: { blob: big } }] },
      'input.variants.0.config',
    );
    await expectInvalidCreate({ variants: [{ name: big }] }, 'input.variants.0.name');

    const updated = await writesNothing(() =>
      post(
        `mutation($id: ID!, $input: UpdateExperimentInput!) { updateExperiment(id: $id, input: $input) { __typename } }`,
        { id: draftId, input: { description: big } },
      ),
    );
    expectClean(updated);
    expect(updated.body.data.updateExperiment.__typename).toBe('ValidationError');

    const assign = await writesNothing(() =>
      post(
        `mutation($u: String!) { assignVariant(experimentKey: "homepage-recs-collaborative", userId: $u) { __typename } }`,
        {
          u: big,
        },
      ),
    );
    expectClean(assign);
    expect(assign.body.data.assignVariant.__typename).toBe('ValidationError');

    const lookup = await writesNothing(() =>
      post(`query($k: String!) { experiment(key: $k) { id } }`, { k: big }),
    );
    expectClean(lookup);
    expect(lookup.body.data?.experiment ?? null).toBeNull();
  });

  it('configs that are not JSON objects are refused', async () => {
    for (const config of [[1, 2], 'text', 42, true]) {
      await expectInvalidCreate({ variants: [{ name: 'a', config }] }, 'input.variants.0.config');
    }
  });

  it('unknown enum values → 400', async () => {
    expectRejected(await writesNothing(() => post('{ experiments(status: BOGUS) { totalCount } }')), 400);
    expectRejected(
      await writesNothing(() =>
        post('query($s: ExperimentStatus) { experiments(status: $s) { totalCount } }', { s: 'BOGUS' }),
      ),
      400,
    );
    expectRejected(
      await writesNothing(() =>
        post('query($s: ExperimentStatus) { experiments(status: $s) { totalCount } }', { s: 'running' }),
      ),
      400,
    );
    const events = [{ kind: 'CLICK', experimentKey: 'k', userId: 'u', eventId: randomUUID() }];
    expectRejected(
      await writesNothing(() =>
        post('mutation($e: [EventInput!]!) { recordEvents(events: $e) { accepted } }', { e: events }),
      ),
      400,
    );
    expectRejected(
      await writesNothing(() =>
        post('mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { __typename } }', {
          i: { name: uniqueKey('enum'), scopes: ['ROOT'] },
        }),
      ),
      400,
    );
  });

  it(`a batch over ${LIMITS.maxBatchSize} events is refused whole`, async () => {
    const running = await createRunningExperiment(db.handle.db);
    const events = Array.from({ length: LIMITS.maxBatchSize + 1 }, (_, i) => ({
      kind: 'EXPOSURE',
      experimentKey: running.key,
      userId: `u${i}`,
      eventId: randomUUID(),
    }));
    const result = await writesNothing(() =>
      post('mutation($e: [EventInput!]!) { recordEvents(events: $e) { accepted } }', { e: events }),
    );
    expectRejected(result);
  });
});

// ---------------------------------------------------------------------------------------------------
// SQL-injection-looking strings in every string argument, found by walking the schema.

const INJECTIONS = [
  "'; DROP TABLE experiments; --",
  '" OR 1=1 --',
  "') OR ('1'='1' /* $$; SELECT pg_sleep(5); $$ */",
];

/** A String, ID or DateTime somewhere inside an argument: its path from the argument name. */
type Leaf = (string | number)[];

function stringLeaves(type: GraphQLInputType, path: Leaf, out: Leaf[]): Leaf[] {
  if (isNonNullType(type)) return stringLeaves(type.ofType, path, out);
  if (isListType(type)) return stringLeaves(type.ofType, [...path, 0], out);
  if (isScalarType(type)) {
    if (['String', 'ID', 'DateTime'].includes(type.name)) out.push(path);
  } else if (isInputObjectType(type)) {
    for (const field of Object.values(type.getFields())) stringLeaves(field.type, [...path, field.name], out);
  }
  return out;
}

interface Target {
  /** `Query.experiment`, `Mutation.createExperiment`, `Experiment.results`. */
  name: string;
  parent: string;
  field: GraphQLField<unknown, unknown>;
  leaves: Leaf[];
}

function targets(): Target[] {
  const found: Target[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const leaves = field.args.flatMap((arg) => stringLeaves(arg.type, [arg.name], []));
      if (leaves.length) found.push({ name: `${type.name}.${field.name}`, parent: type.name, field, leaves });
    }
  }
  return found;
}

interface Fixtures {
  draftId: string;
  draftKey: string;
  draftVariantId: string;
  runningId: string;
  runningKey: string;
  runningVariantId: string;
  apiKeyId: string;
  layerId: string;
  layerKey: string;
  holdoutKey: string;
  metricId: string;
  metricKey: string;
}

async function makeFixtures(): Promise<Fixtures> {
  const dbx = db.handle.db;
  const draft = await createTestExperiment(dbx);
  const running = await createRunningExperiment(dbx);
  const [, draftVariant] = await getVariants(dbx, draft.id);
  const [runningVariant] = await getVariants(dbx, running.id);
  const apiKey = await makeKey(dbx, ['read']);
  const metric = await createMetricService({ db: dbx, actor: { name: 'test' } }).create({
    key: uniqueKey('metric'),
    name: 'Probe metric',
    kind: 'MEAN',
    eventName: 'minutes',
  });
  const layer = await createLayerService({ db: dbx, actor: { name: 'test' } }).create({
    key: uniqueKey('layer'),
    name: 'Probe layer',
  });
  const holdout = await createTestExperiment(dbx, {
    kind: 'holdout',
    variants: [
      { name: 'held-out', weight: 0.1, isControl: true },
      { name: 'general', weight: 0.9 },
    ],
  });
  return {
    holdoutKey: holdout.key,
    layerId: layer.id,
    layerKey: layer.key,
    draftId: draft.id,
    draftKey: draft.key,
    draftVariantId: draftVariant.id,
    runningId: running.id,
    runningKey: running.key,
    runningVariantId: runningVariant.id,
    apiKeyId: apiKey.id,
    metricId: metric.id,
    metricKey: metric.key,
  };
}

const now = () => new Date().toISOString();

/** Valid arguments for every field with a string argument; the battery replaces one string at a time. */
const BASES: Record<string, (fx: Fixtures, leaf: Leaf) => Record<string, unknown>> = {
  'Query.experiment': (fx, leaf) => (leaf[0] === 'id' ? { id: fx.draftId } : { key: fx.draftKey }),
  'Query.experiments': () => ({ first: 5, after: null }),
  'Query.assignment': (fx) => ({ experimentKey: fx.runningKey, userId: 'someone' }),
  'Query.user': () => ({ id: sid(1, 1) }),
  'Subscription.experimentResults': (fx) => ({ experimentKey: fx.runningKey, metric: 'conversion' }),
  'Subscription.experimentChanged': (fx) => ({ experimentKey: fx.runningKey }),
  'Experiment.results': () => ({ metric: 'conversion' }),
  'Experiment.scorecard': () => ({ metrics: ['conversion'] }),
  'Experiment.timeSeries': () => ({ metric: 'conversion' }),
  'Experiment.breakdown': () => ({ metric: 'conversion', groupBy: 'device' }),
  'Mutation.startExperiment': (fx) => ({ id: fx.draftId }),
  'Mutation.pauseExperiment': (fx) => ({ id: fx.runningId }),
  'Mutation.completeExperiment': (fx) => ({ id: fx.runningId }),
  'Mutation.archiveExperiment': (fx) => ({ id: fx.draftId }),
  'Mutation.deleteExperiment': (fx) => ({ id: fx.draftId }),
  'Query.metric': (fx) => ({ key: fx.metricKey }),
  'Query.metrics': () => ({ first: 5, after: null }),
  'Mutation.createMetric': () => ({
    input: {
      key: uniqueKey('inj'),
      name: 'Injection probe',
      description: 'A probe',
      kind: 'RATIO',
      eventName: 'minutes',
      denominatorEventName: 'session',
    },
  }),
  'Mutation.updateMetric': (fx) => ({
    id: fx.metricId,
    input: { name: 'Renamed', description: 'Described', eventName: 'watch_minutes' },
  }),
  'Mutation.archiveMetric': (fx) => ({ id: fx.metricId }),
  'Mutation.createExperiment': (fx, leaf) => ({
    input: {
      key: uniqueKey('inj'),
      name: 'Injection probe',
      description: 'A probe',
      hashSeed: 'seed',
      variants: [{ name: 'control', isControl: true }, { name: 'treatment' }],
      metricSettings: [{ metric: 'purchase', conversionWindowHours: 72 }],
      metricRoles: [{ metric: fx.metricKey, role: 'PRIMARY' }],
      // A bandit's settings exist only on a BANDIT.
      ...(leaf[1] === 'bandit' ? { kind: 'BANDIT', bandit: { decisionMetric: fx.metricKey } } : {}),
    },
  }),
  'Mutation.updateExperiment': (fx) => ({
    id: fx.draftId,
    input: {
      name: 'Renamed',
      description: 'Described',
      hashSeed: 'reseeded',
      metricSettings: [{ metric: 'purchase', conversionWindowHours: 72 }],
      metricRoles: [{ metric: fx.metricKey, role: 'PRIMARY' }],
      targeting: { plan: 'premium' },
    },
  }),
  'Mutation.addVariant': (fx) => ({ experimentId: fx.draftId, input: { name: uniqueKey('variant') } }),
  'Mutation.updateVariant': (fx) => ({ id: fx.draftVariantId, input: { name: uniqueKey('variant') } }),
  'Mutation.removeVariant': (fx) => ({ id: fx.draftVariantId }),
  'Mutation.assignVariant': (fx) => ({
    experimentKey: fx.runningKey,
    userId: uniqueKey('user'),
    attributes: { country: 'US' },
  }),
  'Query.layer': (fx) => ({ key: fx.layerKey }),
  'Mutation.createLayer': () => ({
    input: { key: uniqueKey('layer'), name: 'Probe', description: 'A probe', hashSeed: 'seed' },
  }),
  'Mutation.updateLayer': (fx) => ({ id: fx.layerId, input: { name: 'Renamed', description: 'Described' } }),
  'Mutation.archiveLayer': (fx) => ({ id: fx.layerId }),
  'Mutation.setExperimentLayer': (fx) => ({
    experimentKey: fx.draftKey,
    layerKey: fx.layerKey,
    ranges: [{ start: 0, end: 1 }],
  }),
  'Mutation.setHoldout': (fx) => ({ experimentKey: fx.draftKey, holdoutKey: fx.holdoutKey }),
  'Mutation.setLayerHoldout': (fx) => ({ layerKey: fx.layerKey, holdoutKey: fx.holdoutKey }),
  'Mutation.setOverride': (fx) => ({
    experimentKey: fx.runningKey,
    userId: uniqueKey('qa'),
    variantId: fx.runningVariantId,
  }),
  'Mutation.removeOverride': (fx) => ({ experimentKey: fx.runningKey, userId: uniqueKey('qa') }),
  'Mutation.recordExposure': (fx) => ({
    input: {
      experimentKey: fx.runningKey,
      userId: uniqueKey('user'),
      variantId: fx.runningVariantId,
      eventId: randomUUID(),
      occurredAt: now(),
    },
  }),
  'Mutation.recordConversion': (fx) => ({
    input: {
      experimentKey: fx.runningKey,
      metricName: 'conversion',
      userId: uniqueKey('user'),
      variantId: fx.runningVariantId,
      eventId: randomUUID(),
      occurredAt: now(),
    },
  }),
  'Mutation.recordMetric': (fx) => ({
    input: {
      experimentId: fx.runningId,
      metricName: 'conversion',
      userId: uniqueKey('user'),
      variantId: fx.runningVariantId,
      eventId: randomUUID(),
      occurredAt: now(),
    },
  }),
  'Mutation.recordEvents': (fx) => ({
    events: [
      {
        kind: 'CONVERSION',
        experimentKey: fx.runningKey,
        metricName: 'conversion',
        userId: uniqueKey('user'),
        variantId: fx.runningVariantId,
        eventId: randomUUID(),
        occurredAt: now(),
      },
    ],
  }),
  'Mutation.createApiKey': () => ({ input: { name: uniqueKey('probe-key'), scopes: ['READ'] } }),
  'Mutation.revokeApiKey': (fx) => ({ id: fx.apiKeyId }),
  'Mutation.scheduleExperiment': (fx) => ({
    id: fx.draftId,
    input: { startAt: new Date(Date.now() + 3600_000).toISOString(), stopAfterUnits: 100 },
  }),
  'Mutation.clearExperimentSchedule': (fx) => ({ id: fx.draftId }),
  'Mutation.configureGuardrails': (fx) => ({ id: fx.draftId, input: { action: 'ZERO_TREATMENT_WEIGHTS' } }),
  // This app has no WEBHOOK_SECRET_KEY: createWebhook is refused (a typed result) after validation.
  'Mutation.createWebhook': () => ({
    input: { url: 'https://hooks.example.com/x', events: ['SCHEDULE_FAILED'] },
  }),
  'Mutation.deleteWebhook': () => ({ id: randomUUID() }),
  'Query.webhookDeliveries': () => ({ webhookId: randomUUID(), first: 5 }),
};

function selectionFor(type: GraphQLOutputType): string {
  const named = getNamedType(type);
  if (isScalarType(named) || !('getFields' in named || isUnionType(named))) return '';
  if (isUnionType(named)) return '{ __typename ... on Error { code message } }';
  return '{ __typename }';
}

function variableDefinitions(args: readonly GraphQLArgument[], present: Record<string, unknown>) {
  return args.filter((a) => a.name in present).map((a) => `$${a.name}: ${a.type.toString()}`);
}

/** The operation that calls the target with all its arguments as variables. */
function operationFor(target: Target, args: Record<string, unknown>, fx: Fixtures) {
  const { field } = target;
  const defs = variableDefinitions(field.args, args);
  const call = `${field.name}(${field.args
    .filter((a) => a.name in args)
    .map((a) => `${a.name}: $${a.name}`)
    .join(', ')}) ${selectionFor(field.type)}`;
  if (target.parent === 'Query' || target.parent === 'Mutation' || target.parent === 'Subscription') {
    const kind = target.parent.toLowerCase();
    return { query: `${kind} Probe(${defs.join(', ')}) { ${call} }`, variables: args };
  }
  if (target.parent === 'Experiment') {
    return {
      query: `query Probe($experimentId: ID!, ${defs.join(', ')}) { experiment(id: $experimentId) { ${call} } }`,
      variables: { ...args, experimentId: fx.runningId },
    };
  }
  throw new Error(`no way to reach ${target.name}: add one to operationFor`);
}

function setAt(value: any, path: Leaf, replacement: unknown) {
  let node = value;
  for (const step of path.slice(0, -1)) node = node[step];
  node[path.at(-1)!] = replacement;
}

/** Rows that hold the exact string in a text column the API writes from arguments. */
async function storedVerbatim(s: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(
    db.handle.db,
    sql`SELECT ((SELECT count(*) FROM experiments WHERE ${s} IN (key, name, description, hash_seed))
             + (SELECT count(*) FROM experiment_variants WHERE name = ${s})
             + (SELECT count(*) FROM experiment_assignments WHERE user_id = ${s})
             + (SELECT count(*) FROM experiment_exposures WHERE user_id = ${s})
             + (SELECT count(*) FROM experiment_conversions WHERE user_id = ${s} OR metric_name = ${s})
             + (SELECT count(*) FROM experiment_metric_settings WHERE metric_name = ${s})
             + (SELECT count(*) FROM api_keys WHERE name = ${s}))::int AS n`,
  );
  return row.n;
}

/** True when the response is a success (no error at all, no typed error result). */
function succeeded(result: HttpResult): boolean {
  if (result.body?.errors?.length) return false;
  return !JSON.stringify(result.body?.data ?? null).includes('"code"');
}

describe('SQL-injection-looking strings in every string argument', () => {
  const all = targets();

  it('every field with a string argument is in the battery', () => {
    expect(all.map((t) => t.name).sort()).toEqual(Object.keys(BASES).sort());
  });

  // One test per field (the whole battery in one test outlasted the timeout on a busy machine, and its
  // requests, still running, then changed the row counts of the tests after it).
  it.each(all.map((t) => [t.name, t] as const))(
    'the unmodified arguments are valid, so each injected string reaches the resolver: %s',
    async (_name, target) => {
      // Reads leave the fixtures as they were; a mutation that succeeds needs fresh ones next time.
      let fx = await makeFixtures();
      for (const leaf of target.leaves) {
        if (target.parent === 'Mutation') fx = await makeFixtures();
        const { query, variables } = operationFor(target, BASES[target.name](fx, leaf), fx);
        const result = await post(query, variables);
        expect({ target: target.name, status: result.status, errors: result.body?.errors }).toEqual({
          target: target.name,
          status: 200,
          errors: undefined,
        });
      }
    },
  );

  it.each(all.map((t) => [t.name, t] as const))('%s', async (_name, target) => {
    // Fixtures are made again only after a call that changed something (an injected string accepted as
    // data): a refused call or a read is proven below to have written nothing, so they are as they were.
    let fx = await makeFixtures();
    for (const leaf of target.leaves) {
      for (const injection of INJECTIONS) {
        const args = structuredClone(BASES[target.name](fx, leaf));
        setAt(args, leaf, injection);
        const { query, variables } = operationFor(target, args, fx);
        const before = await rowCounts();
        const result = await post(query, variables);
        const after = await rowCounts();
        const where = `${target.name}(${leaf.join('.')}) = ${injection}`;
        try {
          expectClean(result, [injection]);
          const changed = JSON.stringify(after) !== JSON.stringify(before);
          if (target.parent !== 'Mutation' || !succeeded(result)) {
            // Refused (or a read): nothing anywhere changed.
            expect(after).toEqual(before);
          } else if (changed) {
            // Accepted as data (a name, a user id): stored exactly as sent, as a value.
            expect(await storedVerbatim(injection)).toBeGreaterThan(0);
          }
        } catch (err) {
          throw new Error(
            `${where}\n${result.status} ${result.text.slice(0, 500)}\n${(err as Error).message}`,
          );
        }
        if (
          target.parent === 'Mutation' &&
          (succeeded(result) || JSON.stringify(after) !== JSON.stringify(before))
        ) {
          fx = await makeFixtures();
        }
      }
    }
    // Every table is still there, and the seed's experiments are untouched.
    const keys = seedExperiments.map((e) => e.key);
    const [seed] = await queryRows<{ n: number }>(
      db.handle.db,
      sql`SELECT count(*)::int AS n FROM experiments WHERE key IN (SELECT value FROM json_array_elements_text(${JSON.stringify(keys)}::json))`,
    );
    expect(seed.n).toBe(keys.length);
  });

  it('in inline literals too (GraphQL string escapes)', async () => {
    for (const injection of INJECTIONS) {
      const literal = JSON.stringify(injection);
      for (const query of [
        `{ experiment(key: ${literal}) { id } }`,
        `{ assignment(experimentKey: ${literal}, userId: ${literal}) { userId } }`,
        `{ experiments(after: ${literal}) { totalCount } }`,
        `mutation { assignVariant(experimentKey: ${literal}, userId: "u1") { __typename ... on Assignment { reason } } }`,
      ]) {
        const result = await writesNothing(() => post(query));
        expectClean(result, [injection]);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// NUL and lone UTF-16 surrogates in every string argument and every JSON field, found by walking the
// schema (a new argument is covered, or fails "every field … is in the battery" above). PostgreSQL
// refuses NUL in text and jsonb and lone surrogates in jsonb, and silently stores a lone surrogate in text
// as U+FFFD: each must be a typed validation error naming the field, and nothing may be written.

const UNSTORABLE = ['a\u0000b', '\ud800', 'tail\udfff'];

/** Where a string can hide: a String/ID/DateTime argument, or anywhere inside a JSON one (value or key). */
interface Probe {
  leaf: Leaf;
  scalar: string;
  value: unknown;
}

function scalarLeaves(type: GraphQLInputType, path: Leaf, out: { leaf: Leaf; scalar: string }[]) {
  if (isNonNullType(type)) return scalarLeaves(type.ofType, path, out);
  if (isListType(type)) return scalarLeaves(type.ofType, [...path, 0], out);
  if (isScalarType(type)) out.push({ leaf: path, scalar: type.name });
  else if (isInputObjectType(type)) {
    for (const field of Object.values(type.getFields())) scalarLeaves(field.type, [...path, field.name], out);
  }
  return out;
}

function probes(field: GraphQLField<unknown, unknown>): Probe[] {
  const leaves = field.args.flatMap((arg) => scalarLeaves(arg.type, [arg.name], []));
  return leaves.flatMap(({ leaf, scalar }): Probe[] => {
    if (['String', 'ID', 'DateTime'].includes(scalar)) {
      return UNSTORABLE.map((value) => ({ leaf, scalar, value }));
    }
    if (scalar === 'JSON') {
      return UNSTORABLE.flatMap((bad) => [
        { leaf, scalar, value: { page: { sections: ['fine', bad] } } },
        { leaf, scalar, value: { nested: { [bad]: true } } },
      ]);
    }
    return [];
  });
}

/** graphql-js's spelling of a path inside a variable, e.g. `events[0].occurredAt`. */
const variablePath = (leaf: Leaf) =>
  leaf.map((step, i) => (typeof step === 'number' ? `[${step}]` : i === 0 ? step : `.${step}`)).join('');

/** Every field with a string or JSON argument (targets() knows only strings). */
function probedTargets(): Target[] {
  return Object.values(schema.getTypeMap()).flatMap((type) =>
    isObjectType(type) && !type.name.startsWith('__')
      ? Object.values(type.getFields())
          .filter((field) => probes(field).length > 0)
          .map((field) => ({ name: `${type.name}.${field.name}`, parent: type.name, field, leaves: [] }))
      : [],
  );
}

describe('NUL and lone surrogates in every string argument and JSON field', () => {
  const all = probedTargets();
  let fx: Fixtures;

  it('every field with a string or JSON argument has valid arguments in the battery', () => {
    expect(all.map((t) => t.name).sort()).toEqual(Object.keys(BASES).sort());
  });

  beforeAll(async () => {
    // Every probe is refused, so one set of fixtures serves them all (a probe that got through would
    // change them, and fail on its own assertions first).
    fx = await makeFixtures();
  });

  it('covers JSON fields too (config and metadata)', () => {
    const json = all.filter((t) => probes(t.field).some((p) => p.scalar === 'JSON')).map((t) => t.name);
    expect(new Set(json)).toEqual(
      new Set([
        'Mutation.createExperiment',
        'Mutation.updateExperiment',
        'Mutation.assignVariant',
        'Mutation.addVariant',
        'Mutation.updateVariant',
        'Mutation.recordExposure',
        'Mutation.recordConversion',
        'Mutation.recordMetric',
        'Mutation.recordEvents',
      ]),
    );
  });

  it.each(all.map((t) => [t.name, t] as const))('%s', async (_name, target) => {
    for (const probe of probes(target.field)) {
      const args = structuredClone(BASES[target.name](fx, probe.leaf));
      setAt(args, probe.leaf, probe.value);
      const operation = operationFor(target, args, fx);
      // Result unions and the batch result: the field errors too.
      const query = operation.query
        .replace(
          '... on Error { code message }',
          '... on Error { code message } ... on ValidationError { fieldErrors { path message } }',
        )
        .replace(
          'recordEvents(events: $events) { __typename }',
          'recordEvents(events: $events) { accepted rejected { index code fieldErrors { path message } } }',
        );
      const before = await rowCounts();
      const result = await post(query, operation.variables);
      const where = `${target.name}(${probe.leaf.join('.')}) = ${JSON.stringify(probe.value)}`;
      try {
        expect(await rowCounts()).toEqual(before);
        expectClean(result, UNSTORABLE);
        const field = probe.leaf.map(String).join('.');
        if (probe.scalar === 'DateTime') {
          // Not a date-time at all: graphql-js refuses the variable before any resolver runs.
          expect(result.status).toBe(400);
          expect(result.body.errors[0].message).toContain(`at "${variablePath(probe.leaf)}"`);
          continue;
        }
        const data = result.body.data?.[target.field.name];
        let paths: string[];
        if (target.name === 'Mutation.recordEvents') {
          // A batch rejects the event by its index and writes the rest (here: none).
          expect(data.accepted).toBe(0);
          expect(data.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
            [0, 'VALIDATION_FAILED'],
          ]);
          paths = data.rejected[0].fieldErrors.map((e: { path: string[] }) => e.path.join('.'));
        } else if (data?.__typename) {
          expect(data.__typename).toBe('ValidationError');
          paths = data.fieldErrors.map((e: { path: string[] }) => e.path.join('.'));
        } else {
          expect(result.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
          paths = result.body.errors[0].extensions.fieldErrors.map((e: { path: string[] }) =>
            e.path.join('.'),
          );
        }
        expect(paths.some((p) => p === field || p.startsWith(`${field}.`))).toBe(true);
      } catch (err) {
        throw new Error(`${where}\n${result.status} ${result.text.slice(0, 600)}\n${(err as Error).message}`);
      }
    }
  });
});
