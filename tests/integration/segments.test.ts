/**
 * Results over time and segment breakdowns: exposures with dimensions (GraphQL and POST /v1/events), their
 * limits and typed errors; the maintained per-hour and per-level statistics against a computation from the raw
 * rows (also after an earlier exposure moves a unit to another hour and level) and against a rebuild; the
 * time series' last point against `results`; the breakdown's units against the total and its correction.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { EXPOSURE_METRIC, NONE_LEVEL, OTHER_LEVEL } from '../../src/aggregates/constants';
import { rebuildStats } from '../../src/aggregates/rebuild';
import { LIMITS } from '../../src/config';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { recordEvents } from '../../src/events/service';
import type { App } from '../../src/http/app';
import { adjustPValues } from '../../src/results/stats';
import { createMetricService } from '../../src/metrics/service';
import { createTestApp, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { createRunningWithVariants, experimentService, uniqueKey } from '../support/factories';
import { makeKey, productionSecurity, rawPost, startTestServer } from '../support/server';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => handle.close());

const HOUR = 3_600_000;
const DEVICES = ['ios', 'android', 'web'];

/**
 * 2 arms × 40 units, first exposed over 6 hours ending 2 h ago; device by unit (a fifth without one);
 * watch minutes in halves (exact in binary, so sums in any order agree to the last bit) and conversions.
 */
async function seed() {
  const { experiment, variants } = await createRunningWithVariants(handle.db);
  const base = Math.floor((Date.now() - 8 * HOUR) / HOUR) * HOUR;
  const events: Record<string, unknown>[] = [];
  variants.forEach((v, arm) => {
    for (let i = 0; i < 40; i++) {
      const userId = `u-${arm}-${i}`;
      const at = base + (i % 6) * HOUR + 60_000 * (i % 7);
      const common = { experimentKey: experiment.key, userId, variantId: v.id };
      events.push({
        ...common,
        kind: 'EXPOSURE',
        eventId: randomUUID(),
        occurredAt: new Date(at),
        ...(i % 5 === 4
          ? {}
          : { dimensions: { device: DEVICES[(i + arm) % 3], plan: i % 2 ? 'free' : 'paid' } }),
      });
      if ((i + arm) % 3 !== 0)
        events.push({
          ...common,
          kind: 'CONVERSION',
          eventId: randomUUID(),
          metricName: 'watch_minutes',
          value: 0.5 * ((i * 7 + arm * 5) % 23),
          occurredAt: new Date(at + 30 * 60_000),
        });
      if ((i + 2 * arm) % 4 === 0)
        events.push({
          ...common,
          kind: 'CONVERSION',
          eventId: randomUUID(),
          metricName: 'conversion',
          occurredAt: new Date(at + 10 * 60_000),
        });
    }
  });
  // Two batches in reverse order: conversions arrive before some exposures.
  const half = Math.floor(events.length / 2);
  for (const batch of [events.slice(half), events.slice(0, half)]) {
    const result = await recordEvents(handle.db, batch);
    expect(result.rejected).toEqual([]);
  }
  return { experiment, variants, base };
}

/** Per unit from the raw rows: variant, first exposure (time, id, dimensions), total of a metric in its window. */
async function rawUnits(experimentId: string, metric: string) {
  const rows = await queryRows<{
    userId: string;
    variantId: string;
    firstAt: Date;
    dimensions: Record<string, string> | null;
    total: number | null;
  }>(
    handle.db,
    sql`SELECT x.user_id AS "userId", x.variant_id::text AS "variantId", x.at AS "firstAt", x.dimensions,
               (SELECT sum(c.value) FROM experiment_conversions c
                 WHERE c.experiment_id = x.experiment_id AND c.user_id = x.user_id AND c.metric_name = ${metric}
                   AND least(c.occurred_at, c.recorded_at) >= x.at) AS total
          FROM (SELECT DISTINCT ON (user_id) experiment_id, user_id, variant_id, dimensions,
                       least(occurred_at, recorded_at) AS at
                  FROM experiment_exposures WHERE experiment_id = ${experimentId}
                 ORDER BY user_id, least(occurred_at, recorded_at), event_id) x`,
  );
  return rows.map((r) => ({ ...r, firstAt: new Date(r.firstAt), total: r.total ?? 0 }));
}

const RESULT_FIELDS = `variant { id } units mean absoluteEffect { estimate lower upper }
  relativeEffect { estimate lower upper } pValue adjustedPValue significant reason`;

async function timeSeries(key: string, metric: string, granularity: string) {
  const data = await gqlOk(
    app,
    `query T($key: String!, $metric: String!, $g: TimeGranularity) {
      experiment(key: $key) {
        results(metric: $metric, minUnitsPerVariant: 2) { variants { ${RESULT_FIELDS} } }
        timeSeries(metric: $metric, granularity: $g, minUnitsPerVariant: 2) { at variants { ${RESULT_FIELDS} } }
      }
    }`,
    { key, metric, g: granularity },
  );
  return data.experiment;
}

async function statsTables(experimentId: string) {
  const clean = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify(r)).sort();
  return {
    periods: clean(
      await queryRows(
        handle.db,
        sql`SELECT metric_name, variant_id::text, period_start::text, units::int, sum, sum_squares,
                   converted_units::int
              FROM experiment_period_stats WHERE experiment_id = ${experimentId} AND units <> 0`,
      ),
    ),
    segments: clean(
      await queryRows(
        handle.db,
        sql`SELECT dimension, metric_name, variant_id::text, level, units::int, sum, sum_squares,
                   converted_units::int
              FROM experiment_segment_stats WHERE experiment_id = ${experimentId} AND units <> 0`,
      ),
    ),
  };
}

describe('timeSeries', () => {
  it('is cumulative by first-exposure period, equals the raw rows at every point, and ends on results', async () => {
    const { experiment, variants } = await seed();
    for (const granularity of ['HOUR', 'DAY']) {
      const { results, timeSeries: points } = await timeSeries(experiment.key, 'watch_minutes', granularity);
      expect(points.length).toBeGreaterThan(0);
      expect(points.at(-1).variants).toEqual(results.variants);
      const units = await rawUnits(experiment.id, 'watch_minutes');
      for (const point of points) {
        const at = Date.parse(point.at);
        for (const v of variants) {
          const inPoint = units.filter((u) => u.variantId === v.id && u.firstAt.getTime() < at);
          const got = point.variants.find((x: { variant: { id: string } }) => x.variant.id === v.id);
          expect(got.units).toBe(inPoint.length);
          expect(got.mean).toBeCloseTo(inPoint.reduce((a, u) => a + u.total, 0) / inPoint.length, 10);
        }
      }
    }
    // The last point is results by construction; the hours it stands for add up to the same numbers.
    const { results } = await timeSeries(experiment.key, 'watch_minutes', 'HOUR');
    const sums = await queryRows<{ variantId: string; units: number; sum: number }>(
      handle.db,
      sql`SELECT variant_id::text AS "variantId",
                 sum(units) FILTER (WHERE metric_name = 'exposure')::int AS units,
                 sum(sum) FILTER (WHERE metric_name = 'watch_minutes') AS sum
            FROM experiment_period_stats WHERE experiment_id = ${experiment.id} GROUP BY 1`,
    );
    for (const v of results.variants) {
      const row = sums.find((r) => r.variantId === v.variant.id)!;
      expect(row.units).toBe(v.units);
      expect(row.sum / row.units).toBe(v.mean);
    }
    const { timeSeries: hours } = await timeSeries(experiment.key, 'watch_minutes', 'HOUR');
    expect(hours).toHaveLength(6);
    // The interval narrows as units accumulate.
    const width = (p: { variants: { absoluteEffect: { lower: number; upper: number } | null }[] }) =>
      p.variants[1].absoluteEffect!.upper - p.variants[1].absoluteEffect!.lower;
    expect(width(hours.at(-1))).toBeLessThan(width(hours[1]));
  });

  it("is on every scorecard entry, hourly while the experiment is young and daily after (the dashboard's one query)", async () => {
    const { experiment } = await seed();
    // Few fields: each series is a list in a list (scorecard) in a list (variants) for the complexity limit.
    const fields = 'at variants { variant { id } units mean relativeEffect { estimate lower upper } pValue }';
    const query = `query S($key: String!) {
      experiment(key: $key) {
        hourly: timeSeries(metric: "watch_minutes", granularity: HOUR) { ${fields} }
        daily: timeSeries(metric: "watch_minutes", granularity: DAY) { ${fields} }
        scorecard(metrics: ["watch_minutes", "conversion"]) {
          metric
          timeSeries { ${fields} }
          asked: timeSeries(granularity: DAY) { at }
        }
      }
    }`;
    const young = (await gqlOk(app, query, { key: experiment.key })).experiment;
    expect(young.hourly).toHaveLength(6);
    expect(young.scorecard[0].metric).toBe('watch_minutes');
    expect(young.scorecard[0].timeSeries).toEqual(young.hourly);
    expect(young.scorecard[0].asked).toEqual(young.daily.map((p: { at: string }) => ({ at: p.at })));
    expect(young.scorecard[1].timeSeries.length).toBeGreaterThan(0);

    const started = new Date(Date.now() - (LIMITS.hourlyTimeSeriesDays * 24 + 1) * HOUR);
    await handle.db.execute(
      sql`UPDATE experiments SET start_at = ${started.toISOString()}::timestamptz WHERE id = ${experiment.id}`,
    );
    const old = (await gqlOk(app, query, { key: experiment.key })).experiment;
    expect(old.scorecard[0].timeSeries).toEqual(old.daily);
  });

  it('follows a unit moved by an earlier exposure and equals a rebuild from raw rows', async () => {
    const { experiment, variants, base } = await seed();
    // u-0-5 was first exposed at hour 5 on ios; an exposure at hour 0 on web arrives late.
    await recordEvents(handle.db, [
      {
        kind: 'EXPOSURE',
        experimentKey: experiment.key,
        userId: 'u-0-5',
        variantId: variants[0].id,
        eventId: randomUUID(),
        occurredAt: new Date(base + 60_000),
        dimensions: { device: 'web' },
      },
    ]);
    const { timeSeries: points } = await timeSeries(experiment.key, 'watch_minutes', 'HOUR');
    const units = await rawUnits(experiment.id, 'watch_minutes');
    expect(units.find((u) => u.userId === 'u-0-5')?.dimensions).toEqual({ device: 'web' });
    const first = points[0].variants.find(
      (x: { variant: { id: string } }) => x.variant.id === variants[0].id,
    );
    expect(first.units).toBe(
      units.filter((u) => u.variantId === variants[0].id && u.firstAt.getTime() < base + HOUR).length,
    );

    const maintained = await statsTables(experiment.id);
    expect(maintained.periods.length).toBeGreaterThan(0);
    expect(maintained.segments.length).toBeGreaterThan(0);
    // Corrupt, then rebuild (what `npm run db:rebuild-stats` runs).
    await handle.db.execute(
      sql`UPDATE experiment_period_stats SET units = units + 1 WHERE experiment_id = ${experiment.id}`,
    );
    await handle.db.execute(sql`DELETE FROM experiment_segment_stats WHERE experiment_id = ${experiment.id}`);
    await rebuildStats(handle.db, [experiment.id]);
    expect(await statsTables(experiment.id)).toEqual(maintained);
  });
});

describe('breakdown', () => {
  it('gives one result per level, units summing to the total, corrected across levels', async () => {
    const { experiment, variants } = await seed();
    const data = await gqlOk(
      app,
      `query B($key: String!) {
        experiment(key: $key) {
          results(metric: "watch_minutes", minUnitsPerVariant: 2) { variants { variant { id } units } }
          breakdown(metric: "watch_minutes", groupBy: "device", minUnitsPerVariant: 2) {
            dimension warning
            levels { level results { correction variants { ${RESULT_FIELDS} } } }
          }
        }
      }`,
      { key: experiment.key },
    );
    const { results, breakdown } = data.experiment;
    expect(breakdown.dimension).toBe('device');
    expect(breakdown.warning).toMatch(/exploratory/);
    expect(breakdown.levels.map((l: { level: string }) => l.level)).toEqual(
      [...DEVICES].sort().concat(NONE_LEVEL),
    );
    const units = await rawUnits(experiment.id, 'watch_minutes');
    for (const [i, v] of variants.entries()) {
      const sum = breakdown.levels.reduce(
        (acc: number, l: { results: { variants: { units: number }[] } }) => acc + l.results.variants[i].units,
        0,
      );
      expect(sum).toBe(results.variants[i].units);
      for (const l of breakdown.levels) {
        const inLevel = units.filter(
          (u) => u.variantId === v.id && (u.dimensions?.device ?? NONE_LEVEL) === l.level,
        );
        expect(l.results.variants[i].units).toBe(inLevel.length);
        expect(l.results.variants[i].mean).toBeCloseTo(
          inLevel.reduce((a, u) => a + u.total, 0) / inLevel.length,
          10,
        );
      }
    }
    const treatments = breakdown.levels.flatMap(
      (l: {
        results: { correction: string; variants: { pValue: number | null; adjustedPValue: number | null }[] };
      }) => {
        expect(l.results.correction).toBe('HOLM');
        return l.results.variants.slice(1);
      },
    );
    expect(treatments.map((t: { adjustedPValue: number | null }) => t.adjustedPValue)).toEqual(
      adjustPValues(
        treatments.map((t: { pValue: number | null }) => t.pValue),
        'HOLM',
      ),
    );
  });

  it('puts every unit in __none__ for a dimension no exposure carries', async () => {
    const { experiment } = await seed();
    const data = await gqlOk(
      app,
      `query { experiment(key: "${experiment.key}") {
        results(metric: "conversion") { variants { units } }
        breakdown(metric: "conversion", groupBy: "country") { levels { level results { variants { units } } } }
      } }`,
    );
    const { results, breakdown } = data.experiment;
    expect(breakdown.levels).toEqual([{ level: NONE_LEVEL, results }]);
  });

  it('refuses a groupBy that is no dimension key, naming it', async () => {
    const { experiment } = await seed();
    const data = await handleQuery(
      `query { experiment(key: "${experiment.key}") { breakdown(metric: "conversion", groupBy: "Not A Key") { dimension } } }`,
    );
    expect(JSON.stringify(data.errors)).toMatch(/groupBy/);
  });
});

async function handleQuery(query: string) {
  const response = await app.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query }),
  });
  return (await response.json()) as { errors?: unknown[]; data?: unknown };
}

describe('dimensions on exposures', () => {
  const count = async (experimentId: string) =>
    (
      await queryRows<{ n: number }>(
        handle.db,
        sql`SELECT (SELECT count(*) FROM experiment_exposures WHERE experiment_id = ${experimentId})::int
                 + (SELECT count(*) FROM experiment_dimension_levels WHERE experiment_id = ${experimentId})::int AS n`,
      )
    )[0].n;

  it('rejects bad dimensions with a typed error naming the field, writing nothing', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const exposure = (dimensions: unknown, kind = 'EXPOSURE') => ({
      kind,
      experimentKey: experiment.key,
      userId: 'u1',
      variantId: variants[0].id,
      eventId: randomUUID(),
      dimensions,
      ...(kind === 'CONVERSION' ? { metricName: 'conversion' } : {}),
    });
    const bad = [
      [exposure({ device: 3 }), 'events.0.dimensions.device'],
      [exposure({ 'Bad Key': 'x' }), 'events.0.dimensions.Bad Key'],
      [exposure({ device: '' }), 'events.0.dimensions.device'],
      [exposure({ device: '__other__' }), 'events.0.dimensions.device'],
      [
        exposure(Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`k${i}`, 'v']))),
        'events.0.dimensions',
      ],
      [exposure(['ios']), 'events.0.dimensions'],
      [exposure({ device: 'ios' }, 'CONVERSION'), 'events.0.dimensions'],
    ] as const;
    for (const [event, path] of bad) {
      const result = await recordEvents(handle.db, [event]);
      expect(result.rejected).toHaveLength(1);
      expect(result.rejected[0].code).toBe('VALIDATION_FAILED');
      expect(JSON.stringify(result.rejected[0].error)).toContain(
        JSON.stringify(path.split('.')).slice(1, -1),
      );
    }
    expect(await count(experiment.id)).toBe(0);

    // Five keys fill the experiment; an exposure bringing a sixth is rejected at that key.
    const five = Object.fromEntries(Array.from({ length: LIMITS.maxDimensions }, (_, i) => [`k${i}`, 'v']));
    expect((await recordEvents(handle.db, [exposure(five)])).accepted).toBe(1);
    const before = await count(experiment.id);
    const sixth = await recordEvents(handle.db, [{ ...exposure({ k0: 'v', extra: 'x' }), userId: 'u2' }]);
    expect(sixth.rejected[0].code).toBe('VALIDATION_FAILED');
    expect(JSON.stringify(sixth.rejected[0].error)).toContain('"extra"');
    expect(await count(experiment.id)).toBe(before);
  });

  it('folds levels past the limit into __other__, through GraphQL and POST /v1/events', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const n = LIMITS.maxDimensionLevels + 3;
    const events = Array.from({ length: n }, (_, i) => ({
      kind: 'EXPOSURE',
      experimentKey: experiment.key,
      userId: `u${i}`,
      variantId: variants[i % 2].id,
      eventId: randomUUID(),
      dimensions: { title: `t${String(i).padStart(3, '0')}` },
    }));
    const half = 30;
    const viaGraphql = await gqlOk(
      app,
      `mutation R($events: [EventInput!]!) { recordEvents(events: $events) { accepted rejected { message } } }`,
      { events: events.slice(0, half) },
    );
    expect(viaGraphql.recordEvents.accepted).toBe(half);
    const server = await startTestServer(handle, { security: productionSecurity() });
    const { key } = await makeKey(handle.db, ['assign']);
    const response = await rawPost(
      `${server.base}/v1/events`,
      JSON.stringify({ events: events.slice(half) }),
      {
        key,
      },
    ).finally(() => server.close());
    expect(response.status).toBe(200);
    expect(response.body.accepted).toBe(n - half);
    const data = await gqlOk(
      app,
      `query { experiment(key: "${experiment.key}") { breakdown(metric: "exposure", groupBy: "title") { levels { level results { variants { units } } } } } }`,
    );
    const levels = data.experiment.breakdown.levels;
    expect(levels).toHaveLength(LIMITS.maxDimensionLevels + 1);
    const other = levels.find((l: { level: string }) => l.level === OTHER_LEVEL);
    expect(other.results.variants.reduce((a: number, v: { units: number }) => a + v.units, 0)).toBe(3);
  });
});

describe('RATIO and capped metrics', () => {
  it('over time and per level equal the per-unit numbers from the raw events', async () => {
    const metrics = createMetricService({ db: handle.db, actor: { name: 'test' } });
    const ratio = await metrics.create({
      key: uniqueKey('mps'),
      name: 'Minutes per session',
      kind: 'RATIO',
      eventName: 'minutes',
      denominatorEventName: 'session',
    });
    const capped = await metrics.create({
      key: uniqueKey('capped'),
      name: 'Minutes capped at 20',
      kind: 'MEAN',
      eventName: 'minutes',
      capValue: 20,
    });
    const { experiment, variants } = await createRunningWithVariants(handle.db, {
      metricRoles: [
        { metric: ratio.key, role: 'PRIMARY' },
        { metric: capped.key, role: 'SECONDARY' },
      ],
    });
    const base = Math.floor((Date.now() - 6 * HOUR) / HOUR) * HOUR;
    const units = variants.flatMap((v, arm) =>
      Array.from({ length: 30 }, (_, i) => ({
        userId: `r-${arm}-${i}`,
        variantId: v.id,
        at: base + (i % 4) * HOUR,
        device: DEVICES[i % 3],
        sessions: 1 + ((i + arm) % 3),
        minutes: 4 * ((i * 5 + arm) % 9),
      })),
    );
    const events = units.flatMap((u) => {
      const common = { experimentKey: experiment.key, userId: u.userId, variantId: u.variantId };
      const conv = (metricName: string, value: number) => ({
        ...common,
        kind: 'CONVERSION',
        eventId: randomUUID(),
        metricName,
        value,
        occurredAt: new Date(u.at + 60_000),
      });
      return [
        {
          ...common,
          kind: 'EXPOSURE',
          eventId: randomUUID(),
          occurredAt: new Date(u.at),
          dimensions: { device: u.device },
        },
        conv('session', u.sessions),
        ...(u.minutes > 0 ? [conv('minutes', u.minutes)] : []),
      ];
    });
    expect((await recordEvents(handle.db, events)).rejected).toEqual([]);
    const data = await gqlOk(
      app,
      `query Q($key: String!, $r: String!, $c: String!) { experiment(key: $key) {
        ratioSeries: timeSeries(metric: $r, granularity: HOUR, minUnitsPerVariant: 2) { at variants { variant { id } units mean } }
        cappedSeries: timeSeries(metric: $c, granularity: HOUR, minUnitsPerVariant: 2) { at variants { variant { id } units mean } }
        ratioLevels: breakdown(metric: $r, groupBy: "device", minUnitsPerVariant: 2) { levels { level results { variants { variant { id } units mean } } } }
        cappedLevels: breakdown(metric: $c, groupBy: "device", minUnitsPerVariant: 2) { levels { level results { variants { variant { id } units mean } } } }
      } }`,
      { key: experiment.key, r: ratio.key, c: capped.key },
    );
    const e = data.experiment;
    const ratioOf = (us: typeof units) =>
      us.reduce((a, u) => a + u.minutes, 0) / us.reduce((a, u) => a + u.sessions, 0);
    const cappedOf = (us: typeof units) => us.reduce((a, u) => a + Math.min(u.minutes, 20), 0) / us.length;
    type Row = { variant: { id: string }; units: number; mean: number };
    const check = (
      rows: Row[],
      pick: (u: (typeof units)[number]) => boolean,
      of: (us: typeof units) => number,
    ) => {
      for (const row of rows) {
        const us = units.filter((u) => u.variantId === row.variant.id && pick(u));
        expect(row.units).toBe(us.length);
        expect(row.mean).toBeCloseTo(of(us), 10);
      }
    };
    expect(e.ratioSeries).toHaveLength(4);
    for (const [series, of] of [
      [e.ratioSeries, ratioOf],
      [e.cappedSeries, cappedOf],
    ] as const)
      for (const p of series) check(p.variants, (u) => u.at < Date.parse(p.at), of);
    for (const [levels, of] of [
      [e.ratioLevels.levels, ratioOf],
      [e.cappedLevels.levels, cappedOf],
    ] as const) {
      expect(levels.map((l: { level: string }) => l.level)).toEqual([...DEVICES].sort());
      for (const l of levels) check(l.results.variants, (u) => u.device === l.level, of);
    }
  });
});

describe('concurrent batches', () => {
  it('leave the period and segment statistics equal to a rebuild', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const base = Date.now() - 5 * HOUR;
    // Four batches at once over the same 40 units: exposures at different hours and devices, conversions.
    const batches = Array.from({ length: 4 }, (_, b) =>
      Array.from({ length: 40 }, (_, i) => {
        const common = { experimentKey: experiment.key, userId: `c-${i}`, variantId: variants[i % 2].id };
        return [
          {
            ...common,
            kind: 'EXPOSURE',
            eventId: randomUUID(),
            occurredAt: new Date(base + ((b + i) % 4) * HOUR),
            dimensions: { device: DEVICES[(b + i) % 3] },
          },
          {
            ...common,
            kind: 'CONVERSION',
            eventId: randomUUID(),
            metricName: 'watch_minutes',
            value: 1.5 * b + (i % 3),
            occurredAt: new Date(base + 4 * HOUR),
          },
        ];
      }).flat(),
    );
    const results = await Promise.all(batches.map((batch) => recordEvents(handle.db, batch)));
    for (const r of results) expect(r.rejected).toEqual([]);
    const maintained = await statsTables(experiment.id);
    await rebuildStats(handle.db, [experiment.id]);
    expect(await statsTables(experiment.id)).toEqual(maintained);
    const units = await rawUnits(experiment.id, 'watch_minutes');
    expect(units).toHaveLength(40);
  });
});

/** A unit's key rows (experiment_unit_segments) as a rebuild would make them. */
async function unitKeys(experimentId: string) {
  return queryRows<{ user_id: string; first_at: string; first_event_id: string; dimensions: unknown }>(
    handle.db,
    sql`SELECT user_id, first_at::text, first_event_id::text, dimensions FROM experiment_unit_segments
         WHERE experiment_id = ${experimentId} ORDER BY user_id`,
  );
}

/** A uuid that sorts before (low) or after (high) any random one: ties on time are broken by event id. */
const idAt = (end: 'low' | 'high') =>
  (end === 'low' ? '00000000-0000-4000-8000-' : 'ffffffff-ffff-4fff-bfff-') + randomUUID().slice(-12);

/** Deterministic shuffle (mulberry32), so a failing order can be replayed. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let s = seed;
  const next = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * One experiment with dimensions and a 2-hour window on `purchase`, one without any: every edge of a unit's key
 * (an earlier exposure moving hour and level, or to no dimensions; a tie on time broken by a lower event id
 * with other dimensions; a conversion stored before its exposure and re-counted; a re-count dropping a
 * conversion out of the narrowed window; a later exposure changing nothing; a unit never exposed).
 */
async function keyEdges() {
  const withDims = await createRunningWithVariants(handle.db);
  const plain = await createRunningWithVariants(handle.db);
  await experimentService(handle.db).update(withDims.experiment.id, {
    metricSettings: [{ metric: 'purchase', conversionWindowHours: 2 }],
  });
  const base = Math.floor((Date.now() - 6 * HOUR) / HOUR) * HOUR;
  const [v0, v1] = withDims.variants.map((v) => v.id);
  const [w0, w1] = plain.variants.map((v) => v.id);
  const exposure = (dimensions?: Record<string, string>, eventId: string = randomUUID()) => ({
    kind: 'EXPOSURE',
    eventId,
    ...(dimensions ? { dimensions } : {}),
  });
  const conversion = (metricName: string, value: number) => ({
    kind: 'CONVERSION',
    eventId: randomUUID(),
    metricName,
    value,
  });
  const A = withDims.experiment.key;
  const B = plain.experiment.key;
  const spec: [string, string, string, number, Record<string, unknown>][] = [
    [A, 'k1', v0, 1, exposure({ device: 'ios' })],
    [A, 'k1', v0, 1.5, conversion('purchase', 2)],
    [A, 'k1', v0, 3, conversion('watch_minutes', 1.5)],
    // Moves from hour 3 (web, paid) to hour 0 (android); its purchase at 3.5 h leaves the 2-hour window.
    [A, 'k2', v0, 3, exposure({ device: 'web', plan: 'paid' })],
    [A, 'k2', v0, 0.5, exposure({ device: 'android' })],
    [A, 'k2', v0, 1, conversion('purchase', 1)],
    [A, 'k2', v0, 3.5, conversion('purchase', 4)],
    // Two exposures at the same time: the lower event id (web) is the first. In order, it arrives after the
    // other and the conversion were folded: the unit changes levels, not hour, and its stored row moves.
    [A, 'k3', v1, 2, exposure({ device: 'ios' }, idAt('high'))],
    [A, 'k3', v1, 2.25, conversion('watch_minutes', 0.5)],
    [A, 'k3', v1, 2, exposure({ device: 'web', plan: 'free' }, idAt('low'))],
    [A, 'k4', v1, 4, exposure()],
    [A, 'k4', v1, 4.5, conversion('purchase', 3)],
    [A, 'k4', v1, 5, exposure({ device: 'ios' })],
    [A, 'k5', v1, 1, conversion('purchase', 8)],
    // Moves from hour 2 (android) to hour 1 without dimensions.
    [A, 'k6', v0, 2, exposure({ device: 'android' })],
    [A, 'k6', v0, 1, exposure()],
    [A, 'k6', v0, 1.1, conversion('purchase', 1)],
    [B, 'p1', w0, 2, exposure()],
    [B, 'p1', w0, 0.2, exposure()],
    [B, 'p1', w0, 1, conversion('purchase', 1)],
    [B, 'p2', w1, 3, exposure()],
    [B, 'p2', w1, 3.1, conversion('purchase', 2)],
    [B, 'p3', w1, 1, conversion('purchase', 0.5)],
    [B, 'p3', w1, 0.5, exposure()],
  ];
  const events = spec.map(([experimentKey, userId, variantId, hours, rest]) => ({
    experimentKey,
    userId,
    variantId,
    occurredAt: new Date(base + hours * HOUR),
    ...rest,
  }));
  return { withDims, plain, base, events, v0, v1 };
}

async function maintainedAndRebuilt(experimentIds: string[]) {
  const read = async () =>
    Promise.all(
      experimentIds.map(async (id) => ({ stats: await statsTables(id), keys: await unitKeys(id) })),
    );
  const maintained = await read();
  await rebuildStats(handle.db, experimentIds);
  return { maintained, rebuilt: await read() };
}

describe('maintained in the fold', () => {
  // Forward, backward and shuffled, in batches of 1 to 7 events spanning both experiments.
  const orders = [
    { name: 'in order, batches of 3', seed: 0, size: 3 },
    { name: 'reversed, batches of 2', seed: -1, size: 2 },
    { name: 'shuffled, one event per batch', seed: 7, size: 1 },
    { name: 'shuffled, batches of 4', seed: 11, size: 4 },
    { name: 'shuffled, batches of 7', seed: 23, size: 7 },
  ];
  it.each(orders)('equals a rebuild for every arrival order ($name)', async ({ seed, size }) => {
    const { withDims, plain, base, events, v0, v1 } = await keyEdges();
    const ordered = seed === 0 ? events : seed === -1 ? [...events].reverse() : shuffled(events, seed);
    for (let i = 0; i < ordered.length; i += size) {
      const result = await recordEvents(handle.db, ordered.slice(i, i + size));
      expect(result.rejected).toEqual([]);
    }
    const { maintained, rebuilt } = await maintainedAndRebuilt([withDims.experiment.id, plain.experiment.id]);
    expect(maintained).toEqual(rebuilt);

    // What a product team reads: purchases by first-exposure hour (k2's at 3.5 h is out of its window,
    // k5 was never exposed), exposed units by device (k2 moved to android, k3 is web, k4 and k6 have none).
    const periods = await queryRows<{ variant_id: string; period: number; sum: number; units: number }>(
      handle.db,
      sql`SELECT variant_id::text, extract(epoch FROM period_start) * 1000 AS period, sum, units::int
            FROM experiment_period_stats
           WHERE experiment_id = ${withDims.experiment.id} AND metric_name = 'purchase' AND units <> 0
           ORDER BY 1, 2`,
    );
    expect(periods.map((p) => [p.variant_id, Number(p.period) - base, p.units, p.sum])).toEqual(
      [
        [v0, 0, 1, 1],
        [v0, HOUR, 2, 3],
        [v1, 4 * HOUR, 1, 3],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0])) || Number(a[1]) - Number(b[1])),
    );
    const devices = await queryRows<{ variant_id: string; level: string; units: number }>(
      handle.db,
      sql`SELECT variant_id::text, level, units::int FROM experiment_segment_stats
           WHERE experiment_id = ${withDims.experiment.id} AND dimension = 'device'
             AND metric_name = ${EXPOSURE_METRIC} AND units <> 0
           ORDER BY 1, 2`,
    );
    expect(devices).toEqual(
      [
        { variant_id: v0, level: 'android', units: 1 },
        { variant_id: v0, level: 'ios', units: 1 },
        { variant_id: v1, level: 'web', units: 1 },
      ].sort((a, b) => a.variant_id.localeCompare(b.variant_id) || a.level.localeCompare(b.level)),
    );
    // The experiment without dimensions has per-hour statistics and no per-level ones.
    expect(maintained[1].stats.periods.length).toBeGreaterThan(0);
    expect(maintained[1].stats.segments).toEqual([]);
  });

  it('after a variant is deleted, and when its units are exposed again in another', async () => {
    const { withDims, events, v0, v1 } = await keyEdges();
    const mine = events.filter((e) => e.experimentKey === withDims.experiment.key);
    expect((await recordEvents(handle.db, mine)).rejected).toEqual([]);
    await handle.db.execute(sql`DELETE FROM experiment_variants WHERE id = ${v1}`);
    const deleted = await maintainedAndRebuilt([withDims.experiment.id]);
    expect(deleted.maintained).toEqual(deleted.rebuilt);
    expect((await unitKeys(withDims.experiment.id)).map((k) => k.user_id)).toEqual(['k1', 'k2', 'k6']);

    // k3 comes back in v0, later than its deleted exposures and with other dimensions: that is its key now.
    const again = await recordEvents(handle.db, [
      {
        kind: 'EXPOSURE',
        experimentKey: withDims.experiment.key,
        userId: 'k3',
        variantId: v0,
        eventId: randomUUID(),
        occurredAt: new Date(Date.now() - HOUR),
        dimensions: { device: 'android' },
      },
    ]);
    expect(again.rejected).toEqual([]);
    const back = await maintainedAndRebuilt([withDims.experiment.id]);
    expect(back.maintained).toEqual(back.rebuilt);
    const k3 = (await unitKeys(withDims.experiment.id)).find((k) => k.user_id === 'k3');
    expect(k3?.dimensions).toEqual({ device: 'android' });
  });
});
