/**
 * What metric definitions change in the maintained aggregates: the cross products of RATIO metrics
 * (experiment_ratio_stats) and a listed metric's default conversion window, maintained by the fold in every
 * arrival order and equal to a rebuild from raw rows (and to a direct computation from the events).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { rebuildStats } from '../../src/aggregates/rebuild';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { recordEvents } from '../../src/events/service';
import { createMetricService } from '../../src/metrics/service';
import { openTestDatabase } from '../support/db';
import { createRunningWithVariants, experimentService, uniqueKey } from '../support/factories';

let handle: DatabaseHandle;

beforeAll(async () => {
  handle = await openTestDatabase({ poolSize: 4 });
});
afterAll(async () => handle.close());

const HOUR = 3600_000;

interface Ev {
  kind: 'EXPOSURE' | 'CONVERSION';
  userId: string;
  variantId: string;
  at: Date;
  metricName?: string;
  value?: number;
}

async function record(experimentKey: string, events: Ev[]): Promise<void> {
  const result = await recordEvents(
    handle.db,
    events.map((e) => ({
      kind: e.kind,
      experimentKey,
      userId: e.userId,
      variantId: e.variantId,
      eventId: randomUUID(),
      occurredAt: e.at,
      ...(e.kind === 'CONVERSION' ? { metricName: e.metricName, value: e.value ?? 1 } : {}),
    })),
  );
  expect(result.rejected).toEqual([]);
}

async function ratioStats(experimentId: string) {
  const rows = await queryRows<{
    variant_id: string;
    numerator: string;
    denominator: string;
    sum_products: number;
  }>(
    handle.db,
    sql`SELECT variant_id::text, numerator, denominator, sum_products FROM experiment_ratio_stats
         WHERE experiment_id = ${experimentId} ORDER BY variant_id, numerator, denominator`,
  );
  // A row whose units all left it holds 0, which a rebuild does not write.
  return rows.filter((r) => r.sum_products !== 0);
}

async function variantStats(experimentId: string) {
  return queryRows<{
    variant_id: string;
    metric_name: string;
    units: number;
    sum: number;
    sum_squares: number;
  }>(
    handle.db,
    sql`SELECT variant_id::text, metric_name, units::int, sum, sum_squares FROM experiment_variant_stats
         WHERE experiment_id = ${experimentId} ORDER BY variant_id, metric_name`,
  );
}

const metrics = () => createMetricService({ db: handle.db, actor: { name: 'test' } });

describe('RATIO cross products', () => {
  it('are maintained in every arrival order and equal the rebuild and a direct computation', async () => {
    const ratio = await metrics().create({
      key: uniqueKey('mps'),
      name: 'Minutes per session',
      kind: 'RATIO',
      eventName: 'minutes',
      denominatorEventName: 'session',
    });
    const { experiment, variants } = await createRunningWithVariants(handle.db, {
      metricRoles: [{ metric: ratio.key, role: 'PRIMARY' }],
    });
    const [a, b] = variants.map((v) => v.id);
    const t = Date.now() - 20 * HOUR;
    // A seeded mix: conversions before their unit's exposure (re-counted when it arrives), exposures moving
    // the window earlier, units with only a numerator or only a denominator, several batches.
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const events: Ev[] = [];
    for (let u = 0; u < 40; u++) {
      const variantId = u % 2 ? b : a;
      const userId = `u${u}`;
      events.push({ kind: 'EXPOSURE', userId, variantId, at: new Date(t + Math.floor(rand() * 5) * HOUR) });
      const sessions = Math.floor(rand() * 4);
      for (let s = 0; s < sessions; s++) {
        events.push({
          kind: 'CONVERSION',
          userId,
          variantId,
          metricName: 'session',
          at: new Date(t + (2 + s) * HOUR),
        });
        if (rand() < 0.8)
          events.push({
            kind: 'CONVERSION',
            userId,
            variantId,
            metricName: 'minutes',
            value: Math.floor(rand() * 50),
            at: new Date(t + (2 + s) * HOUR + 60_000),
          });
      }
      if (rand() < 0.2)
        events.push({
          kind: 'CONVERSION',
          userId,
          variantId,
          metricName: 'minutes',
          value: 7,
          at: new Date(t - HOUR),
        });
    }
    // Shuffled, in batches of 13.
    for (let i = events.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [events[i], events[j]] = [events[j], events[i]];
    }
    for (let i = 0; i < events.length; i += 13) await record(experiment.key, events.slice(i, i + 13));

    // Directly from the events: per unit, totals inside [first exposure, ∞).
    const first = new Map<string, number>();
    for (const e of events)
      if (e.kind === 'EXPOSURE')
        first.set(e.userId, Math.min(first.get(e.userId) ?? Infinity, e.at.getTime()));
    const totals = new Map<
      string,
      { variantId: string; minutes: number; session: number; m: boolean; s: boolean }
    >();
    for (const e of events) {
      if (e.kind !== 'CONVERSION' || e.at.getTime() < first.get(e.userId)!) continue;
      const u = totals.get(e.userId) ?? {
        variantId: e.variantId,
        minutes: 0,
        session: 0,
        m: false,
        s: false,
      };
      if (e.metricName === 'minutes') {
        u.minutes += e.value ?? 1;
        u.m = true;
      } else {
        u.session += e.value ?? 1;
        u.s = true;
      }
      totals.set(e.userId, u);
    }
    const expected = new Map<string, number>();
    for (const u of totals.values())
      if (u.m && u.s) expected.set(u.variantId, (expected.get(u.variantId) ?? 0) + u.minutes * u.session);

    const maintained = await ratioStats(experiment.id);
    expect(maintained).toEqual(
      [...expected]
        .sort(([x], [y]) => (x < y ? -1 : 1))
        .map(([variant_id, sum_products]) => ({
          variant_id,
          numerator: 'minutes',
          denominator: 'session',
          sum_products,
        })),
    );
    await rebuildStats(handle.db, [experiment.id]);
    expect(await ratioStats(experiment.id)).toEqual(maintained);
  });

  it('adding a RATIO metric to a running experiment recounts its cross products from stored events', async () => {
    const primary = await metrics().create({
      key: uniqueKey('p'),
      name: 'P',
      kind: 'MEAN',
      eventName: 'clicks',
    });
    const { experiment, variants } = await createRunningWithVariants(handle.db, {
      metricRoles: [{ metric: primary.key, role: 'PRIMARY' }],
    });
    const v = variants[0].id;
    const t = Date.now() - 5 * HOUR;
    await record(experiment.key, [
      { kind: 'EXPOSURE', userId: 'x', variantId: v, at: new Date(t) },
      {
        kind: 'CONVERSION',
        userId: 'x',
        variantId: v,
        metricName: 'clicks',
        value: 3,
        at: new Date(t + HOUR),
      },
      {
        kind: 'CONVERSION',
        userId: 'x',
        variantId: v,
        metricName: 'impressions',
        value: 10,
        at: new Date(t + HOUR),
      },
    ]);
    expect(await ratioStats(experiment.id)).toEqual([]);
    const ctr = await metrics().create({
      key: uniqueKey('ctr'),
      name: 'CTR',
      kind: 'RATIO',
      eventName: 'clicks',
      denominatorEventName: 'impressions',
    });
    await experimentService(handle.db).update(experiment.id, {
      metricRoles: [
        { metric: primary.key, role: 'PRIMARY' },
        { metric: ctr.key, role: 'SECONDARY' },
      ],
    });
    expect(await ratioStats(experiment.id)).toEqual([
      { variant_id: v, numerator: 'clicks', denominator: 'impressions', sum_products: 30 },
    ]);
    // From then on the fold maintains them.
    await record(experiment.key, [
      {
        kind: 'CONVERSION',
        userId: 'x',
        variantId: v,
        metricName: 'impressions',
        value: 2,
        at: new Date(t + 2 * HOUR),
      },
    ]);
    expect(await ratioStats(experiment.id)).toEqual([
      { variant_id: v, numerator: 'clicks', denominator: 'impressions', sum_products: 36 },
    ]);
  });
});

describe('a listed metric’s default conversion window', () => {
  it('applies to its events unless the experiment’s metricSettings names them, maintained == rebuild', async () => {
    const purchase = await metrics().create({
      key: uniqueKey('purchase'),
      name: 'Purchases in 2 h',
      kind: 'MEAN',
      eventName: 'purchase',
      conversionWindowHours: 2,
    });
    const refund = await metrics().create({
      key: uniqueKey('refund'),
      name: 'Refunds in 2 h',
      kind: 'MEAN',
      eventName: 'refund',
      direction: 'DECREASE',
      conversionWindowHours: 2,
    });
    const { experiment, variants } = await createRunningWithVariants(handle.db, {
      metricRoles: [
        { metric: purchase.key, role: 'PRIMARY' },
        { metric: refund.key, role: 'GUARDRAIL', toleratedHarm: -0.05 },
      ],
      // The experiment's own setting wins over the refund metric's default: no window.
      metricSettings: [{ metric: 'refund', conversionWindowHours: null }],
    });
    const v = variants[0].id;
    const t = Date.now() - 10 * HOUR;
    await record(experiment.key, [
      { kind: 'EXPOSURE', userId: 'w', variantId: v, at: new Date(t) },
      {
        kind: 'CONVERSION',
        userId: 'w',
        variantId: v,
        metricName: 'purchase',
        value: 5,
        at: new Date(t + HOUR),
      },
      {
        kind: 'CONVERSION',
        userId: 'w',
        variantId: v,
        metricName: 'purchase',
        value: 9,
        at: new Date(t + 3 * HOUR),
      },
      {
        kind: 'CONVERSION',
        userId: 'w',
        variantId: v,
        metricName: 'refund',
        value: 2,
        at: new Date(t + 3 * HOUR),
      },
      // Not listed: no window.
      {
        kind: 'CONVERSION',
        userId: 'w',
        variantId: v,
        metricName: 'other',
        value: 1,
        at: new Date(t + 6 * HOUR),
      },
    ]);
    const maintained = await variantStats(experiment.id);
    const sums = Object.fromEntries(
      maintained.filter((r) => r.variant_id === v).map((r) => [r.metric_name as string, r.sum]),
    );
    expect(sums).toMatchObject({ purchase: 5, refund: 2, other: 1 });
    await rebuildStats(handle.db, [experiment.id]);
    expect(await variantStats(experiment.id)).toEqual(maintained);

    // A new default window on the metric recounts the experiments that list it.
    await metrics().update(purchase.id, { conversionWindowHours: 4 });
    const after = await variantStats(experiment.id);
    expect(after.find((r) => r.variant_id === v && r.metric_name === 'purchase')?.sum).toBe(14);
  });
});
