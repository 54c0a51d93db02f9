/**
 * CUPED through GraphQL: covariates recorded with exposures (recordEvents, recordExposure), `results` and
 * `scorecard` regression-adjusted by default with varianceReduction, `cuped: false` unadjusted, equal to the
 * engine run on sums computed here from the raw units; the pre-period imbalance warning; CUPED_UNAVAILABLE.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DatabaseHandle } from '../../src/db/client';
import type { App } from '../../src/http/app';
import { createMetricService } from '../../src/metrics/service';
import { analyze, type VariantInput } from '../../src/results/stats';
import { createTestApp, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { createRunningWithVariants } from '../support/factories';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => handle.close());

const UNITS = 200;

/** Deterministic per-unit data: spend before (c) and during (x), correlated; clicks' covariate shifted in arm 1. */
function unit(arm: number, i: number) {
  const h = (k: number) => ((i * 2654435761 + arm * 40503 + k * 97) >>> 0) % 1000;
  const before = 20 + (h(1) % 40);
  const spend = Math.round(0.8 * before + (h(2) % 25) + arm * 2);
  const clicksBefore = (h(3) % 10) + (arm === 1 ? 6 : 0);
  return { before, spend, clicksBefore, clicks: 1 + (h(4) % 5) };
}

const RECORD = `mutation($events: [EventInput!]!) { recordEvents(events: $events) { accepted rejected { index message } } }`;
const RESULT_FIELDS = `cuped covariateUnits warnings { code message }
  variants { units mean varianceReduction cupedTheta covariateBalancePValue pValue
             absoluteEffect { estimate lower upper standardError } relativeEffect { estimate standardError } }`;

describe('CUPED results through GraphQL', () => {
  let key: string;
  let inputs: { adjusted: VariantInput[]; plain: VariantInput[] };

  beforeAll(async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    key = experiment.key;
    const t = Date.now() - 3600_000;
    const events = variants.flatMap((v, arm) =>
      Array.from({ length: UNITS }, (_, i) => {
        const d = unit(arm, i);
        const base = { experimentKey: key, userId: `${arm}-${i}`, variantId: v.id };
        return [
          {
            ...base,
            kind: 'EXPOSURE',
            eventId: randomUUID(),
            occurredAt: new Date(t).toISOString(),
            covariates: { spend: d.before, clicks: d.clicksBefore },
          },
          // A later exposure's covariates are ignored.
          {
            ...base,
            kind: 'EXPOSURE',
            eventId: randomUUID(),
            occurredAt: new Date(t + 1000).toISOString(),
            covariates: { spend: 10_000 },
          },
          {
            ...base,
            kind: 'CONVERSION',
            eventId: randomUUID(),
            metricName: 'spend',
            value: d.spend,
            occurredAt: new Date(t + 60_000).toISOString(),
          },
          {
            ...base,
            kind: 'CONVERSION',
            eventId: randomUUID(),
            metricName: 'clicks',
            value: d.clicks,
            occurredAt: new Date(t + 60_000).toISOString(),
          },
        ];
      }).flat(),
    );
    for (let i = 0; i < events.length; i += 1000) {
      const { recordEvents } = await gqlOk(app, RECORD, { events: events.slice(i, i + 1000) });
      expect(recordEvents.rejected).toEqual([]);
    }
    // The engine on sums computed here from the units.
    const sums = (arm: number, withCovariate: boolean) => {
      const us = Array.from({ length: UNITS }, (_, i) => unit(arm, i));
      return {
        id: variants[arm].id,
        weight: 1,
        isControl: arm === 0,
        n: UNITS,
        sum: us.reduce((a, u) => a + u.spend, 0),
        sumSquares: us.reduce((a, u) => a + u.spend ** 2, 0),
        covariate: withCovariate
          ? {
              sum: us.reduce((a, u) => a + u.before, 0),
              sumSquares: us.reduce((a, u) => a + u.before ** 2, 0),
              sumProducts: us.reduce((a, u) => a + u.before * u.spend, 0),
            }
          : null,
      };
    };
    inputs = { adjusted: [sums(0, true), sums(1, true)], plain: [sums(0, false), sums(1, false)] };
  });

  const results = async (args: string) =>
    (
      await gqlOk(
        app,
        `query($key: String!) { experiment(key: $key) { results(${args}) { ${RESULT_FIELDS} } } }`,
        {
          key,
        },
      )
    ).experiment.results;

  it('adjusts by default, equal to the engine on the units’ sums, and narrows the interval', async () => {
    const adjusted = await results('metric: "spend"');
    expect(adjusted.cuped).toBe(true);
    expect(adjusted.covariateUnits).toBe(2 * UNITS);
    expect(adjusted.warnings).toEqual([]);
    const expected = analyze({
      metricType: 'MEAN',
      method: 'FREQUENTIST',
      variants: inputs.adjusted,
      minimumUnits: 150,
    });
    const t = adjusted.variants[1];
    const e = expected.variants[1];
    expect(t.pValue).toBeCloseTo(e.pValue!, 9);
    for (const k of ['estimate', 'lower', 'upper', 'standardError'] as const)
      expect(t.absoluteEffect[k]).toBeCloseTo(e.absoluteEffect![k]!, 9);
    expect(t.varianceReduction).toBeCloseTo(e.varianceReduction!, 9);
    expect(t.cupedTheta).toBeCloseTo(e.cupedTheta!, 9);
    expect(t.varianceReduction).toBeGreaterThan(0.2);
    expect(adjusted.variants[0].varianceReduction).toBeNull();

    const plain = await results('metric: "spend", cuped: false');
    expect(plain.cuped).toBe(false);
    const p = analyze({
      metricType: 'MEAN',
      method: 'FREQUENTIST',
      variants: inputs.plain,
      minimumUnits: 150,
    });
    expect(plain.variants[1].absoluteEffect.standardError).toBeCloseTo(
      p.variants[1].absoluteEffect!.standardError,
      9,
    );
    expect(plain.variants[1].varianceReduction).toBeNull();
    const width = (v: { absoluteEffect: { lower: number; upper: number } }) =>
      v.absoluteEffect.upper - v.absoluteEffect.lower;
    expect(width(t)).toBeLessThan(width(plain.variants[1]));
    // The means shown are the arms' own (unadjusted) means.
    expect(t.mean).toBeCloseTo(inputs.adjusted[1].sum / UNITS, 9);

    const sequential = await results('metric: "spend", method: SEQUENTIAL');
    expect(sequential.cuped).toBe(true);
    const bayesian = await results('metric: "spend", method: BAYESIAN');
    expect(bayesian.cuped).toBe(true);
    expect(bayesian.variants[1].varianceReduction).toBeCloseTo(e.varianceReduction!, 9);
  });

  it('scorecard carries the same adjusted results', async () => {
    const data = await gqlOk(
      app,
      `query($key: String!) { experiment(key: $key) { scorecard(metrics: ["spend"]) { metric ${RESULT_FIELDS} } } }`,
      { key },
    );
    const [card] = data.experiment.scorecard;
    expect(card.cuped).toBe(true);
    const single = await results('metric: "spend"');
    expect(card.variants).toEqual(single.variants);
  });

  it('warns of a pre-period imbalance between arms', async () => {
    const clicks = await results('metric: "clicks"');
    expect(clicks.variants[1].covariateBalancePValue).toBeLessThan(0.001);
    expect(clicks.warnings.map((w: { code: string }) => w.code)).toEqual(['PREPERIOD_IMBALANCE']);
    expect((await results('metric: "spend"')).variants[1].covariateBalancePValue).toBeGreaterThan(0.001);
  });

  it('says when CUPED was asked for but cannot apply', async () => {
    const none = await results('metric: "conversion", cuped: true');
    expect(none.cuped).toBe(false);
    expect(none.warnings.map((w: { code: string }) => w.code)).toEqual(['CUPED_UNAVAILABLE']);
    expect((await results('metric: "conversion"')).warnings).toEqual([]);
  });

  it('recordExposure takes covariates and names a bad one', async () => {
    const bad = await gqlOk(
      app,
      `mutation($input: RecordExposureInput!) { recordExposure(input: $input) {
         __typename ... on ValidationError { fieldErrors { path message } } } }`,
      { input: { experimentKey: key, userId: '0-0', covariates: { spend: 'many' } } },
    );
    expect(bad.recordExposure.__typename).toBe('ValidationError');
    expect(bad.recordExposure.fieldErrors).toEqual([
      { path: ['input', 'covariates', 'spend'], message: 'covariates.spend must be a number' },
    ]);
    const ok = await gqlOk(
      app,
      `mutation($input: RecordExposureInput!) { recordExposure(input: $input) { __typename } }`,
      { input: { experimentKey: key, userId: '0-0', covariates: { spend: 1 } } },
    );
    expect(ok.recordExposure.__typename).toBe('RecordEventSuccess');
    // The unit's first exposure came earlier: its covariates stand.
    expect((await results('metric: "spend"')).variants[1].absoluteEffect.estimate).toBeCloseTo(
      analyze({ metricType: 'MEAN', method: 'FREQUENTIST', variants: inputs.adjusted, minimumUnits: 150 })
        .variants[1].absoluteEffect!.estimate,
      9,
    );
  });
  it('a capped metric is adjusted on its capped values (last: it defines "spend")', async () => {
    const cap = 50;
    await createMetricService({ db: handle.db, actor: { name: 'test' } }).create({
      key: 'spend',
      name: 'Spend',
      kind: 'MEAN',
      eventName: 'spend',
      capValue: cap,
    });
    const capped = (arm: number): VariantInput => {
      const us = Array.from({ length: UNITS }, (_, i) => unit(arm, i));
      const x = (u: (typeof us)[number]) => Math.min(u.spend, cap);
      return {
        ...inputs.adjusted[arm],
        sum: us.reduce((a, u) => a + x(u), 0),
        sumSquares: us.reduce((a, u) => a + x(u) ** 2, 0),
        covariate: {
          sum: us.reduce((a, u) => a + u.before, 0),
          sumSquares: us.reduce((a, u) => a + u.before ** 2, 0),
          sumProducts: us.reduce((a, u) => a + u.before * x(u), 0),
        },
      };
    };
    expect(inputs.adjusted.some((v) => v.sum > cap * UNITS * 0.5)).toBe(true);
    const expected = analyze({
      metricType: 'MEAN',
      method: 'FREQUENTIST',
      variants: [capped(0), capped(1)],
      minimumUnits: 150,
    }).variants[1];
    const r = await results('metric: "spend"');
    expect(r.cuped).toBe(true);
    expect(r.variants[1].mean).toBeCloseTo(capped(1).sum / UNITS, 9);
    for (const k of ['estimate', 'lower', 'upper', 'standardError'] as const)
      expect(r.variants[1].absoluteEffect[k]).toBeCloseTo(expected.absoluteEffect![k], 9);
    expect(r.variants[1].cupedTheta).toBeCloseTo(expected.cupedTheta!, 9);
  });
});
