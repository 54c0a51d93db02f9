import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { seedDatabase } from '../../src/db/seed';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';

describe('migrations', () => {
  let scratch: ScratchDatabase;
  let handle: DatabaseHandle;
  beforeAll(async () => {
    scratch = await createScratchDatabase();
    handle = scratch.handle;
  });
  afterAll(async () => scratch.drop());

  it('apply to an empty database, and applying again changes nothing', async () => {
    await migrateDatabase(handle);
    const tables = await queryRows<{ table_name: string }>(
      handle.db,
      sql`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    );
    expect(tables.map((t) => t.table_name)).toEqual(
      expect.arrayContaining([
        'audit_log',
        'content_items',
        'experiment_assignments',
        'experiment_conversions',
        'experiment_exposures',
        'experiment_metrics',
        'experiment_variants',
        'experiments',
        'playback_progress',
        'user_preferences',
        'users',
      ]),
    );
    const journal = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`,
    );
    await migrateDatabase(handle);
    const again = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`,
    );
    expect(again[0].n).toBe(journal[0].n);
  });

  it('seed twice leaves exactly the same rows', async () => {
    const first = await seedDatabase(handle.db);
    const snapshot = async () =>
      queryRows<Record<string, unknown>>(
        handle.db,
        sql`SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM content_items)::int AS content,
                   (SELECT count(*) FROM user_preferences)::int AS prefs, (SELECT count(*) FROM playback_progress)::int AS progress,
                   (SELECT count(*) FROM experiments)::int AS experiments, (SELECT count(*) FROM experiment_variants)::int AS variants,
                   (SELECT count(*) FROM experiment_assignments)::int AS assignments, (SELECT count(*) FROM experiment_exposures)::int AS exposures,
                   (SELECT count(*) FROM experiment_conversions)::int AS conversions, (SELECT count(*) FROM audit_log)::int AS audit,
                   (SELECT md5(string_agg(id::text || variant_id::text || user_id, ',' ORDER BY id)) FROM experiment_exposures) AS exposure_hash`,
      );
    const before = await snapshot();
    const second = await seedDatabase(handle.db);
    expect(second).toEqual(first);
    expect(await snapshot()).toEqual(before);
    expect(before[0]).toMatchObject({ users: 4, content: 8, prefs: 4, experiments: 3 });
  });
});
