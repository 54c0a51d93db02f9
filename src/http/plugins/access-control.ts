/**
 * Authentication and rate limiting before the document is even parsed: a client without a valid key
 * learns nothing about the schema (no validation errors naming fields) and costs no parsing. The
 * authenticator and the rate limiter throw domain errors; here they become GraphQL errors with their
 * HTTP status (401, 429) and headers.
 */
import type { Plugin } from 'graphql-yoga';
import type { Authenticator, Principal } from '../../auth/authenticator';
import { DomainError } from '../../common/errors';
import { toGraphQLError } from '../../graphql/errors';
import type { RateLimiter } from '../rate-limit';

export interface AccessControlContext {
  remoteAddress?: string;
}

export function useAccessControl(
  authenticator: Authenticator,
  rateLimiter: RateLimiter | null | undefined,
  /** Filled per request, for the context factory. */
  principals: WeakMap<Request, Principal>,
): Plugin {
  return {
    async onParams({ request, context }) {
      try {
        const { remoteAddress } = context as AccessControlContext;
        const auth = await authenticator.authenticate(request.headers.get('authorization'), remoteAddress);
        await rateLimiter?.consume(auth.keyId ?? `addr:${remoteAddress ?? 'unknown'}`);
        principals.set(request, auth);
      } catch (err) {
        throw err instanceof DomainError ? toGraphQLError(err) : err;
      }
    },
  };
}
