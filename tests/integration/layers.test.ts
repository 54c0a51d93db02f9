/**
 * Layers through the API: membership with ranges, overlap refused naming the other experiment, a started
 * experiment's population fixed, OUTSIDE_LAYER storing nothing, mutual exclusion of stored assignments,
 * audit, and a GrowthBook SDK given the published experiment (with its `filters`) agreeing.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GrowthBook } from '@growthbook/growthbook';
import { AssignmentBatcher } from '../../src/assignments/batcher';
import { ExperimentConfigCache } from '../../src/assignments/config-cache';
import { assignVariant } from '../../src/assignments/service';
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

const CREATE_LAYER = `mutation CreateLayer($input: CreateLayerInput!) {
  createLayer(input: $input) {
    __typename
    ... on Layer { id key hashSeed }
    ... on Error { code message }
  }
}`;
const SET_LAYER = `mutation SetLayer($key: String!, $layerKey: String, $ranges: [LayerRangeInput!]) {
  setExperimentLayer(experimentKey: $key, layerKey: $layerKey, ranges: $ranges) {
    __typename
    ... on Experiment { id layer { key } layerRanges { start end } }
    ... on Error { code message }
    ... on ValidationError { fieldErrors { path message } }
    ... on RuleViolationError { rule }
  }
}`;
const ARCHIVE_LAYER = `mutation ArchiveLayer($id: ID!) {
  archiveLayer(id: $id) { __typename ... on Layer { archivedAt } ... on Error { code message } }
}`;
const READ = `query Read($key: String!, $layer: String!) {
  layer(key: $layer) { name experiments { key } }
  experiment(key: $key) { assignmentCount growthbook auditLog(first: 1) { action } }
}`;

async function layer(prefix = 'layer') {
  const key = uniqueKey(prefix);
  const created = (await gqlOk(app, CREATE_LAYER, { input: { key, name: 'Home rows' } })).createLayer;
  expect(created).toMatchObject({ __typename: 'Layer', key, hashSeed: key });
  return created as { id: string; key: string };
}

const setLayer = async (
  key: string,
  layerKey: string | null,
  ranges: { start: number; end: number }[] | null,
) => (await gqlOk(app, SET_LAYER, { key, layerKey, ranges })).setExperimentLayer;

describe('layers', () => {
  it('keeps two experiments of a layer mutually exclusive, and an SDK agrees', async () => {
    const { id: layerId, key: layerKey } = await layer();
    const a = await createTestExperiment(handle.db, { key: uniqueKey('lay-a') });
    const b = await createTestExperiment(handle.db, { key: uniqueKey('lay-b') });
    const c = await createTestExperiment(handle.db, { key: uniqueKey('lay-c') });
    expect(await setLayer(a.key, layerKey, [{ start: 0, end: 0.5 }])).toMatchObject({
      layer: { key: layerKey },
      layerRanges: [{ start: 0, end: 0.5 }],
    });
    expect((await setLayer(b.key, layerKey, [{ start: 0.5, end: 1 }])).__typename).toBe('Experiment');
    const overlap = await setLayer(c.key, layerKey, [{ start: 0.9, end: 1 }]);
    expect(overlap).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
    expect(overlap.message).toContain(`"${b.key}"`);
    const read = (await gqlOk(app, READ, { key: c.key, layer: layerKey })).layer;
    expect(read.experiments.map((e: { key: string }) => e.key)).toEqual([a.key, b.key]);

    const service = experimentService(handle.db);
    await service.transition(a.id, 'start');
    await service.transition(b.id, 'start');
    const moved = await setLayer(a.key, layerKey, [{ start: 0, end: 0.4 }]);
    expect(moved).toMatchObject({ __typename: 'RuleViolationError', rule: 'POPULATION_FIXED' });
    expect((await gqlOk(app, ARCHIVE_LAYER, { id: layerId })).archiveLayer.code).toBe('CONFLICT');

    const published = {
      a: (await gqlOk(app, READ, { key: a.key, layer: layerKey })).experiment.growthbook,
      b: (await gqlOk(app, READ, { key: b.key, layer: layerKey })).experiment.growthbook,
    };
    expect(published.a.filters).toEqual([
      { seed: layerKey, ranges: [[0, 0.5]], hashVersion: 2, attribute: 'id' },
    ]);
    const disagreements: string[] = [];
    const reasons = new Map<string, number>();
    // Assigned as deployed: configuration from the in-process cache, concurrent units' SQL batched.
    const deps = { batcher: new AssignmentBatcher(handle.db), config: new ExperimentConfigCache().source };
    const units = Array.from({ length: 600 }, (_, i) => `lay-unit-${i}`);
    const assigned = await Promise.all(
      units.map((userId) =>
        Promise.all([
          assignVariant(handle.db, a.key, userId, deps),
          assignVariant(handle.db, b.key, userId, deps),
        ]),
      ),
    );
    for (const [i, userId] of units.entries()) {
      const [ra, rb] = assigned[i];
      expect(ra.enrolled && rb.enrolled).toBe(false);
      expect(ra.enrolled || rb.enrolled).toBe(true);
      for (const [result, gbExperiment] of [
        [ra, published.a],
        [rb, published.b],
      ] as const) {
        reasons.set(result.reason, (reasons.get(result.reason) ?? 0) + 1);
        const gb = new GrowthBook({ attributes: { id: userId } });
        const sdk = gb.run(gbExperiment);
        gb.destroy();
        if ((result.variant?.id ?? null) !== (sdk.inExperiment ? sdk.key : null)) disagreements.push(userId);
      }
    }
    expect(disagreements).toEqual([]);
    expect(reasons.get('OUTSIDE_LAYER')).toBe(600);
    expect(reasons.get('ASSIGNED')).toBe(600);
    const counts = await Promise.all(
      [a.key, b.key].map(
        async (key) => (await gqlOk(app, READ, { key, layer: layerKey })).experiment.assignmentCount,
      ),
    );
    expect(counts[0] + counts[1]).toBe(600);
  });

  it('refuses bad ranges with the field named, unknown layers, and writes nothing', async () => {
    const { key: layerKey } = await layer('layer-bad');
    const e = await createTestExperiment(handle.db, { key: uniqueKey('lay-bad') });
    const reversed = await setLayer(e.key, layerKey, [{ start: 0.6, end: 0.2 }]);
    expect(reversed.fieldErrors[0].path).toEqual(['ranges', '0', 'end']);
    const outOfRange = await setLayer(e.key, layerKey, [{ start: 0, end: 1.5 }]);
    expect(outOfRange.fieldErrors[0].path).toEqual(['ranges', '0', 'end']);
    const selfOverlap = await setLayer(e.key, layerKey, [
      { start: 0, end: 0.5 },
      { start: 0.4, end: 0.6 },
    ]);
    expect(selfOverlap.fieldErrors[0].path).toEqual(['ranges']);
    expect((await setLayer(e.key, layerKey, null)).fieldErrors[0].path).toEqual(['ranges']);
    expect((await setLayer(e.key, uniqueKey('nope'), [{ start: 0, end: 1 }])).code).toBe('NOT_FOUND');
    const read = (await gqlOk(app, READ, { key: e.key, layer: layerKey })).experiment;
    expect(read.growthbook.filters).toBeUndefined();
    expect(read.auditLog[0].action).toBe('experiment.created');
  });

  it('takes a draft out of its layer, and archives an emptied layer', async () => {
    const { id, key: layerKey } = await layer('layer-out');
    const e = await createTestExperiment(handle.db, { key: uniqueKey('lay-out') });
    await setLayer(e.key, layerKey, [{ start: 0, end: 1 }]);
    expect(await setLayer(e.key, null, null)).toMatchObject({ layer: null, layerRanges: null });
    expect((await gqlOk(app, READ, { key: e.key, layer: layerKey })).experiment.auditLog[0].action).toBe(
      'experiment.layer_changed',
    );
    expect((await gqlOk(app, ARCHIVE_LAYER, { id })).archiveLayer.archivedAt).toEqual(expect.any(String));
    const refused = await setLayer(e.key, layerKey, [{ start: 0, end: 1 }]);
    expect(refused.code).toBe('RULE_VIOLATION');
  });
});
