/** Plain fetch GraphQL calls to the child server (127.0.0.1 only), with a deadline on every request. */

let apiKey: string | null = null;

/** The bench's API key (admin scope), sent by every request of the harness. */
export function useApiKey(key: string): void {
  apiKey = key;
}

/** Headers of every GraphQL POST: JSON, and the API key when there is one. */
export function requestHeaders(): Record<string, string> {
  return { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) };
}

export interface GraphQLResponse<T> {
  data?: T;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

export class GraphQLCallError extends Error {}

export async function graphql<T>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  timeoutMs = 60_000,
): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...requestHeaders(), accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body: GraphQLResponse<T>;
  try {
    body = JSON.parse(text) as GraphQLResponse<T>;
  } catch {
    throw new GraphQLCallError(`HTTP ${res.status}: ${text.slice(0, 300)}`);
  }
  if (!res.ok || body.errors?.length || !body.data) {
    throw new GraphQLCallError(
      `HTTP ${res.status}: ${body.errors?.map((e) => e.message).join('; ') ?? text.slice(0, 300)}`,
    );
  }
  return body.data;
}

/** A mutation result union: throws unless the success type came back. */
export function expectType<T extends { __typename: string }>(value: T, typename: string, what: string): T {
  if (value.__typename !== typename) {
    throw new GraphQLCallError(`${what}: got ${value.__typename} ${JSON.stringify(value)}`);
  }
  return value;
}
