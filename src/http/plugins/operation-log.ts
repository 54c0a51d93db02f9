/** One structured log line per GraphQL operation: request id, operation name, actor, duration, errors. */
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { GraphQLContext } from '../../graphql/context';

export function useOperationLog(logger: Logger): Plugin<GraphQLContext> {
  return {
    onExecute({ args }) {
      const started = performance.now();
      return {
        onExecuteDone({ result }) {
          const errors = 'errors' in result && Array.isArray(result.errors) ? result.errors.length : 0;
          logger.info(
            {
              requestId: args.contextValue.requestId,
              // The document's own name when the request did not repeat it (most clients do not).
              operationName: getOperationAST(args.document, args.operationName)?.name?.value ?? null,
              actor: args.contextValue.auth.name,
              durationMs: Math.round((performance.now() - started) * 10) / 10,
              errors,
            },
            'graphql operation',
          );
        },
      };
    },
  };
}
