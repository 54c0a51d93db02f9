/**
 * Rate limiting per API key on the real HTTP server, in-process and shared through Redis, for GraphQL and
 * the SDK route. In the system tier because a burst only proves the limit if it fits in the one-second
 * refill window, which a busy machine cannot promise; the limiter's refusal and its error mapping are
 * unit-tested in tests/unit/domain-errors.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
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

let handle: DatabaseHandle;
let assignKey: string;

beforeAll(async () => {
  handle = await openTestDatabase();
  assignKey = (await makeKey(handle.db, ['assign'])).key;
});
afterAll(async () => {
  await handle?.close();
});

describe('rate limiting per API key', () => {
  const limits = { rateLimitPerSecond: 5, rateLimitBurst: 5 };
  const LIST = 'query List { experiments(first: 1) { totalCount } }';

  /** Sends requests in quick succession and returns their statuses (all within one second). */
  async function burst(urls: string[], apiKey: string): Promise<{ statuses: number[]; last: any }> {
    const started = Date.now();
    const statuses: number[] = [];
    let last: any;
    for (const url of urls) {
      last = await postGraphQL(url, LIST, {}, { key: apiKey });
      statuses.push(last.status);
    }
    // The budget refills every second: the burst only proves something if it fitted in one.
    expect(Date.now() - started).toBeLessThan(1000);
    return { statuses, last };
  }

  it('in-process: the 6th request in a burst gets 429 RATE_LIMITED with retry-after; another key is unaffected', async () => {
    const limiter = await createRateLimiter(productionSecurity(limits));
    const server = await startTestServer(handle, {
      security: productionSecurity(limits),
      rateLimiter: limiter,
    });
    try {
      const a = await makeKey(handle.db, ['read']);
      const b = await makeKey(handle.db, ['read']);
      const { statuses, last } = await burst(Array(6).fill(server.url), a.key);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      expect(last.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      expect(last.body.errors).toEqual([
        {
          message: expect.stringMatching(/^Rate limit exceeded; retry in \d+ s$/),
          extensions: { code: 'RATE_LIMITED', retryAfterSeconds: Number(last.headers.get('retry-after')) },
        },
      ]);
      expect((await postGraphQL(server.url, LIST, {}, { key: b.key })).status).toBe(200);
    } finally {
      await server.close();
      await limiter?.close();
    }
  });

  it('with REDIS_URL, two instances share one budget', async () => {
    const security = productionSecurity({ ...limits, redisUrl: 'redis://127.0.0.1:6379' });
    const limiters: RateLimiter[] = [];
    const servers: TestServer[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const limiter = await createRateLimiter(security);
        limiters.push(limiter!);
        servers.push(await startTestServer(handle, { security, rateLimiter: limiter }));
      }
      // A new key per run: its id is the bucket's name in Redis.
      const { key: shared } = await makeKey(handle.db, ['read']);
      const urls = [0, 1, 0, 1, 0, 1].map((i) => servers[i].url);
      const { statuses, last } = await burst(urls, shared);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      expect(last.body.errors[0].extensions.code).toBe('RATE_LIMITED');
      expect(last.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    } finally {
      for (const server of servers) await server.close();
      for (const limiter of limiters) await limiter.close();
    }
  });
});

describe('POST /v1/assignments', () => {
  it('shares the rate limit of the key: 429 RATE_LIMITED with Retry-After', async () => {
    const limiter = await createRateLimiter(productionSecurity({ rateLimitPerSecond: 2, rateLimitBurst: 2 }));
    const limited = await startTestServer(handle, { security: productionSecurity(), rateLimiter: limiter });
    try {
      const experiment = await createRunningExperiment(handle.db);
      const statuses: number[] = [];
      let last: any;
      for (let i = 0; i < 4; i++) {
        last = await rawPost(
          `${limited.base}/v1/assignments`,
          JSON.stringify({ experimentKey: experiment.key, userId: `limited-${i}` }),
          { key: assignKey },
        );
        statuses.push(last.status);
      }
      expect(statuses.slice(0, 2)).toEqual([200, 200]);
      expect(statuses.at(-1)).toBe(429);
      expect(last.body.error.code).toBe('RATE_LIMITED');
      expect(Number(last.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    } finally {
      await limited.close();
      await limiter?.close();
    }
  });
});
