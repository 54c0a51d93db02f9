import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ExperimentConfigCache } from '../../src/assignments/config-cache';
import { assignVariant, loadConfigFromDb } from '../../src/assignments/service';
import type { DatabaseHandle } from '../../src/db/client';
import { openTestDatabase } from '../support/db';
import { createRunningExperiment } from '../support/factories';

describe('experiment configuration cache', () => {
  let a: DatabaseHandle;
  beforeAll(async () => {
    a = await openTestDatabase();
  });
  afterAll(async () => {
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
});
