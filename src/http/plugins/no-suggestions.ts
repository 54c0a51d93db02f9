/**
 * Removes graphql-js's "Did you mean …?" hints, which name fields, arguments, input fields and enum
 * values (and so leak the schema when introspection is off), from validation errors and from variable
 * coercion errors (reported by execution). graphql-armor's plugin only covers field names in validation.
 */
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

const SUGGESTION = /\s*Did you mean [^?]*\?/g;

function withoutSuggestion<E extends Error>(error: E): E {
  const message = error.message.replace(SUGGESTION, '');
  if (message === error.message || !(error instanceof GraphQLError)) return error;
  return new GraphQLError(message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: error.extensions,
  }) as unknown as E;
}

export function useNoSuggestions(): Plugin {
  return {
    onValidate:
      () =>
      ({ valid, result, setResult }) => {
        if (!valid) setResult(result.map(withoutSuggestion));
      },
    onExecute: () => ({
      onExecuteDone({ result, setResult }) {
        if ('errors' in result && result.errors?.length) {
          setResult({ ...result, errors: result.errors.map(withoutSuggestion) });
        }
      },
    }),
  };
}
