/** Shared plumbing for the command-line entry points: open the configured database, run, close. */
import { databaseConfigFromEnv } from '../config';
import { openDatabase, type DatabaseHandle } from '../db/client';

export async function withDatabase(task: (handle: DatabaseHandle) => Promise<void>): Promise<void> {
  const handle = await openDatabase(databaseConfigFromEnv());
  try {
    await task(handle);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  } finally {
    await handle.close();
  }
}
