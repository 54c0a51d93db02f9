/**
 * GET /metrics: the Prometheus exposition of this instance, through the same pipeline as the SDK routes
 * (src/http/json-endpoint.ts: API keys, rate limit, deadline, JSON errors). With keys required it needs a
 * key with the `read` scope (Prometheus sends it with `authorization: { credentials: <key> }`); on the
 * embedded default it is open like the rest of the service.
 */
import { type JsonEndpointOptions, jsonEndpoint, type RawAnswer } from '../http/json-endpoint';
import type { Metrics } from './metrics';

export const METRICS_PATH = '/metrics';

export function createMetricsEndpoint(options: JsonEndpointOptions & { metrics: Metrics }) {
  const { metrics } = options;
  return jsonEndpoint(options, {
    path: METRICS_PATH,
    method: 'GET',
    scope: 'read',
    async handle(): Promise<RawAnswer> {
      const { body, contentType } = await metrics.scrape();
      return { status: 200, headers: { 'content-type': contentType, 'cache-control': 'no-store' }, body };
    },
  });
}
