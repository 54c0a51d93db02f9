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
import { z } from 'zod';
import { parse } from '../common/validation';
import { LIMITS } from '../config';
import type { Db } from '../db/client';
import { type JsonEndpointOptions, jsonEndpoint } from '../http/json-endpoint';
import { type AssignmentDeps, type AssignmentResult, assignArgs, assignVariant } from './service';

export const ASSIGNMENTS_PATH = '/v1/assignments';

export interface AssignmentEndpointOptions extends JsonEndpointOptions {
  db: Db;
  deps: AssignmentDeps;
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

export function createAssignmentEndpoint(options: AssignmentEndpointOptions) {
  const { db, logger, deps } = options;
  return jsonEndpoint(options, {
    path: ASSIGNMENTS_PATH,
    method: 'POST',
    scope: 'assign',
    async handle(input, { requestId, auth }) {
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
    },
  });
}
