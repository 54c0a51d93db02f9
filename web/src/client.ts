/** One urql client: queries and mutations over fetch, subscriptions over Server-Sent Events (graphql-sse). */
import { Client, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient as createSseClient } from 'graphql-sse';
import { authHeaders } from './auth';

const sse = createSseClient({
  url: '/graphql',
  headers: authHeaders,
  // The service answers each subscription on its own request (graphql-sse "distinct connections").
  singleConnection: false,
  // A dashboard stays open across server restarts: keep reconnecting, at most 30 s apart. Each
  // subscription's first push is the current state, so nothing missed meanwhile stays missed.
  retryAttempts: Number.POSITIVE_INFINITY,
  retry: (retries) =>
    new Promise((resolve) =>
      setTimeout(resolve, Math.min(30_000, 1000 * 2 ** retries) + Math.random() * 500),
    ),
});

export const client = new Client({
  url: '/graphql',
  requestPolicy: 'network-only',
  fetchOptions: () => ({ headers: authHeaders() }),
  exchanges: [
    fetchExchange,
    subscriptionExchange({
      forwardSubscription(request) {
        const input = { ...request, query: request.query || '' };
        return {
          subscribe(sink) {
            const unsubscribe = sse.subscribe(input, sink);
            return { unsubscribe };
          },
        };
      },
    }),
  ],
});

/** True when the server refused the call for want of a (valid) key. */
export function needsKey(
  error:
    | { response?: { status?: number }; graphQLErrors?: { extensions?: Record<string, unknown> }[] }
    | undefined,
): boolean {
  if (!error) return false;
  if (error.response?.status === 401) return true;
  return (error.graphQLErrors ?? []).some((e) => e.extensions?.code === 'UNAUTHENTICATED');
}
