import { seedDatabase } from '../db/seed';
import { withDatabase } from './common';

await withDatabase(async (handle) => {
  const report = await seedDatabase(handle.db);
  console.log(`seeded ${handle.location} (${handle.driver}):`, JSON.stringify(report));
});
