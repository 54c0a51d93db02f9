/**
 * POST /v1/assignments: assignment for SDKs and services, without GraphQL. It is the hot path of the
 * service (one call per page view), and GraphQL's per-request work (parsing, validation, execution,
 * fetch-API conversion) costs several times the assignment itself; this endpoint answers the same
 * question with the same service, keys, scopes, rate limit, deadline and error codes.
 *
 *   {"experimentKey": "k", "userId": "u"}            → the Assignment as JSON
 *   {"experimentKeys": ["a", "b"], "userId": "u"}    → {"assignments": [...]}, in the order asked
 *   either with "attributes": {...}                    → targeting conditions are evaluated against them
 *
 * Errors are `{"error": {"code", "message", "fields"?, "requestId"}}` with the HTTP status of the code.
 * Requests must be `application/json`, which a cross-site form cannot send (no CSRF).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Authenticator } from '../auth/authenticator';
import { DomainError, RateLimitedError, UnauthenticatedError, ValidationError } from '../common/errors';
import { parse } from '../common/validation';
import { LIMITS } from '../config';
import type { Db } from '../db/client';
import { TIMED_OUT, timeoutMessage, withDeadline } from '../http/deadline';
import { classifyFault, errorForLog } from '../http/faults';
import { json, readBody } from '../http/node';
import type { RateLimiter } from '../http/rate-limit';
import { type AssignmentDeps, type AssignmentResult, assignArgs, assignVariant } from './service';

export const ASSIGNMENTS_PATH = '/v1/assignments';

export interface AssignmentEndpointOptions {
  db: Db;
  logger: Logger;
  authenticator: Authenticator;
  rateLimiter?: RateLimiter | null;
  deps: AssignmentDeps;
  maxBodyBytes: number;
  requestTimeoutMs: number;
}

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

// The same rules as the GraphQL mutation (assignmentArgs), for every key of a request: a bad one is a
// 400 naming it (`experimentKeys.1`), and nothing is assigned, so no bad string joins a shared statement.
const { experimentKey, userId, attributes } = assignArgs.shape;
const body = z
  .object(
    {
      userId,
      attributes,
      experimentKey: experimentKey.optional(),
      experimentKeys: z
        .array(experimentKey)
        .min(1, 'experimentKeys must not be empty')
        .max(LIMITS.maxAssignExperiments, `at most ${LIMITS.maxAssignExperiments} experimentKeys`)
        .optional(),
    },
    { error: 'the body must be a JSON object' },
  )
  .strict()
  .refine((b) => (b.experimentKey === undefined) !== (b.experimentKeys === undefined), {
    message: 'give either experimentKey or experimentKeys',
    path: ['experimentKey'],
  });

/** The Assignment as the GraphQL API shows it, as plain JSON. */
function present(result: AssignmentResult) {
  return {
    experimentKey: result.experimentKey,
    userId: result.userId,
    enrolled: result.enrolled,
    reason: result.reason,
    variant: result.variant
      ? {
          id: result.variant.id,
          name: result.variant.name,
          isControl: result.variant.isControl,
          config: result.variant.config,
        }
      : null,
    assignedAt: result.assignedAt?.toISOString() ?? null,
  };
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

export function createAssignmentEndpoint(options: AssignmentEndpointOptions) {
  const { db, logger, authenticator, rateLimiter, deps } = options;

  async function handle(req: IncomingMessage, requestId: string): Promise<unknown> {
    if (req.method !== 'POST') {
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'Use POST', { allow: 'POST' });
    }
    const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (contentType !== 'application/json') {
      throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as Content-Type: application/json');
    }
    // As for GraphQL: who is asking, and whether they may, before the body is even read.
    const auth = await authenticator.authenticate(
      req.headers.authorization ?? null,
      req.socket.remoteAddress,
    );
    await rateLimiter?.consume(auth.keyId ?? `addr:${req.socket.remoteAddress ?? 'unknown'}`);
    if (!auth.scopes.has('assign')) {
      throw new HttpError(
        403,
        'FORBIDDEN',
        'This API key lacks the assign scope',
        {},
        {
          requiredScopes: ['assign'],
        },
      );
    }
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
    const request = parse(body, input);
    const started = performance.now();
    const keys = request.experimentKeys ?? [request.experimentKey!];
    const results = await Promise.all(
      keys.map((key) => assignVariant(db, key, request.userId, deps, request.attributes)),
    );
    logger.info(
      {
        requestId,
        route: ASSIGNMENTS_PATH,
        actor: auth.name,
        experiments: keys.length,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
      },
      'assignment',
    );
    return request.experimentKeys ? { assignments: results.map(present) } : present(results[0]);
  }

  return async function assignmentsRoute(req: IncomingMessage, res: ServerResponse, requestId: string) {
    try {
      // An assignment that finishes after the TIMEOUT answer is harmless: it is idempotent, and a retry
      // gets the stored variant (the same one bucketing gives).
      const result = await withDeadline(options.requestTimeoutMs, () => handle(req, requestId));
      if (result === TIMED_OUT) {
        throw new HttpError(503, 'TIMEOUT', timeoutMessage(options.requestTimeoutMs));
      }
      json(res, 200, result, { 'x-request-id': requestId });
    } catch (caught) {
      let error = caught;
      if (error instanceof DomainError) error = fromDomainError(error);
      if (!(error instanceof HttpError)) {
        const fault = classifyFault(error);
        logger.error(
          { ...errorForLog(error), requestId, fault: fault.code, route: ASSIGNMENTS_PATH },
          'unexpected error',
        );
        error = new HttpError(fault.status ?? 500, fault.code, fault.message);
      }
      const { status, code, message, headers, extra } = error as HttpError;
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
