/**
 * Configuration changes reach every instance quickly: a pause through one instance stops enrollment
 * through another (its own pool and LISTEN connection on the same database) within a second. In the
 * system tier because it judges elapsed time; the cache's behaviour itself is in
 * tests/integration/config-cache.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ExperimentConfigCache, notifyExperimentChanged } from '../../src/assignments/config-cache';
import { assignVariant } from '../../src/assignments/service';
import type { DatabaseHandle } from '../../src/db/client';
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

describe('configuration changes across instances', () => {
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
