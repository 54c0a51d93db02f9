/**
 * A frontend on Apollo Client: its cache matches `... on Error { code message }` only when it knows which
 * types implement `Error`. possible-types.json (written by `npm run schema:print`) is that list, and the
 * README's two lines of setup make the errors arrive.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { POSSIBLE_TYPES_FILE, printedPossibleTypes } from '../../src/cli/print-schema';
import type { DatabaseHandle } from '../../src/db/client';
import type { App } from '../../src/http/app';
import { createTestApp } from '../support/app';
import { openTestDatabase } from '../support/db';
import { createRunningExperiment } from '../support/factories';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => {
  await handle.close();
});

const possibleTypes = JSON.parse(readFileSync(POSSIBLE_TYPES_FILE, 'utf8')) as Record<string, string[]>;

/** An Apollo Client whose requests go to the app in-process (the same HTTP semantics as the server). */
function client(cache: InMemoryCache) {
  return new ApolloClient({
    cache,
    link: new HttpLink({
      uri: 'http://localhost/graphql',
      fetch: (url, init) => app.fetch(String(url), init as RequestInit) as Promise<Response>,
    }),
  });
}

const ADD_VARIANT = gql`
  mutation AddVariant($experimentId: ID!, $name: String!) {
    addVariant(experimentId: $experimentId, input: { name: $name }) {
      __typename
      ... on Variant {
        id
        name
      }
      ... on Error {
        code
        message
      }
    }
  }
`;

describe('possible-types.json', () => {
  it('is up to date with the schema (run `npm run schema:print`)', () => {
    expect(readFileSync(POSSIBLE_TYPES_FILE, 'utf8')).toBe(printedPossibleTypes());
  });

  it('lists every error type under Error', () => {
    expect(possibleTypes.Error).toEqual(
      expect.arrayContaining([
        'ValidationError',
        'NotFoundError',
        'RuleViolationError',
        'InvalidTransitionError',
      ]),
    );
  });
});

describe('Apollo Client', () => {
  it('with possibleTypes gets `... on Error { code message }` of a mutation’s error', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const result = await client(new InMemoryCache({ possibleTypes })).mutate({
      mutation: ADD_VARIANT,
      variables: { experimentId: experiment.id, name: 'late' },
    });
    expect(result.data).toEqual({
      addVariant: {
        __typename: 'RuleViolationError',
        code: 'RULE_VIOLATION',
        message: expect.stringContaining('only be added while the experiment is a draft'),
      },
    });
  });

  it('without them its default cache drops the fields of `... on Error` (why the file exists)', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const result = await client(new InMemoryCache()).mutate({
      mutation: ADD_VARIANT,
      variables: { experimentId: experiment.id, name: 'late' },
    });
    expect(result.data).toEqual({ addVariant: { __typename: 'RuleViolationError' } });
  });
});
