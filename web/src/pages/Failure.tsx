import type { CombinedError } from '@urql/core';

export function Failure({ error }: { error: CombinedError }) {
  return (
    <main>
      <h1>Something went wrong</h1>
      <p role="alert">{error.graphQLErrors[0]?.message ?? error.networkError?.message ?? error.message}</p>
    </main>
  );
}
