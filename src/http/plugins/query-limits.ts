/**
 * Hostile-query limits, checked in validation (before execution, so a rejected query runs no SQL):
 * depth, aliases, tokens and directives (GraphQL Armor), and number literals that do not fit a float.
 * Complexity is Pothos's (src/graphql/builder.ts).
 */
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { GraphQLError, type ValidationContext, type ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { LIMITS } from '../../config';

/**
 * GraphQL's Float accepts literals like `1e309`, which parse to Infinity; variables are checked by
 * graphql-js, literals are not. Refused here, anywhere in the document (JSON literals included).
 */
const finiteNumberLiterals: ValidationRule = (context) => ({
  FloatValue(node) {
    if (!Number.isFinite(Number(node.value))) {
      context.reportError(
        new GraphQLError(`Number ${node.value.slice(0, 40)} is out of range: numbers must be finite`, {
          nodes: [node],
          extensions: { code: 'BAD_USER_INPUT' },
        }),
      );
    }
  },
});

/**
 * graphql-armor throws its rejections out of validation, which yoga answers with HTTP 200; reported as
 * validation errors instead they get a 400 like any other invalid document, and our code.
 */
const asValidationError = {
  propagateOnRejection: false,
  onReject: [
    (context: ValidationContext | null, error: GraphQLError) =>
      context?.reportError(
        new GraphQLError(error.message.replace(/^Syntax Error: /, ''), {
          extensions: { code: 'QUERY_TOO_COMPLEX' },
        }),
      ),
  ],
};

export function queryLimitPlugins(): Plugin[] {
  return [
    { onValidate: ({ addValidationRule }) => addValidationRule(finiteNumberLiterals) },
    maxDepthPlugin({
      n: LIMITS.maxDepth,
      ignoreIntrospection: true,
      flattenFragments: true,
      ...asValidationError,
    }),
    maxAliasesPlugin({ n: LIMITS.maxAliases, ...asValidationError }),
    maxTokensPlugin({ n: LIMITS.maxTokens }),
    maxDirectivesPlugin({ n: LIMITS.maxDirectives, ...asValidationError }),
  ];
}
