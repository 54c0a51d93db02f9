/**
 * GraphQL subscriptions over Server-Sent Events, in process: the first push is the current state, every
 * committed change pushes again what the query returns at that moment, scopes apply as for queries,
 * ingestion notifies once per experiment per transaction, and a subscriber that goes away leaves nothing
 * behind. (Cross-instance latency, coalescing over time and garbage collection after many subscribers:
 * tests/system/live-results.test.ts.)
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { securityConfigFromEnv } from '../../src/config';
import type { DatabaseHandle } from '../../src/db/client';
import { getVariants } from '../../src/experiments/repository';
import { createApp, type App } from '../../src/http/app';
import { LiveUpdates, RESULTS_CHANGED_CHANNEL } from '../../src/live/updates';
import { gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { createRunningExperiment } from '../support/factories';
import { eventually, makeKey, productionSecurity } from '../support/server';
import { subscribe } from '../support/sse';

const RESULTS_FIELDS = `metric type srm { mismatch observed } variants { variant { name } units conversions mean pValue significant relativeEffect { estimate lower upper } }`;
const SUBSCRIBE_RESULTS = `subscription Live($key: String!, $metric: String!) {
  experimentResults(experimentKey: $key, metric: $metric) { ${RESULTS_FIELDS} } }`;
const QUERY_RESULTS = `query Now($key: String!, $metric: String!) {
  experiment(key: $key) { results(metric: $metric) { ${RESULTS_FIELDS} } } }`;
const RECORD = `mutation Record($events: [EventInput!]!) { recordEvents(events: $events) { accepted rejected { index message } } }`;

describe('subscriptions over Server-Sent Events', () => {
  let handle: DatabaseHandle;
  let live: LiveUpdates;
  let app: App;
  let securedApp: App;
  const fetchApp = (target: App) => (url: string, init: RequestInit) =>
    Promise.resolve(target.fetch(url, init));

  beforeAll(async () => {
    handle = await openTestDatabase();
    // No coalescing window here: timing is the system tier's business.
    live = new LiveUpdates(0);
    await live.start(handle);
    const logger = pino({ level: process.env.TEST_LOG_LEVEL || 'silent' });
    app = createApp({ db: handle.db, logger, security: securityConfigFromEnv({}), live });
    securedApp = createApp({ db: handle.db, logger, security: productionSecurity(), live });
  });
  afterAll(async () => {
    await live.stop();
    await handle.close();
  });

  /** Exposures and conversions for `users` units of each variant (the events enrol them). */
  async function record(experimentId: string, key: string, users: number, convertEvery = 2) {
    const variants = await getVariants(handle.db, experimentId);
    const events = variants.flatMap((v, vi) =>
      Array.from({ length: users }, (_, u) => {
        const userId = `u-${v.name}-${randomUUID().slice(0, 8)}`;
        const base = { experimentKey: key, userId, variantId: v.id };
        const exposure = { ...base, kind: 'EXPOSURE', eventId: randomUUID() };
        return (u + vi) % convertEvery === 0
          ? [exposure, { ...base, kind: 'CONVERSION', metricName: 'conversion', eventId: randomUUID() }]
          : [exposure];
      }).flat(),
    );
    const { recordEvents } = await gqlOk(app, RECORD, { events });
    expect(recordEvents.rejected).toEqual([]);
    return recordEvents.accepted as number;
  }

  it('pushes the current results at once, then what `results` returns after each committed batch', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const vars = { key: experiment.key, metric: 'conversion' };
    const sub = await subscribe(fetchApp(app), 'http://localhost/graphql', SUBSCRIBE_RESULTS, vars);
    try {
      expect(sub.status).toBe(200);
      const first = await sub.push(0);
      expect(first.errors).toBeUndefined();
      expect(first.data.experimentResults.variants.map((v: any) => v.units)).toEqual([0, 0]);

      await record(experiment.id, experiment.key, 30);
      const second = await sub.push(1);
      const now = await gqlOk(app, QUERY_RESULTS, vars);
      expect(second.data.experimentResults).toEqual(now.experiment.results);
      expect(second.data.experimentResults.variants.map((v: any) => v.units)).toEqual([30, 30]);

      await record(experiment.id, experiment.key, 10, 1);
      const third = await sub.push(2);
      expect(third.data.experimentResults).toEqual(
        (await gqlOk(app, QUERY_RESULTS, vars)).experiment.results,
      );
      expect(third.data.experimentResults.variants.map((v: any) => v.units)).toEqual([40, 40]);
    } finally {
      sub.close();
    }
  });

  it('experimentChanged pushes the experiment after a configuration change and after new events', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const sub = await subscribe(
      fetchApp(app),
      'http://localhost/graphql',
      `subscription Changed($key: String!) { experimentChanged(experimentKey: $key) {
        key status metrics { totalExposures } auditLog(first: 5) { action } } }`,
      { key: experiment.key },
    );
    try {
      expect((await sub.push(0)).data.experimentChanged).toMatchObject({ status: 'RUNNING' });
      await record(experiment.id, experiment.key, 5);
      const counted = await sub.push(1);
      expect(counted.data.experimentChanged.metrics.totalExposures).toBe(10);
      await gqlOk(app, 'mutation P($id: ID!) { pauseExperiment(id: $id) { __typename } }', {
        id: experiment.id,
      });
      const paused = await sub.push(2);
      expect(paused.data.experimentChanged.status).toBe('PAUSED');
      expect(paused.data.experimentChanged.auditLog[0].action).toBe('experiment.paused');
    } finally {
      sub.close();
    }
  });

  it('an unknown experiment or a bad metric is an error, and nothing keeps listening', async () => {
    const unknown = await subscribe(fetchApp(app), 'http://localhost/graphql', SUBSCRIBE_RESULTS, {
      key: `missing-${randomUUID().slice(0, 8)}`,
      metric: 'conversion',
    });
    const push = await unknown.push(0);
    expect(push.errors?.[0].extensions?.code).toBe('NOT_FOUND');
    const experiment = await createRunningExperiment(handle.db);
    const bad = await subscribe(fetchApp(app), 'http://localhost/graphql', SUBSCRIBE_RESULTS, {
      key: experiment.key,
      metric: 'not a metric!',
    });
    const refused = await bad.push(0);
    expect(refused.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(refused.errors)).toContain('metric');
    await expect(eventually(async () => unknown.completed() && bad.completed())).resolves.toBe(true);
    // Earlier tests' subscribers are gone too, once their disconnection reached the server.
    await expect(eventually(async () => live.stats().subscribers === 0)).resolves.toBe(true);
    expect(live.stats()).toMatchObject({ experiments: 0, subscribers: 0, timers: 0 });
  });

  it('needs the `read` scope, like the queries', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const vars = { key: experiment.key, metric: 'conversion' };
    const assignOnly = await makeKey(handle.db, ['assign']);
    const refused = await subscribe(
      fetchApp(securedApp),
      'http://localhost/graphql',
      SUBSCRIBE_RESULTS,
      vars,
      {
        authorization: `Bearer ${assignOnly.key}`,
      },
    );
    const answer = await refused.push(0);
    expect(answer.data ?? null).toBeNull();
    expect(answer.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    const anonymous = await subscribe(
      fetchApp(securedApp),
      'http://localhost/graphql',
      SUBSCRIBE_RESULTS,
      vars,
    );
    expect(anonymous.status).toBe(401);
    const reader = await makeKey(handle.db, ['read']);
    const allowed = await subscribe(
      fetchApp(securedApp),
      'http://localhost/graphql',
      SUBSCRIBE_RESULTS,
      vars,
      {
        authorization: `Bearer ${reader.key}`,
      },
    );
    try {
      expect((await allowed.push(0)).data.experimentResults.metric).toBe('conversion');
    } finally {
      allowed.close();
    }
  });

  it('ingestion notifies once per experiment per transaction, however many events', async () => {
    const a = await createRunningExperiment(handle.db);
    const b = await createRunningExperiment(handle.db);
    const seen: string[] = [];
    const sentinel = randomUUID();
    const unlisten = await handle.listen(RESULTS_CHANGED_CHANNEL, (id) => seen.push(id));
    try {
      const [va, vb] = [await getVariants(handle.db, a.id), await getVariants(handle.db, b.id)];
      const events = Array.from({ length: 60 }, (_, i) => {
        const [experiment, variants] = i % 2 ? [a, va] : [b, vb];
        return {
          kind: 'EXPOSURE',
          experimentKey: experiment.key,
          userId: `n-${i}`,
          variantId: variants[i % 2 === 0 ? 0 : 1].id,
          eventId: randomUUID(),
        };
      });
      expect((await gqlOk(app, RECORD, { events })).recordEvents.accepted).toBe(60);
      // A replay commits nothing new: no notification.
      expect((await gqlOk(app, RECORD, { events: events.slice(0, 10) })).recordEvents.accepted).toBe(0);
      // Notifications arrive in commit order: once the sentinel is here, every earlier one is too.
      await handle.db.execute(
        (await import('drizzle-orm')).sql`SELECT pg_notify(${RESULTS_CHANGED_CHANNEL}, ${sentinel})`,
      );
      await expect(eventually(async () => seen.includes(sentinel))).resolves.toBe(true);
      // Other test files ingest into the same database meanwhile: count this test's experiments only.
      expect(seen.filter((id) => id === a.id || id === b.id).sort()).toEqual([a.id, b.id].sort());
    } finally {
      await unlisten();
    }
  });

  it('a subscriber that disconnects leaves no listener, timer or subscription behind', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const vars = { key: experiment.key, metric: 'conversion' };
    await expect(eventually(async () => live.stats().subscribers === 0)).resolves.toBe(true);
    const before = live.stats();
    const subs = await Promise.all(
      Array.from({ length: 25 }, () =>
        subscribe(fetchApp(app), 'http://localhost/graphql', SUBSCRIBE_RESULTS, vars),
      ),
    );
    await Promise.all(subs.map((s) => s.push(0)));
    expect(live.stats().subscribers).toBe(before.subscribers + 25);
    for (const s of subs.slice(0, 10)) s.close();
    // Changes while some are gone reach only those still there.
    await record(experiment.id, experiment.key, 3);
    await Promise.all(subs.slice(10).map((s) => s.push(1)));
    for (const s of subs.slice(10)) s.close();
    await expect(eventually(async () => live.stats().subscribers === before.subscribers)).resolves.toBe(true);
    expect(live.stats()).toEqual(before);
    // One LISTEN per channel for the process, never one per subscriber.
    expect(live.stats().listens).toBe(2);
  });
});
