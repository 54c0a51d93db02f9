/**
 * `npm run db:reset`: drops everything this service owns, migrates and seeds again. On a PostgreSQL server
 * (DATABASE_URL) that destroys real data, so it asks first: `--yes` confirms up front (scripts, CI), a
 * terminal is asked to type the database name, and anything else refuses. The embedded database is a
 * local scratch copy and is reset without asking.
 */
import { createInterface } from 'node:readline/promises';
import { type DatabaseConfig, databaseConfigFromEnv } from '../config';
import { resetDatabase } from '../db/reset';
import { migrateDatabase } from '../db/migrate';
import { seedDatabase } from '../db/seed';
import { withDatabase } from './common';

/** "database sona on db.internal:5432": what the user is about to lose, without the password. */
function describeServer(url: string): { name: string; where: string } {
  try {
    const u = new URL(url);
    const name = decodeURIComponent(u.pathname.replace(/^\//, '')) || u.username || 'postgres';
    return { name, where: `database "${name}" on ${u.host || 'localhost'}` };
  } catch {
    return { name: '', where: 'the database DATABASE_URL names' };
  }
}

async function confirmed(config: DatabaseConfig, args: string[]): Promise<boolean> {
  if (config.driver === 'pglite' || args.includes('--yes')) return true;
  const { name, where } = describeServer(config.url);
  if (!process.stdin.isTTY || !name) {
    console.error(`db:reset drops every table of ${where}. Run \`npm run db:reset -- --yes\` to confirm.`);
    return false;
  }
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await prompt.question(
      `db:reset drops every table of ${where}. Type the database name to confirm: `,
    );
    if (answer.trim() === name) return true;
    console.error('not confirmed; nothing was dropped');
    return false;
  } finally {
    prompt.close();
  }
}

const config = databaseConfigFromEnv();
if (await confirmed(config, process.argv.slice(2))) {
  await withDatabase(async (handle) => {
    await resetDatabase(handle);
    await migrateDatabase(handle);
    const report = await seedDatabase(handle.db);
    console.log(
      `reset ${handle.location} (${handle.driver}): dropped, migrated, seeded`,
      JSON.stringify(report),
    );
  });
} else {
  process.exitCode = 1;
}
