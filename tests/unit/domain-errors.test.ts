/**
 * The authenticator and the rate limiter speak the domain's language: they throw UnauthenticatedError and
 * RateLimitedError, never a GraphQLError; GraphQL and the SDK route each map them (401 / 429 with their
 * headers, tested through HTTP in security-auth and assignment-endpoint).
 */
import { describe, expect, it } from '@jest/globals';
import { GraphQLError } from 'graphql';
import { Authenticator } from '../../src/auth/authenticator';
import { RateLimitedError, UnauthenticatedError } from '../../src/common/errors';
import type { Db } from '../../src/db/client';
import { toGraphQLError } from '../../src/graphql/errors';
import { createRateLimiter } from '../../src/http/rate-limit';

// Both refusals below happen before any query: the authenticator never touches this database.
const noDatabase = {} as Db;

describe('domain errors of the HTTP edge', () => {
  it.each([
    ['no header', null],
    ['a malformed header', 'Basic abc'],
  ])('the authenticator refuses %s with UnauthenticatedError', async (_what, header) => {
    const refusal = await new Authenticator(noDatabase, true).authenticate(header).catch((err) => err);
    expect(refusal).toBeInstanceOf(UnauthenticatedError);
    expect(refusal).not.toBeInstanceOf(GraphQLError);
    expect(refusal.code).toBe('UNAUTHENTICATED');
  });

  it('the rate limiter refuses with RateLimitedError carrying retryAfterSeconds', async () => {
    const limiter = await createRateLimiter({
      authRequired: true,
      graphiql: false,
      introspection: false,
      fieldSuggestions: false,
      maxBodyBytes: 1024,
      requestTimeoutMs: 1000,
      authFailuresPerMinute: 0,
      cacheTtlMs: 5000,
      rateLimitPerSecond: 1,
      rateLimitBurst: 1,
      redisUrl: null,
      shutdownTimeoutMs: 1000,
    });
    await limiter!.consume('k');
    const refusal = await limiter!.consume('k').catch((err) => err);
    await limiter!.close();
    expect(refusal).toBeInstanceOf(RateLimitedError);
    expect(refusal).not.toBeInstanceOf(GraphQLError);
    expect(refusal.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });

  it('GraphQL maps them to its errors with the HTTP status and headers of the refusal', () => {
    expect(toGraphQLError(new UnauthenticatedError('Missing API key')).extensions).toEqual({
      code: 'UNAUTHENTICATED',
      http: { status: 401, headers: { 'www-authenticate': 'Bearer' } },
    });
    expect(toGraphQLError(new RateLimitedError(3)).extensions).toEqual({
      code: 'RATE_LIMITED',
      retryAfterSeconds: 3,
      http: { status: 429, headers: { 'retry-after': '3' } },
    });
  });
});
