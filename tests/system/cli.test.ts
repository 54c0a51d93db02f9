/**
 * The command-line tools as a user runs them (`npm run <script>` = `node --import tsx src/cli/<name>.ts`),
 * each in a process of its own: API keys (`npm run apikey`) and `npm run db:reset`, which must not drop
 * a server's data without being told to (its decision in every case: tests/unit/reset-confirmation.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { Authenticator } from '../../src/auth/authenticator';
import { type DatabaseHandle, openDatabase, queryRows } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { experiments as seedExperiments } from '../../seed/data';
import { createScratchDatabase, openTestDatabase, testDriver } from '../support/db';
import { runDatabaseUrl } from '../support/environment';
import { createTestExperiment, uniqueKey } from '../support/factories';
import { runScript } from '../support/processes';
import { postGraphQL, productionSecurity, sha256, startTestServer, type TestServer } from '../support/server';

let handle: DatabaseHandle;
let server: TestServer;

beforeAll(async () => {
  handle = await openTestDatabase();
  server = await startTestServer(handle, { security: productionSecurity() });
});
afterAll(async () => {
  await server?.close();
  await handle?.close();
});

const LIST = `query List { experiments(first: 1) { totalCount } }`;

/** A request's GraphQL status for a key: 200, or the 401 once the key is refused. */
async function statusWith(key: string): Promise<number> {
  return (await postGraphQL(server.url, LIST, {}, { key })).status;
}

describe('npm run apikey', () => {
  it('creates (shown once), lists (never the secret) and revokes', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sona-apikey-'));
    const env: Record<string, string> =
      testDriver() === 'postgres'
        ? { DATABASE_URL: runDatabaseUrl() }
        : { PGLITE_DIR: path.join(dataDir, 'pglite') };
    const name = uniqueKey('cli-dashboard');
    try {
      const created = await runScript(
        'src/cli/apikey.ts',
        ['create', '--name', name, '--scopes', 'read'],
        env,
      );
      expect(created.code).toBe(0);
      const key = created.stdout.trim().split('\n').at(-1)!;
      expect(key).toMatch(/^sona_[A-Za-z0-9_-]{43}$/);
      expect(created.stdout).toContain(`created API key "${name}" (read)`);

      const listed = await runScript('src/cli/apikey.ts', ['list'], env);
      expect(listed.code).toBe(0);
      const line = listed.stdout.split('\n').find((l) => l.includes(name));
      expect(line).toContain(key.slice(0, 11));
      expect(listed.stdout).not.toContain(key);
      expect(listed.stdout).not.toContain(sha256(key));

      const bad = await runScript(
        'src/cli/apikey.ts',
        ['create', '--name', uniqueKey('x'), '--scopes', 'root'],
        env,
      );
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/scopes must be among read, assign, write, admin/);

      if (testDriver() === 'postgres') expect(await statusWith(key)).toBe(200);

      const revoked = await runScript('src/cli/apikey.ts', ['revoke', name], env);
      expect(revoked.code).toBe(0);
      expect(revoked.stdout).toContain(`revoked API key "${name}"`);
      const all = await runScript('src/cli/apikey.ts', ['list', '--all'], env);
      expect(all.stdout.split('\n').find((l) => l.includes(name))).toContain('REVOKED');

      if (testDriver() === 'postgres') {
        expect(await statusWith(key)).toBe(401);
      } else {
        // The CLI wrote to its own embedded database: check the key there.
        const cliDb = await openDatabase({ driver: 'pglite', dataDir: env.PGLITE_DIR });
        try {
          const rows = await queryRows<{ key_hash: string; revoked: boolean }>(
            cliDb.db,
            sql`SELECT key_hash, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE name = ${name}`,
          );
          expect(rows).toEqual([{ key_hash: sha256(key), revoked: true }]);
          await expect(new Authenticator(cliDb.db, true).authenticate(`Bearer ${key}`)).rejects.toThrow(
            'Invalid or revoked API key',
          );
        } finally {
          await cliDb.close();
        }
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('npm run db:reset', () => {
  const keys = async (db: DatabaseHandle) =>
    (await queryRows<{ key: string }>(db.db, sql`SELECT key FROM experiments ORDER BY key`)).map(
      (r) => r.key,
    );
  const seedKeys = seedExperiments.map((e) => e.key).sort();

  // A separate process cannot reach an in-memory PGlite: the server cases need PostgreSQL.
  if (testDriver() === 'postgres') {
    it('on a server, refuses without --yes (no terminal to ask) and drops nothing', async () => {
      const scratch = await createScratchDatabase();
      try {
        await migrateDatabase(scratch.handle);
        const kept = await createTestExperiment(scratch.handle.db);
        const result = await runScript('src/cli/reset.ts', [], { DATABASE_URL: scratch.url! });
        expect(result.code).toBe(1);
        expect(result.stderr).toContain('npm run db:reset -- --yes');
        expect(result.stderr).toContain(`database "${new URL(scratch.url!).pathname.slice(1)}"`);
        expect(result.stdout).toBe('');
        expect(await keys(scratch.handle)).toEqual([kept.key]);
      } finally {
        await scratch.drop();
      }
    });

    it('on a server, with --yes drops everything, migrates and seeds', async () => {
      const scratch = await createScratchDatabase();
      try {
        await migrateDatabase(scratch.handle);
        await createTestExperiment(scratch.handle.db);
        const result = await runScript('src/cli/reset.ts', ['--yes'], { DATABASE_URL: scratch.url! });
        expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
        expect(result.stdout).toContain('dropped, migrated, seeded');
        expect(await keys(scratch.handle)).toEqual(seedKeys);
      } finally {
        await scratch.drop();
      }
    });
  }
});
