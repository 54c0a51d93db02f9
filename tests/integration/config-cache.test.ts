import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ExperimentConfigCache } from '../../src/assignments/config-cache';
import { assignVariant, loadConfigFromDb } from '../../src/assignments/service';
import type { DatabaseHandle } from '../../src/db/client';
import { notifyExperimentChanged } from '../../src/assignments/config-cache';
import { createExperimentService } from '../../src/experiments/service';
import { openTestDatabase, testDriver } from '../support/db';
import { createRunningExperiment } from '../support/factories';

/** Polls until check() is true or the deadline passes; returns the elapsed milliseconds. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await check()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`condition not met within ${ms} ms`);
}

describe('experiment configuration cache', () => {
  let a: DatabaseHandle;
  let b: DatabaseHandle | null = null;
  beforeAll(async () => {
    a = await openTestDatabase();
    // Two instances on one database: a second pool (own LISTEN connection) on PostgreSQL.
    if (testDriver() === 'postgres') b = await openTestDatabase();
  });
  afterAll(async () => {
    await b?.close();
    await a.close();
  });

  it('answers assignments without reading configuration once warm', async () => {
    const experiment = await createRunningExperiment(a.db);
    let loads = 0;
    const cache = new ExperimentConfigCache(async (db, key) => {
      loads++;
      return loadConfigFromDb(db, key);
    });
    await cache.start(a);
    try {
      for (let i = 0; i < 20; i++)
        await assignVariant(a.db, experiment.key, `warm-${i}`, { config: cache.source });
      expect(loads).toBe(1);
      // A returning user: one read, no write (a stored assignment comes back as EXISTING).
      const before = a.statements.count;
      const again = await assignVariant(a.db, experiment.key, 'warm-3', { config: cache.source });
      expect(again.reason).toBe('EXISTING');
      expect(a.statements.count - before).toBe(1);
    } finally {
      await cache.stop();
    }
  });

  it('remembers stored assignments: a returning unit costs no SQL, and a deletion forgets them', async () => {
    const experiment = await createRunningExperiment(a.db);
    const cache = new ExperimentConfigCache();
    await cache.start(a);
    try {
      const first = await assignVariant(a.db, experiment.key, 'remembered', {
        config: cache.source,
        memory: cache,
      });
      expect(first.reason).toBe('ASSIGNED');
      const before = a.statements.count;
      const again = await assignVariant(a.db, experiment.key, 'remembered', {
        config: cache.source,
        memory: cache,
      });
      expect(a.statements.count - before).toBe(0);
      expect(again).toMatchObject({ reason: 'EXISTING', variant: { id: first.variant!.id } });
      // Another process assigned this unit: the first look-up reads it, later ones remember it.
      await assignVariant(a.db, experiment.key, 'elsewhere');
      const seen = await assignVariant(a.db, experiment.key, 'elsewhere', {
        config: cache.source,
        memory: cache,
      });
      expect(seen.reason).toBe('EXISTING');
      const mark = a.statements.count;
      await assignVariant(a.db, experiment.key, 'elsewhere', { config: cache.source, memory: cache });
      expect(a.statements.count - mark).toBe(0);
      cache.invalidate();
      expect(cache.recall(experiment.id, 'remembered')).toBeUndefined();
    } finally {
      await cache.stop();
    }
  });

  it('a pause through one instance stops enrollment through the other within a second', async () => {
    const other = b ?? a; // PGlite is one process: the "other instance" shares the database handle
    const experiment = await createRunningExperiment(a.db);
    const cacheA = new ExperimentConfigCache();
    const cacheB = new ExperimentConfigCache();
    await cacheA.start(a);
    await cacheB.start(other);
    try {
      expect(
        (await assignVariant(other.db, experiment.key, 'before-pause', { config: cacheB.source })).enrolled,
      ).toBe(true);
      // Instance A pauses; its service notifies inside the transaction; B hears it on commit.
      const service = createExperimentService({
        db: a.db,
        actor: { name: 'test' },
        onChange: (id, tx) => notifyExperimentChanged(tx, id),
        afterCommit: () => cacheA.invalidate(),
      });
      await service.transition(experiment.id, 'pause');
      const elapsed = await within(1000, async () => {
        const result = await assignVariant(other.db, experiment.key, `after-pause-${Date.now()}`, {
          config: cacheB.source,
        });
        return result.reason === 'NOT_RUNNING';
      });
      expect(elapsed).toBeLessThan(1000);
      // The pausing instance itself never serves stale configuration after the commit.
      expect((await assignVariant(a.db, experiment.key, 'on-a', { config: cacheA.source })).reason).toBe(
        'NOT_RUNNING',
      );
      // Resuming is seen the same way.
      await service.transition(experiment.id, 'start');
      await within(
        1000,
        async () =>
          (await assignVariant(other.db, experiment.key, 'resumed', { config: cacheB.source })).enrolled,
      );
    } finally {
      await cacheA.stop();
      await cacheB.stop();
    }
  });
});
