/**
 * autocannon against the child server: a fresh body per request (setupRequest), every response checked
 * (status 2xx, then for GraphQL no `errors` and the caller's predicate on `data`; for a plain JSON
 * endpoint the predicate on the whole body). A run lasts a duration (throughput figures) or a number of
 * requests (smoke runs: their correctness checks need answers, however slow a busy machine makes them).
 */
import autocannon from 'autocannon';
import { requestHeaders } from './graphql';

/** How long a run lasts: seconds, or until this many requests have been answered. */
export type LoadLength = { durationSeconds: number } | { requests: number };

export interface LoadOptions {
  origin: string;
  connections: number;
  length: LoadLength;
  /** The JSON body of the next request; called once per request. */
  body: () => string;
  /** True when `data` (GraphQL) or the body (plain JSON) is the answer expected; else a bad response. */
  accept: (data: any) => boolean;
  /** Default /graphql. */
  path?: string;
  /** Default graphql. */
  protocol?: 'graphql' | 'json';
  /** Default POST (with `body()`); GET sends no body. */
  method?: 'GET' | 'POST';
  /** Sent with every request, beside the API key. */
  headers?: Record<string, string>;
  /**
   * The status every answer must have, when it is not a 2xx with a JSON body (e.g. 304 Not Modified,
   * which has no body: `accept` is then not called).
   */
  expectStatus?: number;
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
    let ok =
      options.expectStatus === undefined ? status >= 200 && status < 300 : status === options.expectStatus;
    if (ok && options.expectStatus === undefined) {
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
        ...('requests' in options.length
          ? { amount: options.length.requests }
          : { duration: options.length.durationSeconds }),
        timeout: 30,
        requests: [
          options.method === 'GET'
            ? {
                method: 'GET',
                path: options.path ?? '/graphql',
                headers: { ...requestHeaders(), ...options.headers },
                onResponse,
              }
            : {
                method: 'POST',
                path: options.path ?? '/graphql',
                headers: { ...requestHeaders(), ...options.headers },
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

/** Share of bad answers a run may have and still pass its correctness check. */
export const MAX_BAD_SHARE = 0.001;

/**
 * The correctness check of a run: enough answers to judge (every request of a counted run, at least one
 * of a timed one), and at most 0.1% of them bad.
 */
export function judgeLoad(result: LoadResult, length: LoadLength): { pass: boolean; detail: string } {
  const needed = 'requests' in length ? length.requests : 1;
  const share = result.responses ? result.bad / result.responses : 1;
  const pass = result.responses >= needed && share <= MAX_BAD_SHARE;
  const answered =
    result.responses < needed ? `; only ${result.responses} of ${needed} requests answered` : '';
  return {
    pass,
    detail: `${result.bad} bad (non-2xx ${result.non2xx}, GraphQL/unexpected ${result.bad - result.errors}, socket errors ${result.errors}, timeouts ${result.timeouts}) of ${result.responses}${answered}${result.firstBad ? `; first: ${result.firstBad}` : ''}`,
  };
}
