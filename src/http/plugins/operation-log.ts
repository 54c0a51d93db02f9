/**
 * One structured log line per GraphQL operation: request id, operation name, actor, duration, errors. The
 * name is also left on the request's store, for its metrics and span (src/http/server.ts).
 */
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { GraphQLContext } from '../../graphql/context';
import { requestContext } from '../request-context';

export function useOperationLog(logger: Logger): Plugin<GraphQLContext> {
  return {
    onExecute({ args }) {
      const started = performance.now();
      // The document's own name when the request did not repeat it (most clients do not).
      const operationName = getOperationAST(args.document, args.operationName)?.name?.value ?? null;
      const store = requestContext.getStore();
      if (store) store.operation = operationName;
      return {
        onExecuteDone({ result }) {
          const errors = 'errors' in result && Array.isArray(result.errors) ? result.errors.length : 0;
          logger.info(
            {
              requestId: args.contextValue.requestId,
              operationName,
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
