/**
 * The maintained aggregates (per-user totals, per-variant sufficient statistics) against the raw events:
 * after concurrent batches with duplicates, rejections, racing enrolments and late exposures they equal a
 * recomputation in JavaScript from the raw rows; the rebuild restores them after corruption (its CLI,
 * `npm run db:rebuild-stats`: tests/system/cli.test.ts); `metrics` and `summary` agree with the raw
 * `experiment_metrics` view.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { assignVariant } from '../../src/assignments/service';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { recordEvents, type RecordEventsResult } from '../../src/events/service';
import { ANY_CONVERSION_METRIC, EXPOSURE_METRIC } from '../../src/aggregates/constants';
import { rebuildStats } from '../../src/aggregates/rebuild';
import * as experimentsRepo from '../../src/experiments/repository';
import type { ExperimentRow, VariantRow } from '../../src/experiments/repository';
import type { App } from '../../src/http/app';
import { createTestApp, gqlOk } from '../support/app';
import { attributedEvents } from '../support/rows';
import { openTestDatabase } from '../support/db';
import { createRunningExperiment, uniqueKey } from '../support/factories';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase({ poolSize: 10 });
  app = createTestApp(handle);
});
afterAll(async () => handle.close());

interface UserMetric {
  userId: string;
  metricName: string;
  variantId: string;
  events: number;
  total: number;
}

interface VariantStat {
  variantId: string;
  metricName: string;
  events: number;
  units: number;
  sum: number;
  sumSquares: number;
  exposedUnits: number;
  exposedSum: number;
  exposedSumSquares: number;
  convertedUnits: number;
  recordedEvents: number;
}

interface Aggregates {
  userMetrics: UserMetric[];
  variantStats: VariantStat[];
}

const byUserMetric = (a: UserMetric, b: UserMetric) =>
  a.userId.localeCompare(b.userId) || a.metricName.localeCompare(b.metricName);
const byVariantMetric = (a: VariantStat, b: VariantStat) =>
  a.variantId.localeCompare(b.variantId) || a.metricName.localeCompare(b.metricName);

/** The maintained aggregates of one experiment, as stored. */
async function maintained(experimentId: string): Promise<Aggregates> {
  const users = await queryRows<Record<string, unknown>>(
    handle.db,
    sql`SELECT user_id, metric_name, variant_id::text, events::float8, total
          FROM experiment_user_metrics WHERE experiment_id = ${experimentId}`,
  );
  const stats = await queryRows<Record<string, unknown>>(
    handle.db,
    sql`SELECT variant_id::text, metric_name, events::float8, units::float8, sum, sum_squares,
               exposed_units::float8, exposed_sum, exposed_sum_squares, converted_units::float8,
               recorded_events::float8
          FROM experiment_variant_stats WHERE experiment_id = ${experimentId}`,
  );
  return {
    userMetrics: users
      .map((r) => ({
        userId: String(r.user_id),
        metricName: String(r.metric_name),
        variantId: String(r.variant_id),
        events: Number(r.events),
        total: Number(r.total),
      }))
      .sort(byUserMetric),
    variantStats: stats
      .map((r) => ({
        variantId: String(r.variant_id),
        metricName: String(r.metric_name),
        events: Number(r.events),
        units: Number(r.units),
        sum: Number(r.sum),
        sumSquares: Number(r.sum_squares),
        exposedUnits: Number(r.exposed_units),
        exposedSum: Number(r.exposed_sum),
        exposedSumSquares: Number(r.exposed_sum_squares),
        convertedUnits: Number(r.converted_units),
        recordedEvents: Number(r.recorded_events),
      }))
      .sort(byVariantMetric),
  };
}

/**
 * What the aggregates must hold, computed in JavaScript from the raw event rows: per unit, `exposure`
 * counts exposures, each metric sums its conversion values inside the unit's attribution window
 * (attributedEvents) and `$any` sums all of those; per variant, units, sum
 * and sum of squares of those totals (every unit with a total is exposed), units with a total > 0, and every
 * recorded event.
 */
async function recomputed(experimentId: string): Promise<Aggregates> {
  const { exposures, conversions } = await attributedEvents(handle.db, experimentId);
  const units = new Map<string, UserMetric>();
  const add = (userId: string, variantId: string, metricName: string, value: number) => {
    const key = `${userId}\u0000${metricName}`;
    const unit = units.get(key) ?? { userId, metricName, variantId, events: 0, total: 0 };
    // A unit is in exactly one variant, whatever the event.
    expect({ userId, variantId }).toEqual({ userId, variantId: unit.variantId });
    unit.events += 1;
    unit.total += value;
    units.set(key, unit);
  };
  const stats = new Map<string, VariantStat>();
  const statOf = (variantId: string, metricName: string) => {
    const key = `${variantId}\u0000${metricName}`;
    const s = stats.get(key) ?? {
      variantId,
      metricName,
      events: 0,
      units: 0,
      sum: 0,
      sumSquares: 0,
      exposedUnits: 0,
      exposedSum: 0,
      exposedSumSquares: 0,
      convertedUnits: 0,
      recordedEvents: 0,
    };
    stats.set(key, s);
    return s;
  };
  for (const e of exposures) {
    add(e.userId, e.variantId, EXPOSURE_METRIC, 1);
    statOf(e.variantId, EXPOSURE_METRIC).recordedEvents += 1;
  }
  for (const c of conversions) {
    statOf(c.variantId, c.metricName).recordedEvents += 1;
    statOf(c.variantId, ANY_CONVERSION_METRIC).recordedEvents += 1;
    if (!c.counted) continue;
    add(c.userId, c.variantId, c.metricName, c.value);
    add(c.userId, c.variantId, ANY_CONVERSION_METRIC, c.value);
  }
  for (const u of units.values()) {
    const s = statOf(u.variantId, u.metricName);
    s.events += u.events;
    s.units += 1;
    s.sum += u.total;
    s.sumSquares += u.total * u.total;
    s.exposedUnits += 1;
    s.exposedSum += u.total;
    s.exposedSumSquares += u.total * u.total;
    if (u.total > 0) s.convertedUnits += 1;
  }
  return {
    userMetrics: [...units.values()].sort(byUserMetric),
    variantStats: [...stats.values()].sort(byVariantMetric),
  };
}

/**
 * Same rows, same keys, counts exactly, sums to `rel` relative (their floating-point summation orders
 * differ). Returns the largest relative deviation seen.
 */
function expectAggregatesEqual(actual: Aggregates, expected: Aggregates, rel = 1e-9): number {
  let largest = 0;
  const compare = <T extends object>(
    a: T[],
    e: T[],
    keys: (keyof T)[],
    exact: (keyof T)[],
    approx: (keyof T)[],
  ) => {
    const ids = (rows: T[]) => rows.map((r) => keys.map((k) => r[k]).join('/'));
    expect(ids(a)).toEqual(ids(e));
    a.forEach((row, i) => {
      for (const k of exact)
        expect({ row: ids([row])[0], [k]: row[k] }).toEqual({ row: ids([row])[0], [k]: e[i][k] });
      for (const k of approx) {
        const x = row[k] as number;
        const y = e[i][k] as number;
        const deviation = Math.abs(x - y) / Math.max(1, Math.abs(y));
        largest = Math.max(largest, deviation);
        if (!(deviation <= rel)) throw new Error(`${ids([row])[0]} ${String(k)}: ${x} ≠ ${y} (${deviation})`);
      }
    });
  };
  compare(
    actual.userMetrics,
    expected.userMetrics,
    ['userId', 'metricName'],
    ['variantId', 'events'],
    ['total'],
  );
  compare(
    actual.variantStats,
    expected.variantStats,
    ['variantId', 'metricName'],
    ['events', 'units', 'exposedUnits', 'convertedUnits', 'recordedEvents'],
    ['sum', 'sumSquares', 'exposedSum', 'exposedSumSquares'],
  );
  return largest;
}

/** A small seeded PRNG, so every run generates the same events. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Event = Record<string, unknown> & { eventId: string };

/** Where a deliberately invalid event sits in its batch, and the code it must be rejected with. */
interface Planted {
  batch: number;
  index: number;
  code: string;
}

/**
 * Two waves of 8 concurrent batches over one experiment. Bucketed users and users enrolled by their
 * events (every event naming the same variant, each batch listing them in its own order), racers whose
 * batches name different variants, users exposed only in the second wave after converting in the first,
 * replays across and within batches, and planted invalid events.
 */
function generateWaves(experiment: ExperimentRow, variants: VariantRow[], bucketed: Map<string, string>) {
  const random = mulberry32(61);
  const int = (n: number) => Math.floor(random() * n);
  const shuffle = <T>(xs: T[]) => {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  };
  const enrolled = new Map(Array.from({ length: 40 }, (_, i) => [`new-${i}`, variants[int(3)].id]));
  const lateExposure = new Set([...bucketed.keys()].slice(0, 10).concat([...enrolled.keys()].slice(0, 10)));
  const racers = ['racer-0', 'racer-1', 'racer-2', 'racer-3'];
  const key = experiment.key;
  const planted: Planted[] = [];
  const sent: Event[] = [];

  const eventsFor = (userId: string, variantId: string | undefined, wave: number): Event[] => {
    const events: Event[] = [];
    const base = () => ({
      experimentKey: key,
      userId,
      eventId: randomUUID(),
      ...(variantId ? { variantId } : {}),
    });
    if (
      wave === 1 ? !lateExposure.has(userId) && random() < 0.7 : random() < 0.5 || lateExposure.has(userId)
    ) {
      events.push({ ...base(), kind: 'EXPOSURE' });
    }
    if (random() < 0.4) events.push({ ...base(), kind: 'CONVERSION', metricName: 'conversion' });
    for (let j = int(3); j > 0; j--) {
      const amount = Math.round(random() * 10_000) / 100;
      events.push({
        ...base(),
        kind: 'CONVERSION',
        metricName: 'revenue',
        value: random() < 0.1 ? -amount : amount,
      });
    }
    if (random() < 0.5)
      events.push({ ...base(), kind: 'CONVERSION', metricName: 'watch_minutes', value: random() * 90 });
    return events;
  };

  const wave = (n: number): Event[][] =>
    Array.from({ length: 8 }, (_, b) => {
      const users = shuffle([...bucketed.keys(), ...enrolled.keys()]).slice(0, 45);
      let events: Event[] = users.flatMap((u) => eventsFor(u, enrolled.get(u), n));
      if (n === 1) {
        // Each racer is claimed by two batches of the first wave with different variants.
        const racer = racers[b % 4];
        const variantId = variants[b < 4 ? 0 : 2].id;
        events.push(
          { kind: 'EXPOSURE', experimentKey: key, userId: racer, variantId, eventId: randomUUID() },
          ...eventsFor(racer, variantId, n),
        );
      }
      // Replays of earlier batches' events (this wave's or the last's), and of this batch's own.
      for (let j = 0; j < 6 && sent.length; j++) events.push({ ...sent[int(sent.length)] });
      for (let j = 0; j < 2; j++) events.push({ ...events[int(events.length)] });
      events = shuffle(events);
      const plant = (code: string, event: Record<string, unknown>) => {
        const index = int(events.length + 1);
        events.splice(index, 0, {
          kind: 'EXPOSURE',
          experimentKey: key,
          eventId: randomUUID(),
          ...event,
        } as Event);
        planted.push({ batch: (n - 1) * 8 + b, index, code });
      };
      const [someone, assigned] = [...bucketed][int(bucketed.size)];
      const wrong = variants.find((v) => v.id !== assigned)!.id;
      plant('NOT_FOUND', { userId: someone, experimentKey: uniqueKey('missing') });
      plant('NOT_ASSIGNED', { userId: `ghost-${n}-${b}` });
      plant('VARIANT_MISMATCH', { userId: someone, variantId: wrong });
      plant('VALIDATION_FAILED', { kind: 'CONVERSION', userId: someone, metricName: 'Not A Slug' });
      plant('VALIDATION_FAILED', {
        kind: 'CONVERSION',
        userId: someone,
        metricName: 'revenue',
        value: 1e300,
      });
      // Indices of events planted earlier in this batch moved when later ones were inserted before them.
      const mine = planted.filter((p) => p.batch === (n - 1) * 8 + b);
      for (let i = 0; i < mine.length; i++) {
        for (const later of mine.slice(i + 1)) if (later.index <= mine[i].index) mine[i].index++;
      }
      sent.push(...events);
      return events;
    });

  return { wave, planted };
}

describe('after concurrent ingestion', () => {
  let experiment: ExperimentRow;
  let results: RecordEventsResult[];
  let batches: Event[][];
  let planted: Planted[];

  beforeAll(async () => {
    experiment = await createRunningExperiment(handle.db, {
      variants: [
        { name: 'control', weight: 2, isControl: true },
        { name: 'item-item', weight: 1 },
        { name: 'two-tower', weight: 1 },
      ],
    });
    const variants = await experimentsRepo.getVariants(handle.db, experiment.id);
    const bucketed = new Map<string, string>();
    for (let i = 0; i < 40; i++) {
      const { variant } = await assignVariant(handle.db, experiment.key, `bucketed-${i}`);
      bucketed.set(`bucketed-${i}`, variant!.id);
    }
    const generator = generateWaves(experiment, variants, bucketed);
    const first = generator.wave(1);
    const firstResults = await Promise.all(first.map((events) => recordEvents(handle.db, events)));
    const second = generator.wave(2);
    const secondResults = await Promise.all(second.map((events) => recordEvents(handle.db, events)));
    batches = [...first, ...second];
    results = [...firstResults, ...secondResults];
    planted = generator.planted;
  });

  it('accounts for every event: accepted once, duplicate, or rejected', async () => {
    results.forEach((r, i) => {
      expect(r.accepted + r.duplicates + r.rejected.length).toBe(batches[i].length);
      const rejected = new Map(r.rejected.map((x) => [x.index, x.code]));
      for (const p of planted.filter((p) => p.batch === i))
        expect([p.index, rejected.get(p.index)]).toEqual([p.index, p.code]);
    });
    const accepted = results.reduce((s, r) => s + r.accepted, 0);
    const [{ n }] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT ((SELECT count(*) FROM experiment_exposures WHERE experiment_id = ${experiment.id})
               + (SELECT count(*) FROM experiment_conversions WHERE experiment_id = ${experiment.id}))::int AS n`,
    );
    expect(n).toBe(accepted);
    // Replays were real: some events were reported as duplicates, and planted ones rejected.
    expect(results.reduce((s, r) => s + r.duplicates, 0)).toBeGreaterThan(16);
    expect(planted).toHaveLength(80);
    // Some users converted in the first wave and were exposed only in the second.
    const [{ late }] = await queryRows<{ late: number }>(
      handle.db,
      sql`SELECT count(*)::int AS late FROM (
            SELECT c.user_id FROM experiment_conversions c
             WHERE c.experiment_id = ${experiment.id}
             GROUP BY c.user_id
            HAVING min(c.recorded_at) < (SELECT min(x.recorded_at) FROM experiment_exposures x
                                          WHERE x.experiment_id = ${experiment.id} AND x.user_id = c.user_id)
          ) u`,
    );
    expect(late).toBeGreaterThanOrEqual(10);
  });

  it('each racer ends up in one variant, with only that variant’s events', async () => {
    const rows = await queryRows<{ user_id: string; variants: number }>(
      handle.db,
      sql`SELECT user_id, count(DISTINCT variant_id)::int AS variants FROM (
            SELECT user_id, variant_id FROM experiment_assignments WHERE experiment_id = ${experiment.id}
            UNION ALL SELECT user_id, variant_id FROM experiment_exposures WHERE experiment_id = ${experiment.id}
            UNION ALL SELECT user_id, variant_id FROM experiment_conversions WHERE experiment_id = ${experiment.id}
          ) x WHERE user_id LIKE 'racer-%' GROUP BY user_id ORDER BY user_id`,
    );
    expect(rows).toEqual(
      ['racer-0', 'racer-1', 'racer-2', 'racer-3'].map((user_id) => ({ user_id, variants: 1 })),
    );
  });

  it('the maintained aggregates equal a recomputation from raw rows', async () => {
    const expected = await recomputed(experiment.id);
    expect(expected.userMetrics.length).toBeGreaterThan(300);
    const deviation = expectAggregatesEqual(await maintained(experiment.id), expected);
    expect(deviation).toBeLessThan(1e-9);
  });

  it('rebuilding from raw events gives the same aggregates', async () => {
    const before = await maintained(experiment.id);
    await handle.db.execute(sql`SELECT rebuild_experiment_stats(ARRAY[${experiment.id}]::uuid[])`);
    const rebuilt = await maintained(experiment.id);
    expectAggregatesEqual(rebuilt, before);
    expectAggregatesEqual(rebuilt, await recomputed(experiment.id));
  });

  it('metrics and summary agree with the raw experiment_metrics view (conversions: those attributed)', async () => {
    const raw = await queryRows<Record<string, unknown>>(
      handle.db,
      sql`SELECT v.id::text AS variant_id, v.name,
                 count(m.user_id) FILTER (WHERE m.metric_name = 'exposure')::int AS exposures,
                 count(DISTINCT m.user_id) FILTER (WHERE m.metric_name = 'exposure')::int AS unique_users
            FROM experiment_variants v
            LEFT JOIN experiment_metrics m ON m.experiment_id = v.experiment_id AND m.variant_id = v.id
           WHERE v.experiment_id = ${experiment.id}
           GROUP BY v.id, v.name, v.position ORDER BY v.position, v.id`,
    );
    // Conversions count inside their units' attribution windows: from the JavaScript recomputation.
    const { variantStats } = await recomputed(experiment.id);
    const any = (variantId: unknown) =>
      variantStats.find((v) => v.variantId === variantId && v.metricName === ANY_CONVERSION_METRIC);
    const expected = raw.map((r) => {
      const a = any(r.variant_id);
      return {
        variantId: r.variant_id,
        variantName: r.name,
        exposures: r.exposures,
        uniqueUsers: r.unique_users,
        conversions: a?.events ?? 0,
        conversionRate: Number(r.unique_users) ? (a?.units ?? 0) / Number(r.unique_users) : 0,
        avgMetricValue: a?.events ? a.sum / a.events : null,
      };
    });
    const { experiment: api } = await gqlOk(
      app,
      `query ($key: String!) { experiment(key: $key) {
         summary { variantId variantName exposures uniqueUsers conversions conversionRate avgMetricValue }
         metrics {
           totalExposures totalUniqueUsers
           variantMetrics { variant { id name } exposures uniqueUsers conversions conversionRate avgMetricValue }
         }
       } }`,
      { key: experiment.key },
    );
    const close = (rows: any[]) =>
      rows.map((r, i) => {
        const { conversionRate, avgMetricValue, ...counts } = r;
        expect(conversionRate).toBeCloseTo(expected[i].conversionRate, 12);
        if (expected[i].avgMetricValue === null) expect(avgMetricValue).toBeNull();
        else expect(avgMetricValue).toBeCloseTo(expected[i].avgMetricValue, 9);
        return counts;
      });
    const counts = expected.map(({ conversionRate: _r, avgMetricValue: _a, ...c }) => c);
    expect(close(api.summary)).toEqual(counts);
    expect(
      close(api.metrics.variantMetrics).map(({ variant, ...c }: any) => ({
        variantId: variant.id,
        variantName: variant.name,
        ...c,
      })),
    ).toEqual(counts);
    expect(api.metrics.totalExposures).toBe(counts.reduce((s, c) => s + Number(c.exposures), 0));
    expect(api.metrics.totalUniqueUsers).toBe(counts.reduce((s, c) => s + Number(c.uniqueUsers), 0));
    // Not a trivial agreement: every variant has exposures and conversions.
    for (const c of counts) expect(Number(c.exposures) * Number(c.conversions)).toBeGreaterThan(0);
  });
});

describe('rebuilding corrupted aggregates', () => {
  /** A running experiment with some events, whose aggregates are then deliberately wrong. */
  async function corrupted(): Promise<ExperimentRow> {
    const experiment = await createRunningExperiment(handle.db);
    const variants = await experimentsRepo.getVariants(handle.db, experiment.id);
    const events = Array.from({ length: 60 }, (_, i) => ({
      kind: i % 3 === 0 ? 'EXPOSURE' : 'CONVERSION',
      experimentKey: experiment.key,
      userId: `u${i % 17}`,
      variantId: variants[(i % 17) % 2].id,
      metricName: i % 2 ? 'revenue' : 'conversion',
      value: (i * 7.3) % 11,
      eventId: randomUUID(),
    }));
    const result = await recordEvents(handle.db, events);
    expect(result.accepted).toBe(60);
    expectAggregatesEqual(await maintained(experiment.id), await recomputed(experiment.id));
    await handle.db.execute(
      sql`UPDATE experiment_variant_stats SET sum = sum + 1000, units = units + 3, exposed_sum_squares = 0
           WHERE experiment_id = ${experiment.id}`,
    );
    await handle.db.execute(
      sql`UPDATE experiment_user_metrics SET total = total * 2 + 1 WHERE experiment_id = ${experiment.id} AND user_id = 'u1'`,
    );
    await handle.db.execute(
      sql`DELETE FROM experiment_user_metrics WHERE experiment_id = ${experiment.id} AND user_id = 'u2'`,
    );
    return experiment;
  }

  async function expectCorrect(experiment: ExperimentRow, correct: boolean) {
    const check = async () =>
      expectAggregatesEqual(await maintained(experiment.id), await recomputed(experiment.id));
    if (correct) await check();
    else await expect(check()).rejects.toThrow();
  }

  it('rebuildStats(db, ids) recomputes only the experiments named', async () => {
    const [a, b] = [await corrupted(), await corrupted()];
    await expectCorrect(a, false);
    await rebuildStats(handle.db, [a.id]);
    await expectCorrect(a, true);
    await expectCorrect(b, false);
    await rebuildStats(handle.db, [b.id]);
    await expectCorrect(b, true);
  });

  it('a rebuild during concurrent ingestion neither fails nor loses an update', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const variants = await experimentsRepo.getVariants(handle.db, experiment.id);
    const batch = (b: number) =>
      Array.from({ length: 150 }, (_, i) => {
        const user = (i * 7 + b * 11) % 120;
        return {
          kind: i % 3 ? 'CONVERSION' : 'EXPOSURE',
          experimentKey: experiment.key,
          userId: `u${user}`,
          variantId: variants[user % 2].id,
          metricName: 'revenue',
          value: (i % 13) * 1.1,
          eventId: randomUUID(),
        };
      });
    for (let round = 0; round < 3; round++) {
      const outcomes = await Promise.all([
        ...Array.from({ length: 6 }, (_, b) => recordEvents(handle.db, batch(round * 6 + b))),
        ...[0, 1, 2].map(async (i) => {
          await new Promise((resolve) => setTimeout(resolve, i * 10));
          return handle.db.transaction((tx) => rebuildStats(tx, [experiment.id]));
        }),
      ]);
      for (const o of outcomes.slice(0, 6)) expect((o as RecordEventsResult).accepted).toBe(150);
    }
    await expectCorrect(experiment, true);
  });
});
