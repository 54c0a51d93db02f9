/**
 * The command-line tools as a user runs them (`npm run <script>` = `node --import tsx src/cli/<name>.ts`),
 * each in a process of its own: API keys (`npm run apikey`), `npm run db:rebuild-stats`, and
 * `npm run db:reset`, which must not drop a server's data without being told to (its decision in every
 * case: tests/unit/reset-confirmation.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { Authenticator } from '../../src/auth/authenticator';
import { type DatabaseHandle, openDatabase, queryRows } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { seedDatabase } from '../../src/db/seed';
import { PARTITION_JOB, partitionJob } from '../../src/events/partitions';
import { JobRunner } from '../../src/jobs/runner';
import { recordEvents } from '../../src/events/service';
import * as experimentsRepo from '../../src/experiments/repository';
import { experiments as seedExperiments } from '../../seed/data';
import { createScratchDatabase, openTestDatabase, testDriver } from '../support/db';
import { runDatabaseUrl } from '../support/environment';
import { createRunningExperiment, createTestExperiment, uniqueKey } from '../support/factories';
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

describe('npm run db:rebuild-stats', () => {
  /** Both aggregate tables of one experiment, in a stable order. */
  const aggregates = async (experimentId: string) => ({
    variants: await queryRows(
      handle.db,
      sql`SELECT * FROM experiment_variant_stats WHERE experiment_id = ${experimentId}
           ORDER BY variant_id, metric_name`,
    ),
    users: await queryRows(
      handle.db,
      sql`SELECT * FROM experiment_user_metrics WHERE experiment_id = ${experimentId}
           ORDER BY user_id, metric_name`,
    ),
  });

  /** A running experiment with events, its correct aggregates, and then deliberately wrong ones. */
  async function corrupted() {
    const experiment = await createRunningExperiment(handle.db);
    const variants = await experimentsRepo.getVariants(handle.db, experiment.id);
    const events = Array.from({ length: 60 }, (_, i) => ({
      kind: i % 3 === 0 ? ('EXPOSURE' as const) : ('CONVERSION' as const),
      experimentKey: experiment.key,
      userId: `u${i % 17}`,
      variantId: variants[(i % 17) % 2].id,
      metricName: i % 2 ? 'revenue' : 'conversion',
      value: (i * 7) % 11, // whole numbers: sums are exact in any order, so rows compare equal
      eventId: randomUUID(),
    }));
    expect((await recordEvents(handle.db, events)).accepted).toBe(60);
    const correct = await aggregates(experiment.id);
    await handle.db.execute(
      sql`UPDATE experiment_variant_stats SET sum = sum + 1000, units = units + 3
           WHERE experiment_id = ${experiment.id}`,
    );
    await handle.db.execute(
      sql`DELETE FROM experiment_user_metrics WHERE experiment_id = ${experiment.id} AND user_id = 'u2'`,
    );
    expect(await aggregates(experiment.id)).not.toEqual(correct);
    return { experiment, correct };
  }

  // A separate process cannot reach an in-memory PGlite, so the CLI is exercised on PostgreSQL only.
  if (testDriver() === 'postgres')
    it('recomputes the experiments named from raw events, and nothing when a key is unknown', async () => {
      const env = { DATABASE_URL: runDatabaseUrl() };
      const [a, b] = [await corrupted(), await corrupted()];
      const wrongB = await aggregates(b.experiment.id);

      const done = await runScript('src/cli/rebuild-stats.ts', [a.experiment.key], env);
      expect(done.code).toBe(0);
      expect(done.stdout).toContain(`rebuilt aggregates for ${a.experiment.key}`);
      expect(await aggregates(a.experiment.id)).toEqual(a.correct);
      expect(await aggregates(b.experiment.id)).toEqual(wrongB);

      // An unknown key fails the whole command: nothing is rebuilt.
      const refused = await runScript(
        'src/cli/rebuild-stats.ts',
        [b.experiment.key, uniqueKey('missing')],
        env,
      );
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('unknown experiment key');
      expect(await aggregates(b.experiment.id)).toEqual(wrongB);

      expect((await runScript('src/cli/rebuild-stats.ts', [b.experiment.key], env)).code).toBe(0);
      expect(await aggregates(b.experiment.id)).toEqual(b.correct);
    });

  if (testDriver() === 'postgres')
    it('says which raw events it can rebuild from, and refuses experiments that lost some to retention', async () => {
      // A database of its own: retention drops partitions for every experiment.
      const scratch = await createScratchDatabase();
      try {
        await migrateDatabase(scratch.handle);
        await seedDatabase(scratch.handle.db);
        const env = { DATABASE_URL: scratch.url! };
        const all = await runScript('src/cli/rebuild-stats.ts', [], env);
        expect(all.code).toBe(0);
        expect(all.stdout).toContain('raw events kept: all (no partition has been dropped)');

        // A month after the retention, the seed's events (recorded before this month) are gone.
        const later = new Date(Date.now() + 30 * 86_400_000);
        const runner = new JobRunner({
          db: scratch.handle.db,
          intervalMs: 0,
          now: () => later,
          jobs: [partitionJob({ retentionDays: 30 })],
        });
        expect(await runner.tick()).toEqual({ [PARTITION_JOB]: 'ran' });
        const now = new Date();
        const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
        const running = seedExperiments.find((e) => e.status === 'running')!.key;

        const partial = await runScript('src/cli/rebuild-stats.ts', [], env);
        expect(partial.code).toBe(0);
        expect(partial.stdout).toContain(`raw events kept: recorded since ${monthStart}`);
        expect(partial.stderr).toContain(
          `WARNING: skipping ${running}: its raw events recorded before ${monthStart} were dropped`,
        );
        expect(partial.stdout).toMatch(/rebuilt aggregates for all experiments but \d+ skipped/);

        const refused = await runScript('src/cli/rebuild-stats.ts', [running], env);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toContain(`cannot recount ${running}`);
      } finally {
        await scratch.drop();
      }
    });
});
