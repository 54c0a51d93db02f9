/**
 * POST /v1/events: recordEvents without GraphQL, for SDKs (a GrowthBook `trackingCallback` posts its
 * exposures here). The same service call as the mutation, so the same validation, idempotency by eventId,
 * rejections by index, batch limit and scope; the same JSON pipeline and errors as /v1/assignments.
 *
 *   {"events": [{"kind": "EXPOSURE", "experimentKey": "k", "userId": "u", "variantId": "…", "eventId": "…"}]}
 *   → {"accepted": 1, "duplicates": 0, "rejected": [{"index", "code", "message", "fields"?}]}
 */
import { z } from 'zod';
import { ValidationError } from '../common/errors';
import { parse } from '../common/validation';
import { LIMITS } from '../config';
import type { Database } from '../db/client';
import type { AssignmentDeps } from '../assignments/service';
import { type JsonEndpointOptions, jsonEndpoint } from '../http/json-endpoint';
import { recordEvents } from './service';

export const EVENTS_PATH = '/v1/events';

export interface EventsEndpointOptions extends JsonEndpointOptions {
  db: Database;
  deps: AssignmentDeps;
}

// Each event is checked by recordEvents (a bad one is rejected by index); here only the envelope.
const body = z
  .object(
    {
      events: z.array(z.unknown(), { error: 'events must be a list' }).max(LIMITS.maxBatchSize, {
        error: `at most ${LIMITS.maxBatchSize} events per call`,
      }),
    },
    { error: 'the body must be a JSON object' },
  )
  .strict();

export function createEventsEndpoint(options: EventsEndpointOptions) {
  const { db, logger, deps } = options;
  return jsonEndpoint(options, {
    path: EVENTS_PATH,
    method: 'POST',
    scope: 'assign',
    async handle(input, { requestId, auth }) {
      const { events } = parse(body, input);
      const result = await recordEvents(db, events, deps);
      logger.info(
        { requestId, route: EVENTS_PATH, actor: auth.name, events: events.length, accepted: result.accepted },
        'events',
      );
      return {
        accepted: result.accepted,
        duplicates: result.duplicates,
        rejected: result.rejected.map(({ index, code, message, error }) => ({
          index,
          code,
          message,
          ...(error instanceof ValidationError ? { fields: error.fieldErrors } : {}),
        })),
      };
    },
  });
}
