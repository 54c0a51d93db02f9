import { migrateDatabase } from '../db/migrate';
import { withDatabase } from './common';

await withDatabase(async (handle) => {
  const started = Date.now();
  await migrateDatabase(handle);
  console.log(`migrations applied to ${handle.location} (${handle.driver}) in ${Date.now() - started} ms`);
});
