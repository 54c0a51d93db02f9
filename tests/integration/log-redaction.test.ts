/**
 * Failed statements are logged without their parameters, also where the database itself quotes them:
 * in `where` (`JSON data, line 1: …`), in `detail` (`Key (key_hash)=(…) already exists`) and in the
 * message (`invalid input syntax for type uuid: "…"`). Real statements on the real drivers, through the
 * service's logger.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import type { DatabaseHandle } from '../../src/db/client';
import { errorForLog } from '../../src/http/faults';
import { openTestDatabase } from '../support/db';
import { createRunningExperiment } from '../support/factories';
import {
  captureLogs,
  failingConfigCache,
  makeKey,
  postGraphQL,
  productionSecurity,
  startTestServer,
} from '../support/server';

let handle: DatabaseHandle;
beforeAll(async () => {
  handle = await openTestDatabase();
});
afterAll(async () => {
  await handle?.close();
});

async function failure(statement: ReturnType<typeof sql>): Promise<unknown> {
  try {
    await handle.db.execute(statement);
  } catch (err) {
    return err;
  }
  throw new Error('the statement was expected to fail');
}

describe('failed-query logs', () => {
  it('keep the SQL, the SQLSTATE and the constraint, never a parameter the database quoted back', async () => {
    // Short: PostgreSQL shows only the end of a long JSON text before the bad token.
    const secret = `u-${randomUUID().slice(0, 6)}`;
    const hash = `hash-${randomUUID()}`;
    const insertKey = sql`/* insertKey */ INSERT INTO api_keys (name, prefix, key_hash, scopes)
      VALUES (${`name-${randomUUID()}`}, 'sona_x', ${hash}, ARRAY['read'])`;
    await handle.db.execute(insertKey);
    const cases = [
      { code: '22P02', statement: sql`/* badJson */ SELECT ${`{"u":"${secret}", bad`}::jsonb` },
      { code: '22P02', statement: sql`/* badUuid */ SELECT ${secret}::uuid` },
      { code: '23505', statement: insertKey, constraint: 'api_keys_key_hash_unique' },
    ];
    const logs = captureLogs();
    for (const { code, statement, constraint } of cases) {
      const err = await failure(statement);
      // The raw error does carry the parameter somewhere (this is what the log must not show).
      const raw = JSON.stringify({ ...(err as object), cause: { ...((err as Error).cause as object) } });
      expect(raw.includes(secret) || raw.includes(hash)).toBe(true);
      const entry = errorForLog(err);
      logs.logger.error({ ...entry, requestId: 'r' }, 'unexpected error');
      expect(entry).toMatchObject({ err: { code, ...(constraint ? { constraint } : {}) } });
      expect(String(entry.query)).toMatch(/^\/\* (badJson|badUuid|insertKey) \*\//);
    }
    expect(logs.text()).not.toContain(secret);
    expect(logs.text()).not.toContain(hash);
    expect(logs.text()).not.toMatch(/"(where|detail)"/);
  });

  it('the same holds for the line the service writes for a masked error', async () => {
    // Short: PostgreSQL shows only the end of a long JSON text before the bad token.
    const secret = `u-${randomUUID().slice(0, 6)}`;
    const logs = captureLogs();
    const failing = failingConfigCache(async () => {
      await handle.db.execute(sql`/* badJson */ SELECT ${`{"u":"${secret}", bad`}::jsonb`);
      return null;
    });
    const server = await startTestServer(handle, {
      security: productionSecurity(),
      logs,
      configCache: failing,
    });
    try {
      const { key } = await makeKey(handle.db, ['assign']);
      const running = await createRunningExperiment(handle.db);
      const response = await postGraphQL(
        server.url,
        `mutation { assignVariant(experimentKey: "${running.key}", userId: "u1") { __typename } }`,
        {},
        { key },
      );
      expect(response.body.errors[0].extensions.code).toBe('INTERNAL_SERVER_ERROR');
      const line = logs.lines().find((l) => l.msg === 'unexpected error');
      expect(line).toMatchObject({ err: { code: '22P02' }, query: expect.stringContaining('badJson') });
      expect(logs.text()).not.toContain(secret);
    } finally {
      await server.close();
    }
  });
});
