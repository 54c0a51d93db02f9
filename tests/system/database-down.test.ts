/**
 * `POST /v1/assignments` when the database cannot be reached: a clean 503 SERVICE_UNAVAILABLE at once
 * (connections refused, not a hang until a timeout), logged as a fault. In the system tier because it
 * judges elapsed time.
 */
import { describe, expect, it } from '@jest/globals';
import { Authenticator } from '../../src/auth/authenticator';
import { openDatabase } from '../../src/db/client';
import { testDriver } from '../support/db';
import { productionSecurity, rawPost, startTestServer } from '../support/server';

if (testDriver() === 'postgres') {
  describe('POST /v1/assignments without a database', () => {
    it('answers 503 SERVICE_UNAVAILABLE with a request id, quickly, and logs it as a fault, not a bug', async () => {
      // Nothing listens on port 1: every connection is refused at once.
      const down = await openDatabase({
        driver: 'postgres',
        url: 'postgres://postgres@127.0.0.1:1/none',
        poolSize: 2,
        statementTimeoutMs: 5_000,
        connectTimeoutSeconds: 2,
      });
      // Auth off, an authenticator that does not LISTEN and no live updates (each needs a connection): the request itself
      // is the first to need the database.
      const unreachable = await startTestServer(down, {
        security: productionSecurity({ authRequired: false }),
        authenticator: new Authenticator(down.db, false),
        live: null,
      });
      try {
        const started = Date.now();
        const response = await rawPost(
          `${unreachable.base}/v1/assignments`,
          JSON.stringify({ experimentKey: 'any', userId: 'u-1' }),
        );
        expect(Date.now() - started).toBeLessThan(5_000);
        expect(response.status).toBe(503);
        expect(response.body).toEqual({
          error: {
            code: 'SERVICE_UNAVAILABLE',
            message: 'The database is unavailable; retry shortly.',
            requestId: response.headers.get('x-request-id'),
          },
        });
        const faults = unreachable.logs.lines().filter((l) => l.msg === 'unexpected error');
        expect(faults.map((l) => [l.fault, l.requestId])).toEqual([
          ['SERVICE_UNAVAILABLE', response.headers.get('x-request-id')],
        ]);
      } finally {
        await unreachable.close();
        await down.close();
      }
    });
  });
}
