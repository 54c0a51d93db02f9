/**
 * The plain-JSON endpoints for SDKs (POST /v1/assignments, POST /v1/events, GET /v1/sdk/payload): one
 * request pipeline, so all of them check the same things in the same order with the same answers. Method,
 * content type, then the API key and the rate limit before the body is even read, then the `assign` scope,
 * the body limit and JSON; the request deadline; and errors as `{"error": {"code", "message", "fields"?,
 * "requestId"}}` with the HTTP status of the code. Requests with a body must be `application/json`, which a
 * cross-site form cannot send (no CSRF).
 */
import type { Scope } from '../auth/scopes';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Authenticator, Principal } from '../auth/authenticator';
import { DomainError, RateLimitedError, UnauthenticatedError, ValidationError } from '../common/errors';
import { TIMED_OUT, timeoutMessage, withDeadline } from './deadline';
import type { Metrics } from '../observability/metrics';
import { classifyFault, errorForLog } from './faults';
import { json, readBody } from './node';
import type { RateLimiter } from './rate-limit';

/** A failure with its HTTP status; everything else is classified as a fault. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** A domain error as the HTTP answer: its code, with the status (and headers) the code stands for. */
export function fromDomainError(error: DomainError): HttpError {
  if (error instanceof ValidationError) {
    return new HttpError(400, error.code, error.message, {}, { fields: error.fieldErrors });
  }
  if (error instanceof UnauthenticatedError) {
    return new HttpError(401, error.code, error.message, { 'www-authenticate': 'Bearer' });
  }
  if (error instanceof RateLimitedError) {
    return new HttpError(
      429,
      error.code,
      error.message,
      { 'retry-after': String(error.retryAfterSeconds) },
      { retryAfterSeconds: error.retryAfterSeconds },
    );
  }
  return new HttpError(400, error.code, error.message);
}

export interface JsonEndpointOptions {
  logger: Logger;
  authenticator: Authenticator;
  rateLimiter?: RateLimiter | null;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  /** Counts the errors answered, by code, and statement timeouts (GET /metrics). */
  metrics?: Metrics;
}

export interface JsonRequest {
  req: IncomingMessage;
  requestId: string;
  auth: Principal;
}

/** What a GET handler answers: a body with its headers, or 304 (`notModified`). */
export interface RawAnswer {
  status: number;
  headers: Record<string, string | number>;
  body?: string;
}

interface Route {
  path: string;
  method: 'GET' | 'POST';
  /** The scope a key needs (`assign` for the SDK routes, `read` for metrics). */
  scope: Scope;
  /** POST: gets the parsed JSON body and answers a JSON value. GET: answers a RawAnswer. */
  handle: (input: unknown, request: JsonRequest) => Promise<unknown>;
}

/** Wraps a handler in the shared pipeline; the result is a route for createHttpServer. */
export function jsonEndpoint(options: JsonEndpointOptions, route: Route) {
  const { logger, authenticator, rateLimiter } = options;

  async function handle(req: IncomingMessage, requestId: string): Promise<unknown> {
    const allowed = route.method === 'GET' ? ['GET', 'HEAD'] : ['POST'];
    if (!allowed.includes(req.method ?? '')) {
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', `Use ${route.method}`, { allow: allowed.join(', ') });
    }
    if (route.method === 'POST') {
      const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (contentType !== 'application/json') {
        throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as Content-Type: application/json');
      }
    }
    // As for GraphQL: who is asking, and whether they may, before the body is even read.
    const auth = await authenticator.authenticate(
      req.headers.authorization ?? null,
      req.socket.remoteAddress,
    );
    await rateLimiter?.consume(auth.keyId ?? `addr:${req.socket.remoteAddress ?? 'unknown'}`);
    if (!auth.scopes.has(route.scope)) {
      throw new HttpError(
        403,
        'FORBIDDEN',
        `This API key lacks the ${route.scope} scope`,
        {},
        { requiredScopes: [route.scope] },
      );
    }
    if (route.method === 'GET') return route.handle(null, { req, requestId, auth });
    const raw = await readBody(req, options.maxBodyBytes);
    if (raw === null) {
      throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `Request body exceeds ${options.maxBodyBytes} bytes`, {
        connection: 'close',
      });
    }
    let input: unknown;
    try {
      input = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, 'BAD_REQUEST', 'The body is not valid JSON');
    }
    return route.handle(input, { req, requestId, auth });
  }

  return async function jsonRoute(req: IncomingMessage, res: ServerResponse, requestId: string) {
    try {
      // Work that finishes after the TIMEOUT answer is harmless for these endpoints: assignment and event
      // recording are idempotent, so a retry gets the same answer.
      const result = await withDeadline(options.requestTimeoutMs, () => handle(req, requestId));
      if (result === TIMED_OUT) {
        throw new HttpError(503, 'TIMEOUT', timeoutMessage(options.requestTimeoutMs));
      }
      if (route.method === 'GET') {
        const answer = result as RawAnswer;
        res.writeHead(answer.status, { ...answer.headers, 'x-request-id': requestId });
        res.end(req.method === 'HEAD' ? undefined : answer.body);
        return;
      }
      json(res, 200, result, { 'x-request-id': requestId });
    } catch (caught) {
      let error = caught;
      if (error instanceof DomainError) error = fromDomainError(error);
      if (!(error instanceof HttpError)) {
        const fault = classifyFault(error);
        options.metrics?.fault(fault);
        logger.error(
          { ...errorForLog(error), requestId, fault: fault.code, route: route.path },
          'unexpected error',
        );
        error = new HttpError(fault.status ?? 500, fault.code, fault.message);
      }
      const { status, code, message, headers, extra } = error as HttpError;
      options.metrics?.error(code);
      json(
        res,
        status,
        { error: { code, message, ...extra, requestId } },
        { ...headers, 'x-request-id': requestId },
      );
      // A refused body may still be arriving; drain it so the connection can close cleanly.
      if (!req.readableEnded) req.resume();
    }
  };
}
