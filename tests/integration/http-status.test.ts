/**
 * The README's table of HTTP statuses (Security, between the http-status markers) is what the server
 * answers: every row is sent with `Accept: application/graphql-response+json` and with
 * `Accept: application/json`, and the code and both statuses must match the table.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DatabaseHandle } from '../../src/db/client';
import { createRateLimiter, type RateLimiter } from '../../src/http/rate-limit';
import { openTestDatabase } from '../support/db';
import { ROOT } from '../support/paths';
import {
  makeKey,
  postGraphQL,
  productionSecurity,
  startTestServer,
  type TestServer,
} from '../support/server';

interface Row {
  refusal: string;
  code: string;
  graphqlResponseJson: number;
  applicationJson: number;
}

function readmeTable(): Row[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /<!-- http-status:begin -->([\s\S]*?)<!-- http-status:end -->/.exec(readme);
  if (!block) throw new Error('README.md has no http-status table');
  return block[1]
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('|') && !/^\|\s*-/.test(line))
    .slice(1)
    .map((line) => {
      const [refusal, code, a, b] = line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim());
      return { refusal, code, graphqlResponseJson: Number(a), applicationJson: Number(b) };
    });
}

const deep = `query { ${'experiments(first: 1) { edges { node { variants { experiment { '.repeat(3)}id${' } } } } }'.repeat(3)} }`;
const expensive =
  'query { experiments(first: 100) { edges { node { scorecard { variants { units variant { experiment { variants { name } } } } } } } } }';

interface Probe {
  query: string;
  variables?: Record<string, unknown>;
  key?: 'read' | 'admin' | null;
  server?: 'limited';
}

/** One request per row; the row is found by the start of its first cell. */
const PROBES: [string, Probe][] = [
  ['syntax error', { query: 'query {' }],
  ['unknown field', { query: '{ experiments(first: 1) { nope } }' }],
  ['too deep', { query: deep }],
  [
    'a number literal',
    { query: '{ sampleSize(baselineRate: 1e400, minimumDetectableEffect: 0.1) { totalUnits } }' },
  ],
  ['too expensive', { query: expensive }],
  [
    'a variable of the wrong type',
    { query: 'query Q($n: Int!) { experiments(first: $n) { totalCount } }', variables: { n: 'x' } },
  ],
  ['missing, malformed or unknown API key', { query: '{ __typename }', key: null }],
  ['a selected field needs a scope', { query: '{ apiKeys { id } }' }],
  ['rate limit', { query: '{ __typename }', key: null, server: 'limited' }],
  ['a bad argument value', { query: '{ experiments(first: 1000) { totalCount } }' }],
  [
    'an expected failure',
    { query: 'mutation { revokeApiKey(id: "nope") { ... on Error { code } } }', key: 'admin' },
  ],
];

let handle: DatabaseHandle;
let server: TestServer;
let limited: TestServer;
let limiter: RateLimiter;
const keys: Record<string, string> = {};
beforeAll(async () => {
  handle = await openTestDatabase();
  server = await startTestServer(handle);
  // One failed authentication a minute: the second request without a key is RATE_LIMITED.
  const security = productionSecurity({ authFailuresPerMinute: 1 });
  limiter = (await createRateLimiter(security))!;
  limited = await startTestServer(handle, { security, rateLimiter: limiter });
  await postGraphQL(limited.url, '{ __typename }');
  keys.read = (await makeKey(handle.db, ['read'])).key;
  keys.admin = (await makeKey(handle.db, ['admin'])).key;
});
afterAll(async () => {
  await limited?.close();
  await limiter?.close();
  await server?.close();
  await handle?.close();
});

describe("the README's HTTP status table", () => {
  const rows = readmeTable();

  it('has a probe for every row, and a row for every probe', () => {
    const unmatched = rows.filter((row) => !PROBES.some(([start]) => row.refusal.startsWith(start)));
    expect(unmatched).toEqual([]);
    expect(rows).toHaveLength(PROBES.length);
  });

  it.each(PROBES)('%s', async (start, probe) => {
    const row = rows.find((r) => r.refusal.startsWith(start))!;
    const measured: Record<string, unknown> = {};
    for (const accept of ['application/graphql-response+json', 'application/json']) {
      const key = probe.key === null ? undefined : keys[probe.key ?? 'read'];
      const target = probe.server === 'limited' ? limited : server;
      const response = await postGraphQL(target.url, probe.query, probe.variables, {
        key,
        headers: { accept },
      });
      const errors = response.body?.errors;
      measured.code = errors ? (errors[0].extensions?.code ?? undefined) : 'data';
      measured[accept] = response.status;
    }
    const expectedCode =
      row.code === '(none)' ? undefined : row.code === 'in `data`' ? 'data' : row.code.replaceAll('`', '');
    expect(measured).toEqual({
      code: expectedCode,
      'application/graphql-response+json': row.graphqlResponseJson,
      'application/json': row.applicationJson,
    });
  });
});
