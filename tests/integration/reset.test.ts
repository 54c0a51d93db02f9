/**
 * resetDatabase (what `npm run db:reset` runs before migrating and seeding again) leaves nothing of the
 * service behind: after it, migrations apply from scratch and the seed is all there is.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { queryRows } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { resetDatabase } from '../../src/db/reset';
import { seedDatabase } from '../../src/db/seed';
import { experiments as seedExperiments } from '../../seed/data';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { createTestExperiment } from '../support/factories';

let scratch: ScratchDatabase;
beforeAll(async () => {
  scratch = await createScratchDatabase();
  await migrateDatabase(scratch.handle);
});
afterAll(async () => scratch?.drop());

const tables = async () =>
  (
    await queryRows<{ name: string }>(
      scratch.handle.db,
      sql`SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
           WHERE table_schema IN ('public', 'drizzle') ORDER BY 1`,
    )
  ).map((r) => r.name);

it('drops every table and the migrations journal; migrating and seeding again gives the seed only', async () => {
  const migrated = await tables();
  expect(migrated).toContain('public.experiments');
  expect(migrated).toContain('drizzle.__drizzle_migrations');
  await createTestExperiment(scratch.handle.db);

  await resetDatabase(scratch.handle);
  expect(await tables()).toEqual([]);

  await migrateDatabase(scratch.handle);
  expect(await tables()).toEqual(migrated);
  await seedDatabase(scratch.handle.db);
  const keys = await queryRows<{ key: string }>(
    scratch.handle.db,
    sql`SELECT key FROM experiments ORDER BY key`,
  );
  expect(keys.map((r) => r.key)).toEqual(seedExperiments.map((e) => e.key).sort());
});
