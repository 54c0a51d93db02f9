/**
 * autocannon against the child server: a fresh body per request (setupRequest), every response checked
 * (status 2xx, then for GraphQL no `errors` and the caller's predicate on `data`; for a plain JSON
 * endpoint the predicate on the whole body).
 */
import autocannon from 'autocannon';
import { requestHeaders } from './graphql';

export interface LoadOptions {
  origin: string;
  connections: number;
  durationSeconds: number;
  /** The JSON body of the next request; called once per request. */
  body: () => string;
  /** True when `data` (GraphQL) or the body (plain JSON) is the answer expected; else a bad response. */
  accept: (data: any) => boolean;
  /** Default /graphql. */
  path?: string;
  /** Default graphql. */
  protocol?: 'graphql' | 'json';
}

export interface LoadResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  responses: number;
  good: number;
  bad: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  firstBad: string | null;
  durationSeconds: number;
}

let current: { stop(): void } | null = null;

/** Stops a run in progress (SIGINT). */
export function stopLoad(): void {
  current?.stop();
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  let good = 0;
  let bad = 0;
  let firstBad: string | null = null;
  const onResponse = (status: number, body: string) => {
    let ok = status >= 200 && status < 300;
    if (ok) {
      try {
        const parsed = JSON.parse(body) as { data?: unknown; errors?: unknown[] };
        ok =
          options.protocol === 'json'
            ? options.accept(parsed)
            : !parsed.errors?.length && parsed.data != null && options.accept(parsed.data);
      } catch {
        ok = false;
      }
    }
    if (ok) good++;
    else {
      bad++;
      firstBad ??= `HTTP ${status}: ${body.slice(0, 300)}`;
    }
  };
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.origin,
        connections: options.connections,
        duration: options.durationSeconds,
        timeout: 30,
        requests: [
          {
            method: 'POST',
            path: options.path ?? '/graphql',
            headers: requestHeaders(),
            setupRequest: (request) => ({ ...request, body: options.body() }),
            onResponse,
          },
        ],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    current = instance as unknown as { stop(): void };
  });
  current = null;
  const responses = good + bad;
  return {
    requestsPerSecond: good / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    responses,
    good,
    bad: bad + result.errors,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    firstBad,
    durationSeconds: result.duration,
  };
}
