/**
 * Batch ingestion through the `recordEvents` mutation: per-event outcomes by index, idempotent replays
 * that change no number, the batch-size limit, and a statement count that does not grow with the batch.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { assignVariant } from '../../src/assignments/service';
import { LIMITS } from '../../src/config';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { rebuildStats } from '../../src/aggregates/rebuild';
import type { ExperimentRow, VariantRow } from '../../src/experiments/repository';
import type { App } from '../../src/http/app';
import { createTestApp, gql, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { createRunningWithVariants, uniqueKey } from '../support/factories';
import { rowCounts } from '../support/rows';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => handle.close());

const RECORD = `mutation ($events: [EventInput!]!) {
  recordEvents(events: $events) { accepted duplicates rejected { index code message fieldErrors { path } } }
}`;

async function record(events: Record<string, unknown>[]) {
  return (await gqlOk(app, RECORD, { events })).recordEvents;
}

/** Everything a batch can change for an experiment: raw rows, the aggregates, and what the API reports. */
async function snapshot(experiment: ExperimentRow) {
  const userMetrics = await queryRows(
    handle.db,
    sql`SELECT user_id, metric_name, variant_id::text, events::float8, total FROM experiment_user_metrics
         WHERE experiment_id = ${experiment.id} ORDER BY user_id, metric_name`,
  );
  const variantStats = await queryRows(
    handle.db,
    sql`SELECT variant_id::text, metric_name, events::float8, units::float8, sum, sum_squares,
               exposed_units::float8, exposed_sum, exposed_sum_squares
          FROM experiment_variant_stats WHERE experiment_id = ${experiment.id} ORDER BY variant_id, metric_name`,
  );
  const api = await gqlOk(
    app,
    `query ($key: String!) { experiment(key: $key) {
       metricNames assignmentCount
       summary { variantId exposures uniqueUsers conversions conversionRate avgMetricValue }
       metrics { totalExposures totalUniqueUsers }
       scorecard { metric variants { units conversions mean standardDeviation pValue } }
     } }`,
    { key: experiment.key },
  );
  return { rows: await rowCounts(handle.db, experiment.id), userMetrics, variantStats, api };
}

describe('a mixed batch', () => {
  let experiment: ExperimentRow;
  let control: VariantRow;
  let treatment: VariantRow;
  let foreignVariant: VariantRow;
  let batch: Record<string, unknown>[];
  let first: any;
  const users = { a: uniqueKey('ua'), b: uniqueKey('ub'), c: uniqueKey('uc'), d: uniqueKey('ud') };

  beforeAll(async () => {
    ({
      experiment,
      variants: [control, treatment],
    } = await createRunningWithVariants(handle.db));
    foreignVariant = (await createRunningWithVariants(handle.db)).variants[0];
    // User a is bucketed the usual way; the batch names a's variant only where it must mismatch.
    const assigned = await assignVariant(handle.db, experiment.key, users.a);
    const aVariant = assigned.variant!;
    const notA = aVariant.id === control.id ? treatment : control;
    const key = experiment.key;
    const e = (kind: 'EXPOSURE' | 'CONVERSION', userId: string, extra: Record<string, unknown> = {}) => ({
      kind,
      experimentKey: key,
      userId,
      eventId: randomUUID(),
      ...extra,
    });
    batch = [
      /* 0 */ e('EXPOSURE', users.a),
      /* 1 */ e('CONVERSION', users.a, { metricName: 'purchase', value: 5 }),
      /* 2 */ e('CONVERSION', users.a, { metricName: 'purchase', value: 2.5 }),
      /* 3 */ e('EXPOSURE', users.b, { variantId: treatment.id }),
      /* 4 */ e('CONVERSION', users.b, { metricName: 'purchase' }),
      /* 5 */ e('EXPOSURE', users.b, { eventId: 'not-a-uuid' }),
      /* 6 */ e('CONVERSION', users.a, { metricName: 'Bad Name', value: 1 }),
      /* 7 */ e('CONVERSION', users.a, { value: 1 }),
      /* 8 */ e('CONVERSION', users.a, { metricName: 'm'.repeat(5000), value: 1 }),
      /* 9 */ e('CONVERSION', users.a, { metricName: 'exposure', value: 1 }),
      /* 10 */ e('EXPOSURE', users.a, { experimentKey: uniqueKey('missing') }),
      /* 11 */ e('EXPOSURE', users.c),
      /* 12 */ e('CONVERSION', users.a, { metricName: 'purchase', value: 1, variantId: notA.id }),
      /* 13 */ e('EXPOSURE', users.d, { variantId: foreignVariant.id }),
      /* 14 */ e('EXPOSURE', users.a),
      /* 15 */ e('EXPOSURE', ''),
      /* 16 */ e('EXPOSURE', users.d, { variantId: 'xyz' }),
      /* 17 */ e('CONVERSION', users.a, { metricName: 'purchase', value: 1e300 }),
    ];
    // 14 replays 0 within the same batch.
    batch[14].eventId = batch[0].eventId;
    first = await record(batch);
  });

  it('accepts the valid events, counts the in-batch replay once, and rejects the rest by index', () => {
    expect(first.accepted).toBe(5);
    expect(first.duplicates).toBe(1);
    expect(
      first.rejected.map((r: any) => [r.index, r.code, r.fieldErrors.map((f: any) => f.path.join('.'))]),
    ).toEqual([
      [5, 'VALIDATION_FAILED', ['events.5.eventId']],
      [6, 'VALIDATION_FAILED', ['events.6.metricName']],
      [7, 'VALIDATION_FAILED', ['events.7.metricName']],
      [8, 'VALIDATION_FAILED', ['events.8.metricName']],
      [9, 'VALIDATION_FAILED', ['events.9.metricName']],
      [10, 'NOT_FOUND', []],
      [11, 'NOT_ASSIGNED', []],
      [12, 'VARIANT_MISMATCH', []],
      [13, 'VALIDATION_FAILED', ['events.13.variantId']],
      [15, 'VALIDATION_FAILED', ['events.15.userId']],
      [16, 'VALIDATION_FAILED', ['events.16.variantId']],
      [17, 'VALIDATION_FAILED', ['events.17.value']],
    ]);
    for (const r of first.rejected) expect(r.message).toEqual(expect.any(String));
    expect(first.accepted + first.duplicates + first.rejected.length).toBe(batch.length);
  });

  it('writes exactly the accepted events, and enrolls only users whose events were accepted', async () => {
    const rows = await rowCounts(handle.db, experiment.id);
    expect(rows).toMatchObject({ exposures: 2, conversions: 3, assignments: 2 });
    const assigned = await queryRows<{ user_id: string; variant_id: string }>(
      handle.db,
      sql`SELECT user_id, variant_id::text FROM experiment_assignments WHERE experiment_id = ${experiment.id} ORDER BY user_id`,
    );
    expect(assigned.map((a) => a.user_id).sort()).toEqual([users.a, users.b].sort());
    expect(assigned.find((a) => a.user_id === users.b)?.variant_id).toBe(treatment.id);
    const stored = await queryRows<{ event_id: string }>(
      handle.db,
      sql`SELECT event_id::text FROM experiment_exposures WHERE experiment_id = ${experiment.id}
          UNION ALL SELECT event_id::text FROM experiment_conversions WHERE experiment_id = ${experiment.id}`,
    );
    expect(stored.map((r) => r.event_id).sort()).toEqual(
      batch
        .slice(0, 5)
        .map((e) => e.eventId)
        .sort(),
    );
  });

  it('folds the accepted events into per-user totals', async () => {
    const totals = await queryRows<{ user_id: string; metric_name: string; events: number; total: number }>(
      handle.db,
      sql`SELECT user_id, metric_name, events::float8, total FROM experiment_user_metrics
           WHERE experiment_id = ${experiment.id} ORDER BY user_id, metric_name`,
    );
    const of = (user: string) =>
      totals.filter((t) => t.user_id === user).map((t) => [t.metric_name, Number(t.events), Number(t.total)]);
    expect(of(users.a)).toEqual([
      ['$any', 2, 7.5],
      ['exposure', 1, 1],
      ['purchase', 2, 7.5],
    ]);
    // A conversion without a value counts 1.
    expect(of(users.b)).toEqual([
      ['$any', 1, 1],
      ['exposure', 1, 1],
      ['purchase', 1, 1],
    ]);
  });

  it('a replayed batch reports every written event as a duplicate and changes no number', async () => {
    const before = await snapshot(experiment);
    const replay = await record(batch);
    expect(replay.accepted).toBe(0);
    expect(replay.duplicates).toBe(6);
    expect(replay.rejected.map((r: any) => [r.index, r.code])).toEqual(
      first.rejected.map((r: any) => [r.index, r.code]),
    );
    expect(await snapshot(experiment)).toEqual(before);
  });
});

describe('duplicates and limits', () => {
  it('the same eventId twice in one batch is written once', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const eventId = randomUUID();
    const conversion = {
      kind: 'CONVERSION',
      experimentKey: experiment.key,
      userId: 'twice',
      variantId: variants[1].id,
      metricName: 'purchase',
      value: 3,
      eventId,
    };
    // Exposed first: conversions count from the unit's first exposure.
    const exposure = {
      kind: 'EXPOSURE',
      experimentKey: experiment.key,
      userId: 'twice',
      variantId: variants[1].id,
      eventId: randomUUID(),
      occurredAt: new Date(Date.now() - 1000),
    };
    const result = await record([
      exposure,
      conversion,
      conversion,
      { ...conversion, eventId: randomUUID(), value: 4 },
    ]);
    expect(result).toEqual({ accepted: 3, duplicates: 1, rejected: [] });
    const [row] = await queryRows<{ events: number; total: number }>(
      handle.db,
      sql`SELECT events::float8, total FROM experiment_user_metrics
           WHERE experiment_id = ${experiment.id} AND user_id = 'twice' AND metric_name = 'purchase'`,
    );
    expect(row).toEqual({ events: 2, total: 7 });
    expect((await rowCounts(handle.db, experiment.id)).conversions).toBe(2);
  });

  it(`more than ${LIMITS.maxBatchSize} events is a BAD_USER_INPUT error and writes nothing`, async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const before = await rowCounts(handle.db, experiment.id);
    const events = Array.from({ length: LIMITS.maxBatchSize + 1 }, (_, i) => ({
      kind: 'EXPOSURE',
      experimentKey: experiment.key,
      userId: `over-${i}`,
      variantId: variants[i % 2].id,
      eventId: randomUUID(),
    }));
    const body = await gql(app, RECORD, { events });
    expect(body.data ?? null).toBeNull();
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'events' });
    expect(body.errors![0].message).toMatch(String(LIMITS.maxBatchSize));
    expect(await rowCounts(handle.db, experiment.id)).toEqual(before);
  });
});

describe('statements per batch', () => {
  /**
   * n events of the same shape: new users enrolled by an exposure naming their variant, each with a
   * conversion, plus exposures of users who already have an assignment.
   */
  async function batchOf(n: number) {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const returning = Array.from({ length: n / 10 }, (_, i) => `returning-${i}`);
    for (const u of returning) await assignVariant(handle.db, experiment.key, u);
    const events = Array.from({ length: n }, (_, i) => {
      const base = { experimentKey: experiment.key, eventId: randomUUID() };
      if (i % 10 === 9) return { ...base, kind: 'EXPOSURE', userId: returning[Math.floor(i / 10)] };
      const userId = `new-${Math.floor(i / 2)}`;
      const variantId = variants[Math.floor(i / 2) % 2].id;
      return i % 2 === 0
        ? { ...base, kind: 'EXPOSURE', userId, variantId }
        : { ...base, kind: 'CONVERSION', userId, variantId, metricName: 'watch_minutes', value: i / 7 };
    });
    return { experiment, events };
  }

  async function statementsFor(n: number) {
    const { experiment, events } = await batchOf(n);
    const before = handle.statements.count;
    const result = await record(events);
    const statements = handle.statements.count - before;
    expect(result).toEqual({ accepted: n, duplicates: 0, rejected: [] });
    const rows = await rowCounts(handle.db, experiment.id);
    expect(rows.exposures + rows.conversions).toBe(n);
    return statements;
  }

  it(`a batch of ${LIMITS.maxBatchSize} takes as many statements as a batch of 10`, async () => {
    const small = await statementsFor(10);
    const large = await statementsFor(LIMITS.maxBatchSize);
    expect(large).toBe(small);
    // Today ten: look up experiments, assignments, the QA overrides of units with no assignment (none with
    // the configuration cache, which carries them) and variants; write assignments; write events; lock;
    // fold; record new units' first exposures (time series, segments); notify live subscribers.
    expect(small).toBeLessThanOrEqual(10);
  });
});

describe('event ids across kinds', () => {
  it('one id is one event: an exposure and a conversion sharing it are recorded once', async () => {
    const { experiment } = await createRunningWithVariants(handle.db);
    await assignVariant(handle.db, experiment.key, 'shared-id-user');
    const eventId = randomUUID();
    const base = { experimentKey: experiment.key, userId: 'shared-id-user', eventId };
    const before = await rowCounts(handle.db, experiment.id);
    const inOneBatch = await record([
      { ...base, kind: 'EXPOSURE' },
      { ...base, kind: 'CONVERSION', metricName: 'conversion' },
    ]);
    expect(inOneBatch).toMatchObject({ accepted: 1, duplicates: 1, rejected: [] });
    // Later, in another batch, the same id under the other kind is still the same event.
    const later = await record([{ ...base, kind: 'CONVERSION', metricName: 'conversion' }]);
    expect(later).toMatchObject({ accepted: 0, duplicates: 1 });
    const after = await rowCounts(handle.db, experiment.id);
    expect(after.exposures - before.exposures).toBe(1);
    expect(after.conversions - before.conversions).toBe(0);
  });

  it('concurrent batches sending the same ids under both kinds, in opposite orders, record each id once', async () => {
    // Events are inserted before the experiment lock: these batches wait on each other's event ids
    // (which must not deadlock) and may each insert an id under a different kind (which the fold settles).
    const { experiment } = await createRunningWithVariants(handle.db);
    const users = ['race-a', 'race-b', 'race-c'];
    for (const u of users) await assignVariant(handle.db, experiment.key, u);
    const ids: string[] = Array.from({ length: 40 }, () => randomUUID());
    const userOf = new Map(ids.map((id, i) => [id, users[i % users.length]]));
    const batchOf = (kind: 'EXPOSURE' | 'CONVERSION', order: string[]) =>
      order.map((eventId) => ({
        kind,
        experimentKey: experiment.key,
        userId: userOf.get(eventId),
        eventId,
        ...(kind === 'CONVERSION' ? { metricName: 'conversion' } : {}),
      }));
    const reversed = [...ids].reverse();
    const results = await Promise.all(
      [
        batchOf('EXPOSURE', ids),
        batchOf('CONVERSION', reversed),
        batchOf('CONVERSION', ids),
        batchOf('EXPOSURE', reversed),
      ].map(record),
    );
    expect(results.flatMap((r) => r.rejected)).toEqual([]);
    expect(results.reduce((n, r) => n + r.accepted, 0)).toBe(ids.length);
    expect(results.reduce((n, r) => n + r.duplicates, 0)).toBe(3 * ids.length);
    const rows = await rowCounts(handle.db, experiment.id);
    expect(rows.exposures + rows.conversions).toBe(ids.length);
    // The maintained aggregates count exactly the stored rows (values are small integers: exact sums).
    const maintained = await snapshot(experiment);
    await rebuildStats(handle.db, [experiment.id]);
    const rebuilt = await snapshot(experiment);
    expect(maintained.userMetrics).toEqual(rebuilt.userMetrics);
    expect(maintained.variantStats).toEqual(rebuilt.variantStats);
  });
});
