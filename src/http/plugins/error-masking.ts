/**
 * What a client sees of an error. GraphQL errors we raise on purpose (bad arguments, auth, limits) go out
 * as they are, without what yoga attaches for debugging; a domain error that reached GraphQL outside a
 * result union gets its code (a ValidationError: BAD_USER_INPUT naming the argument); everything else is
 * logged with the request id and masked by its fault class (INTERNAL_SERVER_ERROR, TIMEOUT,
 * SERVICE_UNAVAILABLE), never with SQL, a stack or a driver's words.
 */
import { GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import { DomainError } from '../../common/errors';
import { toGraphQLError } from '../../graphql/errors';
import type { Metrics } from '../../observability/metrics';
import { classifyFault, errorForLog } from '../faults';
import { currentRequestId } from '../request-context';

/**
 * Removes what yoga attaches for debugging (e.g. the JSON parser's message echoing the body). Yoga
 * answers `application/json` requests with 200 unless an error carries such an `originalError`, so the
 * `http.spec` flag (which asks for that 200) goes too: a malformed body keeps its 400.
 */
function withoutInternals(error: GraphQLError): GraphQLError {
  if (!error.extensions || !('originalError' in error.extensions)) return error;
  const { originalError: _dropped, ...extensions } = error.extensions;
  const http = extensions.http as { spec?: boolean } | undefined;
  if (http?.spec) {
    const { spec: _spec, ...rest } = http;
    extensions.http = rest;
  }
  return new GraphQLError(error.message, { nodes: error.nodes, path: error.path, extensions });
}

/** Yoga's `maskedErrors.maskError`. */
export function errorMasker(logger: Logger, metrics?: Metrics) {
  return function maskError(error: unknown): Error {
    const original = error instanceof GraphQLError ? error.originalError : error;
    // Our own GraphQLErrors (bad arguments, auth, limits) are meant for the client.
    if (error instanceof GraphQLError && (!original || original instanceof GraphQLError))
      return withoutInternals(error);
    const located = error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {};
    if (original instanceof DomainError) {
      const mapped = toGraphQLError(original);
      return new GraphQLError(mapped.message, { ...located, extensions: mapped.extensions });
    }
    const requestId = currentRequestId();
    const fault = classifyFault(original ?? error);
    metrics?.fault(fault);
    logger.error({ ...errorForLog(original ?? error), requestId, fault: fault.code }, 'unexpected error');
    return new GraphQLError(fault.message, {
      ...located,
      extensions: {
        code: fault.code,
        requestId,
        ...(fault.status ? { http: { status: fault.status } } : {}),
      },
    });
  };
}
