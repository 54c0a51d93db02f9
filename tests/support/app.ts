/** The yoga app over a test database, and a tiny GraphQL-over-HTTP helper that goes through `app.fetch`. */
import pino from 'pino';
import { securityConfigFromEnv } from '../../src/config';
import type { DatabaseHandle } from '../../src/db/client';
import { createApp, type App } from '../../src/http/app';

/**
 * The app as a developer runs it locally (no API keys, GraphiQL and introspection on), whatever the
 * environment of the test run says (a DATABASE_URL there would otherwise switch authentication on).
 * Unexpected errors are logged, not returned: TEST_LOG_LEVEL=error shows them while debugging a test.
 */
export function createTestApp(handle: DatabaseHandle): App {
  return createApp({
    db: handle.db,
    logger: pino({ level: process.env.TEST_LOG_LEVEL || 'silent' }),
    security: securityConfigFromEnv({}),
  });
}

export interface GraphQLResponse<T = any> {
  data?: T;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

/** POSTs one operation and returns the parsed JSON body (whatever the HTTP status). */
export async function gql<T = any>(
  app: App,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GraphQLResponse<T>> {
  const response = await app.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse<T>;
}

/** Like gql, but fails the test with the errors when the response has any. */
export async function gqlOk<T = any>(
  app: App,
  query: string,
  variables?: Record<string, unknown>,
): Promise<T> {
  const body = await gql<T>(app, query, variables);
  if (body.errors?.length || !body.data) {
    throw new Error(`GraphQL errors: ${JSON.stringify(body.errors ?? body)}`);
  }
  return body.data;
}
