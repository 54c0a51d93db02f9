/**
 * Attribution windows end to end: a conversion counts only from its unit's first exposure until the
 * experiment completed (or the metric's conversion window), whatever order the events arrive in; events
 * outside are stored and reported as excluded; the maintained aggregates always equal a rebuild from raw
 * rows. BINOMIAL conversion = a unit whose counted total is > 0.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { lockExperimentsForIngest } from '../../src/aggregates/fold';
import { rebuildStats } from '../../src/aggregates/rebuild';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { recordEvents } from '../../src/events/service';
import type { App } from '../../src/http/app';
import { createTestApp, gqlOk } from '../support/app';
import { openTestDatabase, testDriver } from '../support/db';
import { assignUnit, createRunningWithVariants, experimentService, uniqueKey } from '../support/factories';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase({ poolSize: 6 });
  app = createTestApp(handle);
});
afterAll(async () => handle.close());

const HOUR = 3600_000;

interface Ev {
  kind: 'EXPOSURE' | 'CONVERSION';
  userId: string;
  at: Date;
  metricName?: string;
  value?: number;
}

async function record(experimentKey: string, variantId: string, events: Ev[]): Promise<void> {
  const result = await recordEvents(
    handle.db,
    events.map((e) => ({
      kind: e.kind,
      experimentKey,
      userId: e.userId,
      variantId,
      eventId: randomUUID(),
      occurredAt: e.at,
      ...(e.kind === 'CONVERSION' ? { metricName: e.metricName ?? 'revenue', value: e.value ?? 1 } : {}),
    })),
  );
  expect(result.rejected).toEqual([]);
}

/** The maintained aggregates of an experiment, in a fixed order. */
async function aggregates(experimentId: string) {
  const users = await queryRows(
    handle.db,
    sql`SELECT user_id, metric_name, variant_id::text, events::int, total, first_at::text
          FROM experiment_user_metrics WHERE experiment_id = ${experimentId} ORDER BY user_id, metric_name`,
  );
  const stats = await queryRows(
    handle.db,
    sql`SELECT variant_id::text, metric_name, events::int, units::int, sum, sum_squares, exposed_units::int,
               exposed_sum, exposed_sum_squares, converted_units::int, recorded_events::int
          FROM experiment_variant_stats WHERE experiment_id = ${experimentId} ORDER BY variant_id, metric_name`,
  );
  const phases = await queryRows(
    handle.db,
    sql`SELECT variant_id::text, phase, exposed_units::int FROM experiment_phase_stats
         WHERE experiment_id = ${experimentId} ORDER BY variant_id, phase`,
  );
  return { users, stats, phases };
}

/** Maintained == rebuilt from raw rows (the rebuild leaves them as they were). */
async function expectRebuildAgrees(experimentId: string) {
  const maintained = await aggregates(experimentId);
  await rebuildStats(handle.db, [experimentId]);
  expect(await aggregates(experimentId)).toEqual(maintained);
  return maintained;
}

async function results(experimentId: string, metric: string, type?: 'BINOMIAL' | 'MEAN') {
  const data = await gqlOk(
    app,
    `query ($id: ID!, $metric: String!, $type: MetricType) { experiment(id: $id) {
       results(metric: $metric, type: $type, minUnitsPerVariant: 2) {
         reason excludedConversions variants { units mean conversions excludedConversions }
       }
     } }`,
    { id: experimentId, metric, type: type ?? null },
  );
  return data.experiment.results;
}

async function setWindows(
  experimentId: string,
  settings: { metric: string; conversionWindowHours: number | null }[],
) {
  await experimentService(handle.db).update(experimentId, { metricSettings: settings });
}

describe('attribution window', () => {
  it("a purchase before the unit's first exposure does not count (the issue's repro)", async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const t = Date.now() - 10 * HOUR;
    const [control, treatment] = variants.map((v) => v.id);
    // Control: four exposed units spending 10 in the experiment (mean 2.5), and one purchase of 5 an hour
    // before its unit was exposed, which used to lift the mean to 3.75.
    const units = ['c1', 'c2', 'c3', 'c4'];
    await record(experiment.key, control, [
      { kind: 'CONVERSION', userId: 'c1', at: new Date(t - HOUR), value: 5 },
      ...units.map((userId) => ({ kind: 'EXPOSURE' as const, userId, at: new Date(t) })),
      { kind: 'CONVERSION', userId: 'c1', at: new Date(t + HOUR), value: 4 },
      { kind: 'CONVERSION', userId: 'c2', at: new Date(t + HOUR), value: 6 },
    ]);
    await record(experiment.key, treatment, [
      { kind: 'EXPOSURE', userId: 't1', at: new Date(t) },
      { kind: 'EXPOSURE', userId: 't2', at: new Date(t) },
      { kind: 'CONVERSION', userId: 't1', at: new Date(t + HOUR), value: 3 },
    ]);
    const r = await results(experiment.id, 'revenue');
    expect(r.variants[0]).toMatchObject({ units: 4, mean: 2.5, excludedConversions: 1 });
    expect(r.variants[1]).toMatchObject({ units: 2, mean: 1.5, excludedConversions: 0 });
    expect(r.excludedConversions).toBe(1);
    // Stored all the same.
    const [{ n }] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM experiment_conversions WHERE experiment_id = ${experiment.id}`,
    );
    expect(n).toBe(4);
    await expectRebuildAgrees(experiment.id);
  });

  it('window edges: exactly at the first exposure and at the window end count, a millisecond outside does not', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    await setWindows(experiment.id, [{ metric: 'purchase', conversionWindowHours: 2 }]);
    const t = Date.now() - 10 * HOUR;
    const v = variants[0].id;
    const purchase = (at: number, value: number): Ev => ({
      kind: 'CONVERSION',
      userId: 'u',
      at: new Date(at),
      metricName: 'purchase',
      value,
    });
    await record(experiment.key, v, [
      { kind: 'EXPOSURE', userId: 'u', at: new Date(t) },
      purchase(t - 1, 1000),
      purchase(t, 1),
      purchase(t + 2 * HOUR, 10),
      purchase(t + 2 * HOUR + 1, 100),
      // Another metric has no window: it counts until the end.
      { kind: 'CONVERSION', userId: 'u', at: new Date(t + 5 * HOUR), metricName: 'revenue', value: 7 },
    ]);
    const { users } = await expectRebuildAgrees(experiment.id);
    const total = (metric: string) => users.find((u: any) => u.metric_name === metric) as any;
    expect(total('purchase')).toMatchObject({ events: 2, total: 11 });
    expect(total('revenue')).toMatchObject({ events: 1, total: 7 });
    expect(total('$any')).toMatchObject({ events: 3, total: 18 });
    expect((await results(experiment.id, 'purchase')).excludedConversions).toBe(2);

    // Widening the window recounts the stored events.
    await setWindows(experiment.id, [{ metric: 'purchase', conversionWindowHours: 3 }]);
    const after = await expectRebuildAgrees(experiment.id);
    expect(after.users.find((u: any) => u.metric_name === 'purchase')).toMatchObject({
      events: 3,
      total: 111,
    });
    const listed = await gqlOk(
      app,
      `query ($id: ID!) { experiment(id: $id) { metricSettings { metric conversionWindowHours } } }`,
      { id: experiment.id },
    );
    expect(listed.experiment.metricSettings).toEqual([{ metric: 'purchase', conversionWindowHours: 3 }]);
  });

  it('the end: a conversion at the completion time counts, one after it does not', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const v = variants[0].id;
    await record(experiment.key, v, [{ kind: 'EXPOSURE', userId: 'u', at: new Date(Date.now() - HOUR) }]);
    const completed = await experimentService(handle.db).transition(experiment.id, 'complete');
    const end = completed.endAt!.getTime();
    await record(experiment.key, v, [
      { kind: 'CONVERSION', userId: 'u', at: new Date(end), value: 1 },
      { kind: 'CONVERSION', userId: 'u', at: new Date(end + 1), value: 10 },
    ]);
    const { users } = await expectRebuildAgrees(experiment.id);
    expect(users.find((u: any) => u.metric_name === 'revenue')).toMatchObject({ events: 1, total: 1 });
    expect((await results(experiment.id, 'revenue')).excludedConversions).toBe(1);
  });

  it('completing while batches are folded neither deadlocks nor leaves the aggregates off the rebuild', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const users = Array.from({ length: 160 }, (_, i) => `racer-${i}`);
    for (const [i, userId] of users.entries()) {
      await assignUnit(handle.db, { experimentId: experiment.id, userId, variantId: variants[i % 2].id });
    }
    // Eight batches of twenty units each (exposure, then conversions dated now), racing the completion. Each
    // batch has its own metric, so every fold inserts new per-variant rows, whose foreign-key checks lock the
    // experiment's row (KEY SHARE) while the fold holds the ingestion lock the completion waits for.
    const batches = Array.from({ length: 8 }, (_, b) =>
      users.slice(b * 20, (b + 1) * 20).flatMap((userId, i) => [
        {
          kind: 'EXPOSURE',
          experimentKey: experiment.key,
          userId,
          eventId: randomUUID(),
          occurredAt: new Date(Date.now() - HOUR),
        },
        {
          kind: 'CONVERSION',
          experimentKey: experiment.key,
          userId,
          eventId: randomUUID(),
          metricName: 'revenue',
          value: i + 1,
        },
      ]),
    );
    const [completed, ...outcomes] = await Promise.all([
      experimentService(handle.db).transition(experiment.id, 'complete'),
      ...batches.map((events) => recordEvents(handle.db, events)),
    ]);
    expect(completed.status).toBe('completed');
    expect(outcomes.flatMap((o) => o.rejected)).toEqual([]);
    await expectRebuildAgrees(experiment.id);
  });

  (testDriver() === 'postgres' ? it : it.skip)(
    'completing waits for a fold holding the ingestion lock, whose new rows lock the experiment: no deadlock',
    async () => {
      const { experiment, variants } = await createRunningWithVariants(handle.db);
      const waitingForIngestLock = async () => {
        for (;;) {
          const [{ n }] = await queryRows<{ n: number }>(
            handle.db,
            sql`SELECT count(*)::int AS n FROM pg_locks
                 WHERE locktype = 'advisory' AND NOT granted
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          );
          if (n > 0) return;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      };
      let completing: Promise<unknown> = Promise.resolve();
      // A fold's position: the ingestion lock held, then a new per-variant row, whose foreign-key check takes
      // KEY SHARE on the experiment's row, which the completion has locked by then. Rolled back afterwards.
      const fold = handle.db.transaction(async (tx) => {
        await lockExperimentsForIngest(tx, [experiment.id]);
        completing = experimentService(handle.db).transition(experiment.id, 'complete');
        await waitingForIngestLock();
        await tx.execute(sql`INSERT INTO experiment_variant_stats (experiment_id, variant_id, metric_name)
                             VALUES (${experiment.id}, ${variants[0].id}, 'probe')`);
        tx.rollback();
      });
      await expect(fold).rejects.toThrow(/rollback/i);
      await expect(completing).resolves.toMatchObject({ status: 'completed' });
    },
  );

  it('every arrival order gives the same totals, equal to the rebuild (exposures late and out of order)', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    await setWindows(experiment.id, [{ metric: 'purchase', conversionWindowHours: 2 }]);
    const v = variants[0].id;
    const t = Date.now() - 10 * HOUR;
    // The first exposure at t opens [t, t + 2 h]; the later one alone would open [t + 3 h, t + 5 h].
    const events = (userId: string): Ev[] => [
      { kind: 'EXPOSURE', userId, at: new Date(t + 3 * HOUR) },
      { kind: 'EXPOSURE', userId, at: new Date(t) },
      { kind: 'CONVERSION', userId, at: new Date(t + HOUR), metricName: 'purchase', value: 1 },
      { kind: 'CONVERSION', userId, at: new Date(t + 4 * HOUR), metricName: 'purchase', value: 10 },
    ];
    const permutations = <T>(xs: T[]): T[][] =>
      xs.length <= 1
        ? [xs]
        : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
    const orders = permutations([0, 1, 2, 3]);
    // Each order is one unit, its events arriving one batch at a time; the aggregates are checked after
    // every batch of the first orders, and at the end for all.
    for (const [o, order] of orders.entries()) {
      const mine = events(`order-${o}`);
      for (const i of order) {
        await record(experiment.key, v, [mine[i]]);
        if (o < 3) await expectRebuildAgrees(experiment.id);
      }
    }
    const { users } = await expectRebuildAgrees(experiment.id);
    for (const [o] of orders.entries()) {
      const rows = users.filter((u: any) => u.user_id === `order-${o}`);
      expect({ o, rows: rows.map((u: any) => [u.metric_name, u.events, u.total]) }).toEqual({
        o,
        rows: [
          ['$any', 1, 1],
          ['exposure', 2, 2],
          ['purchase', 1, 1],
        ],
      });
    }
  });

  it('BINOMIAL: a unit converts when its counted total is > 0; MEAN sees the same units above 0', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const t = Date.now() - HOUR;
    const [a, b] = variants.map((v) => v.id);
    const exposed = (userId: string): Ev => ({ kind: 'EXPOSURE', userId, at: new Date(t) });
    const signup = (userId: string, value: number): Ev => ({
      kind: 'CONVERSION',
      userId,
      at: new Date(t + 1000),
      metricName: 'signup',
      value,
    });
    await record(experiment.key, a, [
      exposed('a1'),
      exposed('a2'),
      exposed('a3'),
      signup('a1', 1),
      signup('a2', 0),
    ]);
    await record(experiment.key, b, [exposed('b1'), exposed('b2'), signup('b1', 2), signup('b1', -2)]);
    const binomial = await results(experiment.id, 'signup', 'BINOMIAL');
    expect(binomial.variants.map((v: any) => v.conversions)).toEqual([1, 0]);
    const mean = await results(experiment.id, 'signup', 'MEAN');
    expect(mean.variants.map((v: any) => v.mean)).toEqual([1 / 3, 0]);
    await expectRebuildAgrees(experiment.id);
  });

  it('bad metric settings are a typed error naming the field, and nothing is written', async () => {
    const key = uniqueKey('attribution');
    const data = await gqlOk(
      app,
      `mutation ($input: CreateExperimentInput!) { createExperiment(input: $input) {
         __typename ... on ValidationError { fieldErrors { path message } }
       } }`,
      {
        input: {
          key,
          name: 'x',
          metricSettings: [
            { metric: 'purchase', conversionWindowHours: 0 },
            { metric: 'Not A Slug' },
            { metric: 'purchase', conversionWindowHours: 1 },
          ],
        },
      },
    );
    expect(data.createExperiment.__typename).toBe('ValidationError');
    const paths = data.createExperiment.fieldErrors.map((e: any) => e.path.join('.'));
    expect(paths).toEqual(
      expect.arrayContaining([
        'input.metricSettings.0.conversionWindowHours',
        'input.metricSettings.1.metric',
      ]),
    );
    const [{ n }] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM experiments WHERE key = ${key}`,
    );
    expect(n).toBe(0);
  });
});
