/**
 * GET /metrics: the Prometheus exposition of this instance. Behind the same API keys as everything else
 * when they are required (a key with the `read` scope; Prometheus sends it with
 * `authorization: { credentials: <key> }`), open on the embedded default like the rest of the service.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../auth/authenticator';
import { DomainError } from '../common/errors';
import { json } from '../http/node';
import type { Metrics } from './metrics';

export const METRICS_PATH = '/metrics';

export function createMetricsEndpoint(metrics: Metrics, authenticator: Authenticator) {
  return async function metricsRoute(req: IncomingMessage, res: ServerResponse, requestId: string) {
    const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}) => {
      metrics.error(code);
      json(res, status, { error: { code, message, requestId } }, { ...headers, 'x-request-id': requestId });
    };
    if (req.method !== 'GET') return fail(405, 'METHOD_NOT_ALLOWED', 'Use GET', { allow: 'GET' });
    let scopes: ReadonlySet<string>;
    try {
      ({ scopes } = await authenticator.authenticate(
        req.headers.authorization ?? null,
        req.socket.remoteAddress,
      ));
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      return fail(401, err.code, err.message, { 'www-authenticate': 'Bearer' });
    }
    if (!scopes.has('read')) return fail(403, 'FORBIDDEN', 'This API key lacks the read scope');
    const { body, contentType } = await metrics.scrape();
    res.writeHead(200, {
      'content-type': contentType,
      'x-request-id': requestId,
      'cache-control': 'no-store',
    });
    res.end(body);
  };
}
