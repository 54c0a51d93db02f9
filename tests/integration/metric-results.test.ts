/**
 * `results` and `scorecard` with metric definitions: kind, direction (the default goal), capValue, RATIO
 * metrics from the maintained cross products, the scorecard's default metrics and its two correction families.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DatabaseHandle } from '../../src/db/client';
import { recordEvents } from '../../src/events/service';
import type { App } from '../../src/http/app';
import { createMetricService } from '../../src/metrics/service';
import { adjustPValues } from '../../src/results/stats';
import { createTestApp, gql, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { createRunningWithVariants, uniqueKey } from '../support/factories';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => handle.close());

const metrics = () => createMetricService({ db: handle.db, actor: { name: 'test' } });

/** Per unit: minutes watched, sessions, errors; unit i of an arm, deterministic and different per arm. */
function unitData(arm: number, i: number) {
  const sessions = 1 + ((i * 7 + arm * 3) % 4);
  return { sessions, minutes: sessions * (10 + ((i * 13 + arm * 5) % 17)), errors: (i + arm) % 3 };
}

const UNITS = 12;

async function seedExperiment(
  metricRoles: { metric: string; role: 'PRIMARY' | 'SECONDARY' | 'GUARDRAIL'; toleratedHarm?: number }[],
) {
  const { experiment, variants } = await createRunningWithVariants(handle.db, { metricRoles });
  const t = Date.now() - 3600_000;
  const events = variants.flatMap((v, arm) =>
    Array.from({ length: UNITS }, (_, i) => {
      const userId = `${arm}-${i}`;
      const d = unitData(arm, i);
      const base = { experimentKey: experiment.key, userId, variantId: v.id };
      const conv = (metricName: string, value: number) => ({
        ...base,
        kind: 'CONVERSION' as const,
        eventId: randomUUID(),
        metricName,
        value,
        occurredAt: new Date(t + 60_000),
      });
      return [
        { ...base, kind: 'EXPOSURE' as const, eventId: randomUUID(), occurredAt: new Date(t) },
        conv('minutes', d.minutes),
        conv('session', d.sessions),
        ...(d.errors > 0 ? [conv('errors', d.errors)] : []),
      ];
    }).flat(),
  );
  const result = await recordEvents(handle.db, events);
  expect(result.rejected).toEqual([]);
  return experiment;
}

const RESULTS = `metric type goal role toleratedHarm definition { key kind }
  variants { isControl units mean pValue adjustedPValue significant absoluteEffect { estimate } }`;

describe('results with metric definitions', () => {
  it('RATIO: Σ minutes / Σ sessions per arm from the maintained cross products; kind and direction apply', async () => {
    const perSession = await metrics().create({
      key: uniqueKey('mps'),
      name: 'Minutes per session',
      kind: 'RATIO',
      eventName: 'minutes',
      denominatorEventName: 'session',
    });
    const errors = await metrics().create({
      key: uniqueKey('err'),
      name: 'Errors',
      kind: 'MEAN',
      eventName: 'errors',
      direction: 'DECREASE',
      capValue: 1,
    });
    const experiment = await seedExperiment([
      { metric: perSession.key, role: 'PRIMARY' },
      { metric: errors.key, role: 'GUARDRAIL', toleratedHarm: -0.1 },
    ]);
    const data = await gqlOk(
      app,
      `query ($id: ID!, $m: String!, $e: String!) { experiment(id: $id) {
         ratio: results(metric: $m, minUnitsPerVariant: 2) { ${RESULTS} }
         errors: results(metric: $e, minUnitsPerVariant: 2) { ${RESULTS} }
       } }`,
      { id: experiment.id, m: perSession.key, e: errors.key },
    );
    const { ratio, errors: err } = data.experiment;
    expect(ratio).toMatchObject({
      type: 'RATIO',
      goal: 'INCREASE',
      role: 'PRIMARY',
      definition: { kind: 'RATIO' },
    });
    for (const arm of [0, 1]) {
      const units = Array.from({ length: UNITS }, (_, i) => unitData(arm, i));
      const expected = units.reduce((a, u) => a + u.minutes, 0) / units.reduce((a, u) => a + u.sessions, 0);
      expect(ratio.variants[arm].units).toBe(UNITS);
      expect(ratio.variants[arm].mean).toBeCloseTo(expected, 10);
      // Errors capped at 1 per unit: the share of units with an error.
      const capped = units.reduce((a, u) => a + Math.min(u.errors, 1), 0) / UNITS;
      expect(err.variants[arm].mean).toBeCloseTo(capped, 10);
    }
    expect(ratio.variants[1].pValue).toEqual(expect.any(Number));
    expect(err).toMatchObject({ type: 'MEAN', goal: 'DECREASE', role: 'GUARDRAIL', toleratedHarm: -0.1 });
  });

  it('a RATIO metric the experiment does not list, or RATIO for an event name, is refused', async () => {
    const ratio = await metrics().create({
      key: uniqueKey('ctr'),
      name: 'CTR',
      kind: 'RATIO',
      eventName: 'minutes',
      denominatorEventName: 'session',
    });
    const primary = await metrics().create({
      key: uniqueKey('p'),
      name: 'P',
      kind: 'MEAN',
      eventName: 'minutes',
    });
    const experiment = await seedExperiment([{ metric: primary.key, role: 'PRIMARY' }]);
    for (const [metric, type] of [
      [ratio.key, null],
      ['minutes', 'RATIO'],
    ] as const) {
      const body = await gql(
        app,
        `query ($id: ID!, $m: String!, $t: MetricType) { experiment(id: $id) { results(metric: $m, type: $t) { metric } } }`,
        { id: experiment.id, m: metric, t: type },
      );
      expect(body.errors?.[0].message).toMatch(/RATIO/);
    }
  });

  it('scorecard: the listed metrics by default; guardrails corrected among themselves', async () => {
    const perSession = await metrics().create({
      key: uniqueKey('mps'),
      name: 'Minutes per session',
      kind: 'RATIO',
      eventName: 'minutes',
      denominatorEventName: 'session',
    });
    const minutes = await metrics().create({
      key: uniqueKey('min'),
      name: 'Minutes',
      kind: 'MEAN',
      eventName: 'minutes',
    });
    const errors = await metrics().create({
      key: uniqueKey('err'),
      name: 'Errors',
      kind: 'MEAN',
      eventName: 'errors',
      direction: 'DECREASE',
    });
    const experiment = await seedExperiment([
      { metric: perSession.key, role: 'PRIMARY' },
      { metric: minutes.key, role: 'SECONDARY' },
      { metric: errors.key, role: 'GUARDRAIL', toleratedHarm: -0.02 },
    ]);
    const data = await gqlOk(
      app,
      `query ($id: ID!) { experiment(id: $id) { scorecard(correction: HOLM, minUnitsPerVariant: 2) { ${RESULTS} } } }`,
      { id: experiment.id },
    );
    const cards = data.experiment.scorecard;
    expect(cards.map((c: { metric: string }) => c.metric)).toEqual([perSession.key, minutes.key, errors.key]);
    const p = cards.map((c: { variants: { pValue: number }[] }) => c.variants[1].pValue);
    const decisionFamily = adjustPValues([p[0], p[1]], 'HOLM');
    expect(cards[0].variants[1].adjustedPValue).toBeCloseTo(decisionFamily[0]!, 12);
    expect(cards[1].variants[1].adjustedPValue).toBeCloseTo(decisionFamily[1]!, 12);
    // Alone in its family: unadjusted.
    expect(cards[2].variants[1].adjustedPValue).toBeCloseTo(p[2], 12);
  });
});
