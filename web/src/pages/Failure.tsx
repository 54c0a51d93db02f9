import type { CombinedError } from '@urql/core';
import { apiKey } from '../auth';
import { needsKey } from '../client';
import { SignIn } from './SignIn';

/** A failed request: the sign-in form when the server wants a (valid) key, else the error in words. */
export function Failure({ error }: { error: CombinedError }) {
  if (needsKey(error)) return <SignIn rejected={apiKey() !== null} />;
  return (
    <main>
      <h1>Something went wrong</h1>
      <p role="alert">{error.graphQLErrors[0]?.message ?? error.networkError?.message ?? error.message}</p>
    </main>
  );
}
