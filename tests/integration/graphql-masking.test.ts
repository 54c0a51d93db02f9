/**
 * Unexpected errors are masked: a client never sees a stack trace, SQL or a driver message, only a
 * generic message, a code and a request id to find the log line. Provoked with a database that has no
 * tables (a bug: INTERNAL_SERVER_ERROR) and with a closed database (SERVICE_UNAVAILABLE where the driver
 * says the connection ended, as postgres.js does; PGlite's "closed" is not recognised and is
 * INTERNAL_SERVER_ERROR), each behind its own app instance.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { securityConfigFromEnv } from '../../src/config';
import { createApp, type App } from '../../src/http/app';
import { createTestApp } from '../support/app';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';

const QUERIES = [
  ['a list', `{ experiments(first: 5) { totalCount edges { node { id key } } } }`],
  ['a lookup', `{ experiment(key: "homepage-recs-collaborative") { id variants { id } } }`],
  ['a mutation', `mutation { createExperiment(input: { key: "masked-x", name: "x" }) { __typename } }`],
  ['an assignment', `mutation { assignVariant(experimentKey: "k", userId: "u") { __typename } }`],
] as const;

/** Things that must never reach a client. */
function expectNothingLeaks(text: string) {
  expect(text).not.toMatch(/select|insert|update |from "|relation|postgres|pglite/i);
  expect(text).not.toMatch(/\bat .+:\d+:\d+/); // stack frames
  expect(text).not.toMatch(/\/work\/|node_modules|\.ts\b/);
  expect(text).not.toMatch(/stack|originalError|cause/i);
}

async function post(app: App, query: string) {
  const response = await app.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query }),
  });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) };
}

describe('masked errors', () => {
  let empty: ScratchDatabase;
  let closed: ScratchDatabase;
  const logged: unknown[] = [];
  let emptyApp: App;
  let closedApp: App;

  beforeAll(async () => {
    [empty, closed] = await Promise.all([createScratchDatabase(), createScratchDatabase()]);
    // No migrations: every statement fails with a PostgreSQL error naming the missing relation.
    const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    emptyApp = createApp({ db: empty.handle.db, logger, security: securityConfigFromEnv({}) });
    closedApp = createTestApp(closed.handle);
    await closed.handle.close();
  });
  afterAll(async () => {
    await empty.drop();
    await closed.drop();
  });

  it.each(QUERIES)('a SQL error in %s is masked as INTERNAL_SERVER_ERROR', async (_what, query) => {
    const { text, body } = await post(emptyApp, query);
    expectNothingLeaks(text);
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0].message).toBe('Unexpected error.');
    expect(body.errors[0].extensions.code).toBe('INTERNAL_SERVER_ERROR');
    // Nothing but the code and (behind the HTTP server, which sets one) the request id.
    expect(Object.keys(body.errors[0].extensions).filter((k) => k !== 'requestId')).toEqual(['code']);
    expect(body.errors[0].path).toEqual([expect.any(String)]);
  });

  it.each(QUERIES)('a closed database in %s is masked', async (_what, query) => {
    const { text, body } = await post(closedApp, query);
    expectNothingLeaks(text);
    expect(body.errors).toHaveLength(1);
    const { code } = body.errors[0].extensions;
    expect(['INTERNAL_SERVER_ERROR', 'SERVICE_UNAVAILABLE']).toContain(code);
    expect(body.errors[0].message).toBe(
      code === 'INTERNAL_SERVER_ERROR' ? 'Unexpected error.' : 'The database is unavailable; retry shortly.',
    );
    expect(Object.keys(body.errors[0].extensions).filter((k) => !['requestId', 'http'].includes(k))).toEqual([
      'code',
    ]);
  });

  it('logs the real error on the server side', async () => {
    logged.length = 0;
    await post(emptyApp, QUERIES[0][1]);
    expect(JSON.stringify(logged)).toMatch(/experiments/);
  });

  it('keeps expected request errors visible (not masked)', async () => {
    const { body } = await post(emptyApp, `{ experiments(first: 1000) { totalCount } }`);
    expect(body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const syntax = await post(emptyApp, `{ experiments( }`);
    expect(syntax.body.errors[0].message).toMatch(/Syntax Error/);
    expectNothingLeaks(syntax.text);
  });
});
