import { rmSync } from 'node:fs';
import postgres from 'postgres';

export default async function globalTeardown(): Promise<void> {
  const state = globalThis.__sonaTestRun;
  if (!state) return;
  if (state.adminUrl && !process.env.KEEP_TEST_DATABASE) {
    const admin = postgres(state.adminUrl, { max: 1, onnotice: () => {} });
    try {
      for (const name of [state.database, state.template]) {
        if (name) await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      }
    } finally {
      await admin.end();
    }
  }
  await state.container?.stop();
  for (const file of state.snapshotFiles ?? []) rmSync(file, { force: true });
}
