/**
 * Holdouts through the API: a HOLDOUT of two groups linked to experiments (directly or by their layer),
 * held-out units never enrolled (reason HOLDOUT, the control's experience, nothing stored), and a
 * GrowthBook SDK given the published experiments (the holdout as a filter) agreeing on every unit.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GrowthBook } from '@growthbook/growthbook';
import { AssignmentBatcher } from '../../src/assignments/batcher';
import { ExperimentConfigCache } from '../../src/assignments/config-cache';
import { assignVariant, isHeldOut, loadConfigFromDb, pickVariant } from '../../src/assignments/service';
import type { DatabaseHandle } from '../../src/db/client';
import type { App } from '../../src/http/app';
import { createTestApp, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { createTestExperiment, experimentService, uniqueKey } from '../support/factories';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => {
  await handle?.close();
});

const SET_HOLDOUT = `mutation SetHoldout($key: String!, $holdoutKey: String) {
  setHoldout(experimentKey: $key, holdoutKey: $holdoutKey) {
    __typename
    ... on Experiment { holdout { key kind } }
    ... on Error { code message }
    ... on ValidationError { fieldErrors { path message } }
    ... on RuleViolationError { rule }
  }
}`;
const SET_LAYER_HOLDOUT = `mutation SetLayerHoldout($layerKey: String!, $holdoutKey: String) {
  setLayerHoldout(layerKey: $layerKey, holdoutKey: $holdoutKey) {
    __typename
    ... on Layer { holdout { key } }
    ... on Error { code message }
  }
}`;
const PUBLISHED = `query Published($key: String!) { experiment(key: $key) { kind growthbook assignmentCount } }`;

/** A running 5% holdout: the control is the held-out group. */
async function startHoldout(share = 0.05) {
  const holdout = await createTestExperiment(handle.db, {
    key: uniqueKey('holdout'),
    kind: 'holdout',
    variants: [
      { name: 'held-out', weight: share, isControl: true },
      { name: 'general', weight: 1 - share },
    ],
  });
  return experimentService(handle.db).transition(holdout.id, 'start');
}

const sdkVariant = (growthbook: unknown, userId: string) => {
  const gb = new GrowthBook({ attributes: { id: userId } });
  const result = gb.run(growthbook as Parameters<GrowthBook['run']>[0]);
  gb.destroy();
  return result.inExperiment ? result.key : null;
};

describe('holdouts', () => {
  it('10,000 units, a 5% holdout linked to two experiments: none held out is enrolled, 5% ± 0.7% held out', async () => {
    const holdout = await startHoldout();
    expect((await gqlOk(app, PUBLISHED, { key: holdout.key })).experiment.kind).toBe('HOLDOUT');
    const linked = [];
    for (const name of ['a', 'b']) {
      const e = await createTestExperiment(handle.db, { key: uniqueKey(`held-${name}`) });
      const set = (await gqlOk(app, SET_HOLDOUT, { key: e.key, holdoutKey: holdout.key })).setHoldout;
      expect(set.holdout).toEqual({ key: holdout.key, kind: 'HOLDOUT' });
      linked.push(await experimentService(handle.db).transition(e.id, 'start'));
    }
    const configs = await Promise.all(linked.map((e) => loadConfigFromDb(handle.db, e.key)));
    const published = await Promise.all(
      linked.map(async (e) => (await gqlOk(app, PUBLISHED, { key: e.key })).experiment.growthbook),
    );
    const N = 10_000;
    let held = 0;
    const disagreements: string[] = [];
    for (let i = 0; i < N; i++) {
      const userId = `holdout-unit-${i}`;
      const out = configs.map((c) => isHeldOut(c!, userId));
      expect(out[0]).toBe(out[1]);
      if (out[0]) held++;
      configs.forEach((c, j) => {
        const service = out[j] ? null : (pickVariant(c!, userId)?.id ?? null);
        if (service !== sdkVariant(published[j], userId)) disagreements.push(`${userId} in ${j}`);
      });
    }
    expect(disagreements).toEqual([]);
    expect(Math.abs(held / N - 0.05)).toBeLessThanOrEqual(0.007);

    // Through assignVariant, as deployed (configuration from the in-process cache, SQL batched): held-out
    // units get HOLDOUT and the control, and are never stored.
    const batcher = new AssignmentBatcher(handle.db);
    const cache = new ExperimentConfigCache();
    const units = Array.from({ length: 400 }, (_, i) => `holdout-unit-${i}`);
    let heldSeen = 0;
    for (const e of linked) {
      const results = await Promise.all(
        units.map((u) => assignVariant(handle.db, e.key, u, { batcher, config: cache.source })),
      );
      for (const r of results) {
        if (isHeldOut(configs[0]!, r.userId)) {
          heldSeen++;
          expect(r).toMatchObject({ reason: 'HOLDOUT', enrolled: false, variant: { isControl: true } });
        } else {
          expect(r.reason).toBe('ASSIGNED');
        }
      }
    }
    expect(heldSeen).toBeGreaterThan(0);
    const counts = await Promise.all(
      linked.map(async (e) => (await gqlOk(app, PUBLISHED, { key: e.key })).experiment.assignmentCount),
    );
    expect(counts).toEqual([400 - heldSeen / 2, 400 - heldSeen / 2]);
  });

  it('holds units out of every experiment of a linked layer', async () => {
    const holdout = await startHoldout(0.2);
    const layerKey = uniqueKey('held-layer');
    await gqlOk(app, `mutation { createLayer(input: { key: "${layerKey}", name: "L" }) { __typename } }`);
    const e = await createTestExperiment(handle.db, { key: uniqueKey('held-layered') });
    await gqlOk(
      app,
      `mutation { setExperimentLayer(experimentKey: "${e.key}", layerKey: "${layerKey}", ranges: [{ start: 0, end: 1 }]) { __typename } }`,
    );
    const linked = (await gqlOk(app, SET_LAYER_HOLDOUT, { layerKey, holdoutKey: holdout.key }))
      .setLayerHoldout;
    expect(linked.holdout).toEqual({ key: holdout.key });
    await experimentService(handle.db).transition(e.id, 'start');
    const config = (await loadConfigFromDb(handle.db, e.key))!;
    const growthbook = (await gqlOk(app, PUBLISHED, { key: e.key })).experiment.growthbook;
    expect(growthbook.filters).toHaveLength(2);
    let held = 0;
    for (let i = 0; i < 2000; i++) {
      const userId = `layer-held-${i}`;
      const out = isHeldOut(config, userId);
      if (out) held++;
      expect(sdkVariant(growthbook, userId)).toBe(out ? null : (pickVariant(config, userId)?.id ?? null));
    }
    expect(held).toBeGreaterThan(300);
    expect(held).toBeLessThan(500);
    // The layer's experiment is running: the layer's holdout is fixed now.
    const refused = (await gqlOk(app, SET_LAYER_HOLDOUT, { layerKey, holdoutKey: null })).setLayerHoldout;
    expect(refused.code).toBe('RULE_VIOLATION');
  });

  it('refuses a non-holdout, a running experiment and a holdout of three groups; writes nothing', async () => {
    const holdout = await startHoldout();
    const standard = await createTestExperiment(handle.db, { key: uniqueKey('not-holdout') });
    const e = await createTestExperiment(handle.db, { key: uniqueKey('held-bad') });
    const notHoldout = (await gqlOk(app, SET_HOLDOUT, { key: e.key, holdoutKey: standard.key })).setHoldout;
    expect(notHoldout.fieldErrors[0].path).toEqual(['holdoutKey']);
    const chained = (await gqlOk(app, SET_HOLDOUT, { key: holdout.key, holdoutKey: holdout.key })).setHoldout;
    expect(chained.fieldErrors[0].path).toEqual(['experimentKey']);
    await experimentService(handle.db).transition(e.id, 'start');
    const running = (await gqlOk(app, SET_HOLDOUT, { key: e.key, holdoutKey: holdout.key })).setHoldout;
    expect(running).toMatchObject({ __typename: 'RuleViolationError', rule: 'POPULATION_FIXED' });
    expect((await gqlOk(app, PUBLISHED, { key: e.key })).experiment.growthbook.filters).toBeUndefined();
    const three = await createTestExperiment(handle.db, {
      key: uniqueKey('holdout-3'),
      kind: 'holdout',
      variants: [{ name: 'a', isControl: true }, { name: 'b' }, { name: 'c' }],
    });
    await expect(experimentService(handle.db).transition(three.id, 'start')).rejects.toThrow(
      /exactly two variants/,
    );
  });
});
