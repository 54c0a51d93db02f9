/**
 * CUPED's maintained statistics (experiment_covariate_stats): per variant and covariate, the units with the
 * covariate, Σc, Σc² and, with the unit's total x of the covariate's event, Σx·c and Σc over units with x > 0.
 * Maintained by the fold in every arrival order (a unit's covariates are its first exposure's, which may arrive
 * last; conversions before their exposure; redelivered events), equal to a direct computation from the events
 * and to the rebuild from raw rows.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { rebuildStats } from '../../src/aggregates/rebuild';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { recordEvents } from '../../src/events/service';
import { createMetricService } from '../../src/metrics/service';
import { openTestDatabase } from '../support/db';
import { createRunningWithVariants, uniqueKey } from '../support/factories';

let handle: DatabaseHandle;

beforeAll(async () => {
  handle = await openTestDatabase({ poolSize: 4 });
});
afterAll(async () => handle.close());

const HOUR = 3600_000;

interface Ev {
  kind: 'EXPOSURE' | 'CONVERSION';
  eventId: string;
  userId: string;
  variantId: string;
  at: Date;
  metricName?: string;
  value?: number;
  covariates?: Record<string, number>;
}

async function record(experimentKey: string, events: Ev[]) {
  return recordEvents(
    handle.db,
    events.map((e) => ({
      kind: e.kind,
      experimentKey,
      userId: e.userId,
      variantId: e.variantId,
      eventId: e.eventId,
      occurredAt: e.at,
      ...(e.kind === 'CONVERSION' ? { metricName: e.metricName, value: e.value ?? 1 } : {}),
      ...(e.covariates ? { covariates: e.covariates } : {}),
    })),
  );
}

interface CovariateRow {
  variant_id: string;
  covariate: string;
  units: number;
  sum: number;
  sum_squares: number;
  sum_products: number;
  converted_sum: number;
}

async function covariateStats(experimentId: string): Promise<CovariateRow[]> {
  const rows = await queryRows<CovariateRow>(
    handle.db,
    sql`SELECT variant_id::text, covariate, units::float8 AS units, sum, sum_squares, sum_products, converted_sum
          FROM experiment_covariate_stats WHERE experiment_id = ${experimentId}
         ORDER BY variant_id, covariate`,
  );
  // A row whose units all left it holds zeros, which a rebuild does not write.
  return rows.filter((r) =>
    [r.units, r.sum, r.sum_squares, r.sum_products, r.converted_sum].some((x) => x !== 0),
  );
}

const metrics = () => createMetricService({ db: handle.db, actor: { name: 'test' } });

describe('CUPED covariate statistics', () => {
  it('are maintained in every arrival order and equal a direct computation and the rebuild', async () => {
    // A defined metric whose key differs from its event: its covariate adjusts the event's totals.
    const minutes = await metrics().create({
      key: uniqueKey('watch'),
      name: 'Watch minutes',
      kind: 'MEAN',
      eventName: 'minutes',
    });
    const { experiment, variants } = await createRunningWithVariants(handle.db, {
      metricRoles: [{ metric: minutes.key, role: 'PRIMARY' }],
    });
    const [a, b] = variants.map((v) => v.id);
    const t = Date.now() - 20 * HOUR;
    let seed = 11;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const events: Ev[] = [];
    for (let u = 0; u < 60; u++) {
      const variantId = u % 2 ? b : a;
      const userId = `u${u}`;
      // Up to three exposures, each with its own covariates (only the earliest's count; a tie in time goes to
      // the lowest event id), some without any.
      const exposures = 1 + Math.floor(rand() * 3);
      for (let x = 0; x < exposures; x++) {
        const covariates =
          rand() < 0.85
            ? { [minutes.key]: Math.floor(rand() * 40), conversion: Math.floor(rand() * 2) }
            : undefined;
        events.push({
          kind: 'EXPOSURE',
          eventId: randomUUID(),
          userId,
          variantId,
          at: new Date(t + Math.floor(rand() * 3) * HOUR),
          covariates,
        });
      }
      const conversions = Math.floor(rand() * 4);
      for (let c = 0; c < conversions; c++) {
        events.push({
          kind: 'CONVERSION',
          eventId: randomUUID(),
          userId,
          variantId,
          metricName: rand() < 0.7 ? 'minutes' : 'conversion',
          value: Math.floor(rand() * 30),
          // Some before every exposure: stored, counted only if an earlier exposure arrives (none does).
          at: new Date(t + (rand() < 0.15 ? -2 : 3 + c) * HOUR),
        });
      }
    }
    for (let i = events.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [events[i], events[j]] = [events[j], events[i]];
    }
    for (let i = 0; i < events.length; i += 17) {
      const result = await record(experiment.key, events.slice(i, i + 17));
      expect(result.rejected).toEqual([]);
    }
    // Redelivered exposures change nothing.
    const replay = await record(experiment.key, events.filter((e) => e.kind === 'EXPOSURE').slice(0, 25));
    expect(replay.duplicates).toBe(25);

    // Directly from the events.
    const first = new Map<string, Ev>();
    for (const e of events) {
      if (e.kind !== 'EXPOSURE') continue;
      const f = first.get(e.userId);
      if (!f || e.at < f.at || (e.at.getTime() === f.at.getTime() && e.eventId < f.eventId))
        first.set(e.userId, e);
    }
    const totals = new Map<string, Map<string, number>>();
    for (const e of events) {
      const f = first.get(e.userId);
      if (e.kind !== 'CONVERSION' || !f || e.at < f.at) continue;
      const unit = totals.get(e.userId) ?? new Map<string, number>();
      unit.set(e.metricName!, (unit.get(e.metricName!) ?? 0) + (e.value ?? 1));
      totals.set(e.userId, unit);
    }
    const expected = new Map<string, CovariateRow>();
    const row = (variant: string, covariate: string) => {
      const key = `${variant}|${covariate}`;
      const r = expected.get(key) ?? {
        variant_id: variant,
        covariate,
        units: 0,
        sum: 0,
        sum_squares: 0,
        sum_products: 0,
        converted_sum: 0,
      };
      expected.set(key, r);
      return r;
    };
    for (const [userId, f] of first) {
      for (const [covariate, c] of Object.entries(f.covariates ?? {})) {
        const r = row(f.variantId, covariate);
        r.units += 1;
        r.sum += c;
        r.sum_squares += c * c;
        const event = covariate === minutes.key ? 'minutes' : covariate;
        const x = totals.get(userId)?.get(event);
        if (x !== undefined) {
          r.sum_products += x * c;
          if (x > 0) r.converted_sum += c;
        }
      }
    }
    const direct = [...expected.values()]
      .filter((r) => [r.units, r.sum, r.sum_squares, r.sum_products, r.converted_sum].some((x) => x !== 0))
      .sort((x, y) => (x.variant_id + x.covariate < y.variant_id + y.covariate ? -1 : 1));
    const maintained = await covariateStats(experiment.id);
    expect(maintained.length).toBeGreaterThan(0);
    expect(maintained).toEqual(direct);
    await rebuildStats(handle.db, [experiment.id]);
    expect(await covariateStats(experiment.id)).toEqual(maintained);
  });

  it('an earlier exposure arriving late replaces the unit’s covariates', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const v = variants[0].id;
    const t = Date.now() - 10 * HOUR;
    const late: Ev = {
      kind: 'EXPOSURE',
      eventId: randomUUID(),
      userId: 'u1',
      variantId: v,
      at: new Date(t + 2 * HOUR),
      covariates: { spend: 10 },
    };
    const conversion: Ev = {
      kind: 'CONVERSION',
      eventId: randomUUID(),
      userId: 'u1',
      variantId: v,
      metricName: 'spend',
      value: 3,
      at: new Date(t + 3 * HOUR),
    };
    expect((await record(experiment.key, [late, conversion])).accepted).toBe(2);
    expect(await covariateStats(experiment.id)).toEqual([
      {
        variant_id: v,
        covariate: 'spend',
        units: 1,
        sum: 10,
        sum_squares: 100,
        sum_products: 30,
        converted_sum: 10,
      },
    ]);
    const earlier: Ev = { ...late, eventId: randomUUID(), at: new Date(t + HOUR), covariates: { spend: 4 } };
    expect((await record(experiment.key, [earlier])).accepted).toBe(1);
    const after = await covariateStats(experiment.id);
    expect(after).toEqual([
      {
        variant_id: v,
        covariate: 'spend',
        units: 1,
        sum: 4,
        sum_squares: 16,
        sum_products: 12,
        converted_sum: 4,
      },
    ]);
    await rebuildStats(handle.db, [experiment.id]);
    expect(await covariateStats(experiment.id)).toEqual(after);
  });

  it('defining the covariate key’s metric later pairs the covariate with that metric’s event', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const v = variants[0].id;
    const t = Date.now() - 10 * HOUR;
    const key = uniqueKey('late');
    const exposure: Ev = {
      kind: 'EXPOSURE',
      eventId: randomUUID(),
      userId: 'u1',
      variantId: v,
      at: new Date(t),
      covariates: { [key]: 5 },
    };
    const conversion = (metricName: string, value: number): Ev => ({
      kind: 'CONVERSION',
      eventId: randomUUID(),
      userId: 'u1',
      variantId: v,
      metricName,
      value,
      at: new Date(t + HOUR),
    });
    expect(
      (await record(experiment.key, [exposure, conversion(key, 2), conversion('plays', 7)])).accepted,
    ).toBe(3);
    const row = { variant_id: v, covariate: key, units: 1, sum: 5, sum_squares: 25 };
    // Undefined: the key is its own event.
    expect(await covariateStats(experiment.id)).toEqual([{ ...row, sum_products: 10, converted_sum: 5 }]);
    const metric = await metrics().create({ key, name: 'Plays', kind: 'MEAN', eventName: 'plays' });
    expect(await covariateStats(experiment.id)).toEqual([{ ...row, sum_products: 35, converted_sum: 5 }]);
    await metrics().update(metric.id, { eventName: 'nothing' });
    expect(await covariateStats(experiment.id)).toEqual([{ ...row, sum_products: 0, converted_sum: 0 }]);
  });

  it('refuses bad covariates with an error naming the field and writes nothing', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const v = variants[0].id;
    const base = {
      kind: 'EXPOSURE' as const,
      experimentKey: experiment.key,
      variantId: v,
      eventId: randomUUID(),
    };
    const result = await recordEvents(handle.db, [
      { ...base, userId: 'a', covariates: { spend: 'ten' } },
      { ...base, eventId: randomUUID(), userId: 'b', covariates: { 'Bad Key': 1 } },
      { ...base, eventId: randomUUID(), userId: 'c', covariates: [1, 2] },
      { ...base, eventId: randomUUID(), userId: 'd', covariates: { spend: 1e300 } },
      {
        kind: 'CONVERSION',
        experimentKey: experiment.key,
        variantId: v,
        eventId: randomUUID(),
        userId: 'e',
        metricName: 'spend',
        covariates: { spend: 1 },
      },
    ]);
    expect(result.accepted).toBe(0);
    const fields = result.rejected.map((r) =>
      'fieldErrors' in r.error
        ? (r.error.fieldErrors as { path: string[] }[]).map((f) => f.path.join('.'))
        : [],
    );
    expect(fields).toEqual([
      ['events.0.covariates.spend'],
      ['events.1.covariates.Bad Key'],
      ['events.2.covariates'],
      ['events.3.covariates.spend'],
      ['events.4.covariates'],
    ]);
    expect(result.rejected[0].message).toContain('covariates.spend must be a number');
    expect(await covariateStats(experiment.id)).toEqual([]);
  });
});
