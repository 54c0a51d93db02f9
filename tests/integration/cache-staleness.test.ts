/**
 * Caches that live on change notifications (experiment configuration, verified API keys) against lost
 * notifications: a change committed while the LISTEN connection is down (its backend terminated, the
 * database refusing connections until the change has committed) is seen once the LISTEN reconnects, and
 * a change that notifies nobody at all is seen once the cache's time to live is over.
 * PGlite delivers notifications in-process and has no LISTEN connection to lose; there only the time
 * to live is tested.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { ExperimentConfigCache, notifyExperimentChanged } from '../../src/assignments/config-cache';
import { assignVariant, loadConfigFromDb } from '../../src/assignments/service';
import { Authenticator } from '../../src/auth/authenticator';
import { revokeApiKey } from '../../src/auth/service';
import { type DatabaseHandle, openDatabase } from '../../src/db/client';
import { createExperimentService } from '../../src/experiments/service';
import { testDriver } from '../support/db';
import { runDatabaseUrl } from '../support/environment';
import { createRunningExperiment, uniqueKey } from '../support/factories';
import { eventually, type IsolatedDatabase, makeKey, openIsolatedDatabase } from '../support/server';

const HOUR = 3_600_000;

let iso: IsolatedDatabase;
beforeAll(async () => {
  iso = await openIsolatedDatabase();
});
afterAll(async () => {
  await iso?.close();
});

const assign = (cache: ExperimentConfigCache, key: string) =>
  assignVariant(iso.handle.db, key, uniqueKey('unit'), { config: cache.source });

describe('time to live (a change that notified nobody)', () => {
  it('a configuration changed behind the cache is read again once its entry expires', async () => {
    const experiment = await createRunningExperiment(iso.handle.db);
    const cache = new ExperimentConfigCache(loadConfigFromDb, 200);
    expect((await assign(cache, experiment.key)).enrolled).toBe(true);
    // Paused with no NOTIFY (another tool, a restore, a notification lost in any other way).
    await iso.handle.db.execute(sql`UPDATE experiments SET status = 'paused' WHERE id = ${experiment.id}`);
    expect(await eventually(async () => (await assign(cache, experiment.key)).reason === 'NOT_RUNNING')).toBe(
      true,
    );
  });

  it('a key revoked behind the authenticator is refused once its verification expires', async () => {
    const { key, id } = await makeKey(iso.handle.db, ['read']);
    const authenticator = new Authenticator(iso.handle.db, true, { cacheTtlMs: 200 });
    await authenticator.authenticate(`Bearer ${key}`);
    await iso.handle.db.execute(sql`UPDATE api_keys SET revoked_at = now() WHERE id = ${id}`);
    const refused = () =>
      authenticator.authenticate(`Bearer ${key}`).then(
        () => false,
        () => true,
      );
    expect(await eventually(refused)).toBe(true);
  });
});

(testDriver() === 'postgres' ? describe : describe.skip)('LISTEN reconnection', () => {
  let other: DatabaseHandle;
  let admin: postgres.Sql;
  let name: string;
  beforeAll(async () => {
    name = new URL(iso.url!).pathname.slice(1);
    admin = postgres(runDatabaseUrl(), { max: 1, onnotice: () => {} });
    // Another instance with one connection, opened now: it still works while new connections are refused.
    other = await openDatabase({
      driver: 'postgres',
      url: iso.url!,
      poolSize: 1,
      statementTimeoutMs: 30_000,
      connectTimeoutSeconds: 10,
    });
    await other.ping();
  });
  afterAll(async () => {
    await admin?.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    await other?.close();
    await admin?.end();
  });

  /** Kills the LISTEN backend and keeps it from reconnecting while `change` commits elsewhere. */
  async function whileListenerIsDown(change: () => Promise<void>) {
    await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    try {
      const killed = await admin`
        SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE datname = ${name} AND query ILIKE 'listen%'`;
      expect(killed.length).toBeGreaterThan(0);
      await change();
    } finally {
      await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    }
  }

  it('a pause and a revocation committed while LISTEN was down take effect once it reconnects', async () => {
    // An hour to live: only the reconnection can make these caches forget.
    const cache = new ExperimentConfigCache(loadConfigFromDb, HOUR);
    const authenticator = new Authenticator(iso.handle.db, true, { cacheTtlMs: HOUR });
    await cache.start(iso.handle);
    await authenticator.start(iso.handle);
    try {
      const experiment = await createRunningExperiment(iso.handle.db);
      const { key, id } = await makeKey(iso.handle.db, ['assign']);
      expect((await assign(cache, experiment.key)).enrolled).toBe(true);
      await authenticator.authenticate(`Bearer ${key}`);

      await whileListenerIsDown(async () => {
        const service = createExperimentService({
          db: other.db,
          actor: { name: 'other-instance' },
          onChange: (experimentId, tx) => notifyExperimentChanged(tx, experimentId),
        });
        await service.transition(experiment.id, 'pause');
        await revokeApiKey(other.db, 'other-instance', { id });
      });

      expect(
        await eventually(async () => (await assign(cache, experiment.key)).reason === 'NOT_RUNNING', 15_000),
      ).toBe(true);
      const refused = () =>
        authenticator.authenticate(`Bearer ${key}`).then(
          () => false,
          () => true,
        );
      expect(await eventually(refused, 15_000)).toBe(true);
    } finally {
      await cache.stop();
      await authenticator.stop();
    }
  });
});
