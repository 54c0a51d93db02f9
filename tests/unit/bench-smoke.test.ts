/**
 * `npm run bench -- --smoke` runs in CI on a shared machine. Its load runs used to last one second, so a
 * busy machine could answer nothing in the window and the check failed with "0 bad of 0". Smoke runs
 * are now counted in requests: they wait for their answers however slow they are, and judge those.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { judgeLoad, type LoadResult, runLoad } from '../../bench/lib/load';
import { SIZES } from '../../bench/lib/options';

/** Slower than the old one-second window for every answer: what a loaded machine looks like. */
const DELAY_MS = 1_200;

let server: Server;
let origin: string;
let received = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: { ok: true } }));
      }, DELAY_MS);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
});

describe('bench smoke runs', () => {
  it('are counted in requests, never in seconds', () => {
    expect(SIZES.smoke.assignment.run).toEqual({ requests: expect.any(Number) });
    expect(SIZES.smoke.dashboard.run).toEqual({ requests: expect.any(Number) });
    expect(SIZES.smoke.reads.run).toEqual({ requests: expect.any(Number) });
    expect(SIZES.smoke.reads.warmup).toEqual({ requests: expect.any(Number) });
    expect(SIZES.smoke.assignment.warmupSeconds).toBe(0);
  });

  it('get every answer from a server slower than the old window, and pass on them', async () => {
    const length = { requests: 20 };
    const result = await runLoad({
      origin,
      connections: SIZES.smoke.dashboard.connections,
      length,
      body: () => JSON.stringify({ query: '{ ok }' }),
      accept: (data) => data.ok === true,
    });
    expect(result.responses).toBe(20);
    expect(result.bad).toBe(0);
    expect(received).toBeGreaterThanOrEqual(20);
    expect(judgeLoad(result, length)).toMatchObject({ pass: true });
  });
});

describe('judgeLoad', () => {
  const result = (responses: number, bad: number): LoadResult => ({
    requestsPerSecond: 0,
    p50: 0,
    p99: 0,
    responses,
    good: responses - bad,
    bad,
    non2xx: bad,
    errors: 0,
    timeouts: 0,
    firstBad: null,
    durationSeconds: 1,
  });

  it('fails a counted run that did not get all its answers, and says so', () => {
    const judged = judgeLoad(result(0, 0), { requests: 100 });
    expect(judged.pass).toBe(false);
    expect(judged.detail).toContain('only 0 of 100 requests answered');
    expect(judgeLoad(result(99, 0), { requests: 100 }).pass).toBe(false);
  });

  it('passes at most 0.1% bad answers', () => {
    expect(judgeLoad(result(1000, 1), { requests: 1000 }).pass).toBe(true);
    expect(judgeLoad(result(1000, 2), { requests: 1000 }).pass).toBe(false);
    expect(judgeLoad(result(10, 0), { durationSeconds: 5 }).pass).toBe(true);
    expect(judgeLoad(result(0, 0), { durationSeconds: 5 }).pass).toBe(false);
  });
});
