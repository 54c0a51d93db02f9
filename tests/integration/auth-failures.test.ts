/**
 * Unauthenticated floods: failed authentications are limited per client address, on GraphQL and on
 * POST /v1/assignments alike (HTTP 429 with Retry-After once the address's budget of the minute is
 * spent), a refused address costs no hashing or lookup, and a repeated bad key is looked up once.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Authenticator } from '../../src/auth/authenticator';
import type { DatabaseHandle } from '../../src/db/client';
import { createRateLimiter, type RateLimiter } from '../../src/http/rate-limit';
import { openTestDatabase } from '../support/db';
import { createRunningExperiment } from '../support/factories';
import {
  makeKey,
  postGraphQL,
  productionSecurity,
  rawPost,
  startTestServer,
  type TestServer,
} from '../support/server';

const LIST = 'query { experiments(first: 1) { totalCount } }';
const guess = () => `sona_${randomBytes(32).toString('base64url')}`;
const FAILURES = 5;

let handle: DatabaseHandle;
let limiter: RateLimiter;
let server: TestServer;
beforeAll(async () => {
  handle = await openTestDatabase();
  const security = productionSecurity({ authFailuresPerMinute: FAILURES });
  limiter = (await createRateLimiter(security))!;
  server = await startTestServer(handle, { security, rateLimiter: limiter });
});
afterAll(async () => {
  await server?.close();
  await limiter?.close();
  await handle?.close();
});

describe('failed authentications', () => {
  it('are limited per client address on GraphQL and /v1/assignments; a key verified before still works', async () => {
    const { key } = await makeKey(handle.db, ['read', 'assign']);
    const running = await createRunningExperiment(handle.db);
    expect((await postGraphQL(server.url, LIST, {}, { key })).status).toBe(200); // verified, cached

    const statuses: number[] = [];
    for (let i = 0; i < FAILURES; i++) {
      statuses.push((await postGraphQL(server.url, LIST, {}, { key: guess() })).status);
    }
    expect(statuses).toEqual(Array(FAILURES).fill(401));

    const before = handle.statements.count;
    const limited = await postGraphQL(server.url, LIST, {}, { key: guess() });
    expect(limited.status).toBe(429);
    expect(limited.body.errors[0].extensions.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    const noKey = await postGraphQL(server.url, LIST);
    expect(noKey.status).toBe(429);
    const sdk = await rawPost(
      `${server.base}/v1/assignments`,
      JSON.stringify({ experimentKey: running.key, userId: 'flood' }),
      { key: guess() },
    );
    expect(sdk.status).toBe(429);
    expect(sdk.body.error.code).toBe('RATE_LIMITED');
    expect(sdk.headers.get('retry-after')).not.toBeNull();
    // Refused before any lookup.
    expect(handle.statements.count - before).toBe(0);

    // A key this instance has verified is not held back by its neighbours' failures.
    const good = await postGraphQL(server.url, LIST, {}, { key });
    expect(good.status).toBe(200);
  });

  it('a repeated bad key is looked up once, then refused from memory', async () => {
    const authenticator = new Authenticator(handle.db, true, { cacheTtlMs: 60_000 });
    const bad = guess();
    const before = handle.statements.count;
    for (let i = 0; i < 10; i++) {
      await expect(authenticator.authenticate(`Bearer ${bad}`, '192.0.2.1')).rejects.toThrow(
        'Invalid or revoked API key',
      );
    }
    expect(handle.statements.count - before).toBe(1);
  });
});
