/** Recomputes the maintained aggregates from raw events (all experiments, or the keys given). */
import { inArray } from 'drizzle-orm';
import { experiments } from '../db/schema';
import { rebuildStats } from '../aggregates/rebuild';
import { withDatabase } from './common';

const keys = process.argv.slice(2);
await withDatabase(async (handle) => {
  const started = Date.now();
  await handle.db.transaction(async (tx) => {
    if (keys.length === 0) return rebuildStats(tx, null);
    const rows = await tx
      .select({ id: experiments.id, key: experiments.key })
      .from(experiments)
      .where(inArray(experiments.key, keys));
    const missing = keys.filter((k) => !rows.some((r) => r.key === k));
    if (missing.length) throw new Error(`unknown experiment key(s): ${missing.join(', ')}`);
    return rebuildStats(
      tx,
      rows.map((r) => r.id),
    );
  });
  console.log(
    `rebuilt aggregates for ${keys.length ? keys.join(', ') : 'all experiments'} in ${Date.now() - started} ms`,
  );
});
