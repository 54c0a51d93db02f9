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
import type { Db } from '../db/client';
import { type JsonEndpointOptions, jsonEndpoint } from '../http/json-endpoint';
import { type AssignmentDeps, type AssignmentResult, assignRequested } from './service';

export const ASSIGNMENTS_PATH = '/v1/assignments';

export interface AssignmentEndpointOptions extends JsonEndpointOptions {
  db: Db;
  deps: AssignmentDeps;
}

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
      const started = performance.now();
      const { results, list } = await assignRequested(db, input, deps);
      logger.info(
        {
          requestId,
          route: ASSIGNMENTS_PATH,
          actor: auth.name,
          experiments: results.length,
          durationMs: Math.round((performance.now() - started) * 10) / 10,
        },
        'assignment',
      );
      return list ? { assignments: results.map(present) } : present(results[0]);
    },
  });
}
