/**
 * Several instances behind a load balancer: three spawned services on one PostgreSQL database (and one
 * Redis). Whichever instance a request reaches, a unit gets one variant; a configuration change made
 * through one reaches the others within a second; the rate limit of a key is one budget across all of
 * them; and killing an instance in the middle of ingestion loses no event any instance acknowledged and
 * stores none twice.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { queryRows } from '../../src/db/client';
import { getVariants } from '../../src/experiments/repository';
import { testDriver } from '../support/db';
import { createRunningExperiment } from '../support/factories';
import { type SpawnedService, spawnService } from '../support/processes';
import {
  type IsolatedDatabase,
  makeKey,
  openIsolatedDatabase,
  postGraphQL,
  rawPost,
  sleep,
} from '../support/server';

const RATE = 20; // requests per second per key, shared by the instances (burst the same)

// Spawned instances cannot reach an in-memory PGlite: several instances need PostgreSQL.
const onPostgres = testDriver() === 'postgres' ? describe : describe.skip;

onPostgres('three instances on one database', () => {
  let iso: IsolatedDatabase;
  let instances: SpawnedService[] = [];

  beforeAll(async () => {
    iso = await openIsolatedDatabase();
    const env = {
      DATABASE_URL: iso.url!,
      REDIS_URL: 'redis://127.0.0.1:6379',
      DB_POOL_SIZE: '4',
      RATE_LIMIT_PER_SECOND: String(RATE),
      RATE_LIMIT_BURST: String(RATE),
      LOG_LEVEL: 'warn',
    };
    instances = await Promise.all([spawnService(env), spawnService(env), spawnService(env)]);
  });
  afterAll(async () => {
    await Promise.all(instances.map((i) => i.kill()));
    await iso?.close();
  });

  /** A new key per part: each has its own rate-limit budget (the bucket is named by the key's id). */
  const newKey = async () => (await makeKey(iso.handle.db, ['admin'])).key;

  const assign = (instance: SpawnedService, key: string, experimentKey: string, userId: string) =>
    rawPost(`${instance.base}/v1/assignments`, JSON.stringify({ experimentKey, userId }), { key });

  it('a unit gets one variant whichever instance it reaches, and is stored once', async () => {
    const experiment = await createRunningExperiment(iso.handle.db);
    const users = Array.from({ length: 15 }, (_, i) => `multi-${i}`);
    // Each unit asked on every instance at once (racing first enrolments), with keys enough for the budget.
    const keys = await Promise.all(users.map(() => newKey()));
    const answers = await Promise.all(
      users.flatMap((userId, u) =>
        instances.map((instance) => assign(instance, keys[u], experiment.key, userId)),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(answers.length).fill(200));
    const rows = await queryRows<{ user_id: string; variant_id: string }>(
      iso.handle.db,
      sql`SELECT user_id, variant_id FROM experiment_assignments WHERE experiment_id = ${experiment.id}`,
    );
    expect(rows).toHaveLength(users.length);
    const stored = new Map(rows.map((r) => [r.user_id, r.variant_id]));
    for (const { body } of answers) expect(body.variant.id).toBe(stored.get(body.userId));
  });

  it('pausing through one instance stops enrolment through the others within a second', async () => {
    const experiment = await createRunningExperiment(iso.handle.db);
    const key = await newKey();
    const [a, b, c] = instances;
    // Warm b's and c's configuration caches: they now hold the experiment as RUNNING.
    for (const other of [b, c])
      expect((await assign(other, key, experiment.key, 'warm')).body.enrolled).toBe(true);
    const paused = await postGraphQL(
      a.url,
      'mutation Pause($id: ID!) { pauseExperiment(id: $id) { __typename ... on Experiment { status } } }',
      { id: experiment.id },
      { key },
    );
    expect(paused.body.data.pauseExperiment).toEqual({ __typename: 'Experiment', status: 'PAUSED' });
    const since = Date.now();
    for (const other of [b, c]) {
      let reason = '';
      let n = 0;
      while (Date.now() - since < 1000) {
        reason = (await assign(other, key, experiment.key, `after-pause-${n++}`)).body.reason;
        if (reason === 'NOT_RUNNING') break;
        await sleep(20);
      }
      expect(reason).toBe('NOT_RUNNING');
    }
  });

  it('one rate-limit budget per key across the instances (Redis)', async () => {
    const key = await newKey();
    const experiment = await createRunningExperiment(iso.handle.db);
    // All at once, spread over the three: the budget is RATE, not 3 × RATE.
    const answers = await Promise.all(
      Array.from({ length: RATE + 10 }, (_, i) => assign(instances[i % 3], key, experiment.key, `rl-${i}`)),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(RATE + 1);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(9);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
  });

  it('killing an instance during ingestion loses no acknowledged event and stores none twice', async () => {
    const experiment = await createRunningExperiment(iso.handle.db);
    const variants = await getVariants(iso.handle.db, experiment.id);
    const keys = await Promise.all(instances.map(() => newKey()));
    const mutation = `mutation Ingest($events: [EventInput!]!) {
      recordEvents(events: $events) { accepted duplicates rejected { index } } }`;
    const acknowledged: string[] = [];
    const sent: string[] = [];
    const batchesAcknowledged = [0, 0, 0];
    /** One instance's stream of batches of 50 events, until it fails (killed) or has sent `batches`. */
    const stream = async (i: number, batches: number) => {
      for (let b = 0; b < batches; b++) {
        const events = Array.from({ length: 50 }, (_, e) => ({
          eventId: randomUUID(),
          kind: e % 2 ? 'CONVERSION' : 'EXPOSURE',
          experimentKey: experiment.key,
          userId: `kill-${i}-${b}-${e % 10}`,
          variantId: variants[e % variants.length].id,
          metricName: 'watch_minutes',
          value: e,
        }));
        sent.push(...events.map((e) => e.eventId));
        const send = () =>
          postGraphQL(instances[i].url, mutation, { events }, { key: keys[i] }).catch(() => null);
        let response = await send();
        // Over the key's rate limit nothing was written: the same batch again, a little later.
        while (response?.status === 429) {
          await sleep(100);
          response = await send();
        }
        if (!response) return; // the connection died with the instance: not acknowledged
        if (response.status !== 200 || !response.body.data) return;
        expect(response.body.data.recordEvents).toMatchObject({ accepted: 50, duplicates: 0, rejected: [] });
        acknowledged.push(...events.map((e) => e.eventId));
        batchesAcknowledged[i]++;
      }
    };
    const BATCHES = 40;
    const streams = [0, 1, 2].map((i) => stream(i, BATCHES));
    // Killed (SIGKILL) once it has acknowledged some batches, with more in flight.
    while (batchesAcknowledged[2] < 2) await sleep(5);
    await instances[2].kill();
    await Promise.all(streams);
    expect(batchesAcknowledged[2]).toBeLessThan(BATCHES);
    expect(batchesAcknowledged.slice(0, 2)).toEqual([BATCHES, BATCHES]);

    const stored = await queryRows<{ event_id: string; n: number }>(
      iso.handle.db,
      sql`SELECT event_id, count(*)::int AS n FROM (
            SELECT event_id FROM experiment_exposures WHERE experiment_id = ${experiment.id}
            UNION ALL SELECT event_id FROM experiment_conversions WHERE experiment_id = ${experiment.id}) e
          GROUP BY event_id`,
    );
    const counts = new Map(stored.map((r) => [r.event_id, r.n]));
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const id of acknowledged) expect(counts.get(id)).toBe(1);
    for (const n of counts.values()) expect(n).toBe(1);
    // Nothing stored that was never sent.
    const all = new Set(sent);
    for (const id of counts.keys()) expect(all.has(id)).toBe(true);
    // And the maintained aggregates still equal a rebuild from the raw rows.
    const before = await queryRows(
      iso.handle.db,
      sql`SELECT * FROM experiment_variant_stats WHERE experiment_id = ${experiment.id} ORDER BY variant_id, metric_name`,
    );
    await iso.handle.db.execute(sql`SELECT rebuild_experiment_stats(ARRAY[${experiment.id}]::uuid[])`);
    const after = await queryRows(
      iso.handle.db,
      sql`SELECT * FROM experiment_variant_stats WHERE experiment_id = ${experiment.id} ORDER BY variant_id, metric_name`,
    );
    expect(after).toEqual(before);
  });
});
