/**
 * GraphQL's part of the metrics: the errors answered, by code. (Requests are counted by the HTTP server,
 * with the operation name the operation log leaves on the request's store.)
 */
import type { Plugin } from 'graphql-yoga';
import type { Metrics } from '../../observability/metrics';

/** Errors without a code are GraphQL's own (a document that does not parse or validate). */
const UNCODED = 'GRAPHQL_VALIDATION_FAILED';

export function useRequestMetrics(metrics: Metrics): Plugin {
  return {
    onResultProcess({ result }) {
      for (const one of Array.isArray(result) ? result : [result]) {
        const errors = one && typeof one === 'object' && 'errors' in one ? one.errors : undefined;
        if (!Array.isArray(errors)) continue;
        for (const error of errors) {
          const code = (error as { extensions?: { code?: unknown } }).extensions?.code;
          metrics.error(typeof code === 'string' ? code : UNCODED);
        }
      }
    },
  };
}
