/**
 * The HTTP server: GraphQL at /graphql, liveness at /healthz, readiness (database answers) at /readyz, and
 * the routes given to it (POST /v1/assignments for SDKs, see src/assignments/http.ts).
 * Bodies over the limit are refused before parsing; every request has an id (x-request-id, echoed back)
 * and a deadline, so a request stuck waiting for the database fails cleanly instead of hanging.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { DatabaseHandle } from '../db/client';
import type { Metrics } from '../observability/metrics';
import { type Tracing, withServerSpan } from '../observability/tracing';
import type { App } from './app';
import { TIMED_OUT, timeoutMessage, withDeadline } from './deadline';
import { errorForLog } from './faults';
import { json, readBody } from './node';
import { type RequestStore, requestContext } from './request-context';

const READY_TIMEOUT_MS = 2000;

export interface HttpOptions {
  maxBodyBytes: number;
  requestTimeoutMs: number;
  /** Where an unexpected failure of a request is logged, with the request id its 500 carries. */
  logger?: Logger;
  /** Counts every request by route, operation and status (GET /metrics). */
  metrics?: Metrics;
  /** A server span per request when tracing is on. */
  tracing?: Tracing | null;
  /** The dashboard's pages and assets (src/http/dashboard.ts); without one, `/` redirects to /graphql. */
  dashboard?: ((req: IncomingMessage, res: ServerResponse, path: string) => boolean) | null;
}

async function ready(handle: DatabaseHandle): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      handle.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

const graphqlError = (message: string, code: string, requestId: string) => ({
  errors: [{ message, extensions: { code, requestId } }],
});

async function handleGraphQL(
  app: App,
  req: IncomingMessage,
  res: ServerResponse,
  options: HttpOptions,
  requestId: string,
) {
  // The fetch API needs an absolute URL, which a malformed Host header (`bad host[`) cannot make.
  const url = `http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`;
  if (!URL.canParse(url)) {
    json(res, 400, graphqlError('Invalid Host header or request target', 'BAD_REQUEST', requestId), {
      'x-request-id': requestId,
    });
    req.resume();
    return;
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const body = hasBody ? await readBody(req, options.maxBodyBytes) : undefined;
  if (body === null) {
    json(
      res,
      413,
      graphqlError(`Request body exceeds ${options.maxBodyBytes} bytes`, 'PAYLOAD_TOO_LARGE', requestId),
      { connection: 'close', 'x-request-id': requestId },
    );
    req.resume();
    return;
  }
  // node:http's header object as it is (names lower-cased, repeats joined): yoga's Request reads it
  // lazily instead of copying every header. `set-cookie` alone stays an array; no GraphQL request needs it.
  const headers = ('set-cookie' in req.headers ? withoutSetCookie(req.headers) : req.headers) as Record<
    string,
    string
  >;
  if (wantsEventStream(req)) {
    await streamGraphQL(app, req, res, url, method, headers, body, requestId);
    return;
  }
  // TIMED_OUT only when nothing of the request committed; the app's database then lets nothing commit.
  const response = await withDeadline(options.requestTimeoutMs, (deadline) =>
    app.fetch(
      url,
      // A view of the body read, not a copy (a Buffer's memory is a plain ArrayBuffer, never shared).
      {
        method,
        headers,
        body: body ? new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.length) : undefined,
      },
      { remoteAddress: req.socket.remoteAddress, deadline },
    ),
  );
  if (response === TIMED_OUT) {
    options.metrics?.error('TIMEOUT');
    json(res, 503, graphqlError(timeoutMessage(options.requestTimeoutMs), 'TIMEOUT', requestId), {
      'x-request-id': requestId,
    });
    return;
  }
  const out: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    out[name] = value;
  });
  out['x-request-id'] = requestId;
  res.writeHead(response.status, out);
  // A GraphQL result is a JSON string: written as it is (encoded once, by the socket write) rather than
  // encoded to bytes and copied. Anything else (GraphiQL's compressed page) goes as bytes.
  if (out['content-encoding'] === undefined && out['content-type']?.includes('json'))
    res.end(await response.text());
  else res.end(Buffer.from(await response.arrayBuffer()));
}

/** A subscription over Server-Sent Events (graphql-sse): `Accept: text/event-stream`. */
function wantsEventStream(req: IncomingMessage): boolean {
  return req.headers.accept?.includes('text/event-stream') ?? false;
}

/**
 * A Server-Sent Events answer: long-lived by design, so no request deadline (each push is a short read),
 * and written chunk by chunk as yoga produces it. When the client goes away the stream is cancelled,
 * which ends the subscription and releases its listener.
 */
async function streamGraphQL(
  app: App,
  req: IncomingMessage,
  res: ServerResponse,
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  requestId: string,
) {
  const aborted = new AbortController();
  res.once('close', () => aborted.abort());
  const response = await app.fetch(
    url,
    {
      method,
      headers,
      body: body ? new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.length) : undefined,
      signal: aborted.signal,
    },
    { remoteAddress: req.socket.remoteAddress },
  );
  const out: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    out[name] = value;
  });
  out['x-request-id'] = requestId;
  // Proxies (nginx) would otherwise buffer the stream.
  if (out['content-type']?.includes('text/event-stream')) out['x-accel-buffering'] = 'no';
  res.writeHead(response.status, out);
  res.flushHeaders();
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  res.once('close', cancel);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      res.write(value);
    }
  } catch {
    // The client went away mid-stream: the cancellation above already ended the subscription.
  } finally {
    res.off('close', cancel);
    res.end();
  }
}

function withoutSetCookie(headers: IncomingMessage['headers']): IncomingMessage['headers'] {
  const { 'set-cookie': _cookies, ...rest } = headers;
  return rest;
}

const BUILT_IN = new Set(['/graphql', '/healthz', '/readyz', '/']);

function routeLabel(path: string, routes: Record<string, Route>): string {
  if (BUILT_IN.has(path) || Object.hasOwn(routes, path)) return path;
  if (path.startsWith('/experiments/')) return '/experiments/:key';
  return path.startsWith('/assets/') ? '/assets' : 'other';
}

/** A handler for one path outside GraphQL (e.g. the SDK assignment endpoint); it answers every error itself. */
export type Route = (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<void>;

export function createHttpServer(
  app: App,
  handle: DatabaseHandle,
  options: HttpOptions = { maxBodyBytes: 1024 * 1024, requestTimeoutMs: 15_000 },
  routes: Record<string, Route> = {},
): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && /^[\w.-]{1,128}$/.test(header) ? header : randomUUID();
    const store: RequestStore = { requestId };
    const method = req.method ?? 'GET';
    // Paths are client-chosen: metrics and span names use the route, `other` for unknown paths.
    const route = routeLabel(path, routes);
    withServerSpan(
      options.tracing,
      `${method} ${route}`,
      req.headers,
      { 'http.request.method': method, 'http.route': route, 'sona.request_id': requestId },
      (span) => {
        const started = performance.now();
        res.once('close', () => {
          options.metrics?.request(
            route,
            store.operation,
            res.statusCode,
            (performance.now() - started) / 1000,
          );
          if (!span) return;
          span.setAttribute('http.response.status_code', res.statusCode);
          if (store.operation) {
            span.setAttribute('graphql.operation.name', store.operation);
            span.updateName(`${method} ${route} ${store.operation}`);
          }
          span.end();
        });
        requestContext.run(store, () => serve(req, res, path, requestId));
      },
    );
  });

  function serve(req: IncomingMessage, res: ServerResponse, path: string, requestId: string) {
    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      void ready(handle).then((ok) =>
        json(res, ok ? 200 : 503, { status: ok ? 'ready' : 'unavailable', database: handle.driver }),
      );
      return;
    }
    if (options.dashboard?.(req, res, path)) return;
    if (path === '/') {
      res.writeHead(302, { location: '/graphql' });
      res.end();
      return;
    }
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    const failed = (err: unknown) =>
      options.logger?.error({ ...errorForLog(err), requestId, path, status: 500 }, 'unexpected error');
    if (route) {
      route(req, res, requestId).catch((err) => {
        failed(err);
        json(
          res,
          500,
          { error: { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.', requestId } },
          { 'x-request-id': requestId },
        );
      });
      return;
    }
    handleGraphQL(app, req, res, options, requestId).catch((err) => {
      failed(err);
      json(res, 500, graphqlError('Unexpected error.', 'INTERNAL_SERVER_ERROR', requestId), {
        'x-request-id': requestId,
      });
    });
  }
}
