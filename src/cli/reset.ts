import { seedDatabase } from '../../seed/seed';
import { resetDatabase } from '../db/reset';
import { migrateDatabase } from '../db/migrate';
import { withDatabase } from './common';

await withDatabase(async (handle) => {
  await resetDatabase(handle);
  await migrateDatabase(handle);
  const report = await seedDatabase(handle.db);
  console.log(
    `reset ${handle.location} (${handle.driver}): dropped, migrated, seeded`,
    JSON.stringify(report),
  );
});
