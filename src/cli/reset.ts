/**
 * `npm run db:reset`: drops everything this service owns, migrates and seeds again. On a PostgreSQL server
 * (DATABASE_URL) that destroys real data, so it asks first: `--yes` confirms up front (scripts, CI), a
 * terminal is asked to type the database name, and anything else refuses. The embedded database is a
 * local scratch copy and is reset without asking.
 */
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import { type DatabaseConfig, databaseConfigFromEnv } from '../config';
import { migrateDatabase } from '../db/migrate';
import { resetDatabase } from '../db/reset';
import { seedDatabase } from '../db/seed';
import { withDatabase } from './common';

/** "database "sona" on db.internal:5432": what the user is about to lose, without the password. */
function describeServer(url: string): { name: string; where: string } {
  try {
    const u = new URL(url);
    const name = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username);
    return { name, where: `database "${name}" on ${u.host || 'localhost'}` };
  } catch {
    return { name: '', where: 'the database DATABASE_URL names' };
  }
}

export interface ConfirmIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Whether the reset may go ahead; says why not on stderr. */
export async function confirmReset(config: DatabaseConfig, args: string[], io: ConfirmIo): Promise<boolean> {
  if (config.driver === 'pglite' || args.includes('--yes')) return true;
  const { name, where } = describeServer(config.url);
  if (!io.stdin.isTTY || !name) {
    io.stderr.write(
      `db:reset drops every table of ${where}. Run \`npm run db:reset -- --yes\` to confirm.\n`,
    );
    return false;
  }
  const prompt = createInterface({ input: io.stdin, output: io.stdout, terminal: false });
  try {
    const answer = await prompt.question(
      `db:reset drops every table of ${where}. Type the database name to confirm: `,
    );
    if (answer.trim() === name) return true;
    io.stderr.write('not confirmed; nothing was dropped\n');
    return false;
  } finally {
    prompt.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  if (await confirmReset(databaseConfigFromEnv(), process.argv.slice(2), io)) {
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
}
