/**
 * GET /v1/sdk/payload: the running experiments as a GrowthBook payload. GrowthBook's SDK loaded with it
 * agrees with the service on every unit of 10,000 × nine configurations (weights, coverage, seeds,
 * targeting with attributes, layers, a holdout, all together); ETag and If-None-Match answer 304; a
 * configuration change gives a new payload; the assign scope is required.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GrowthBook } from '@growthbook/growthbook';
import { ExperimentConfigCache } from '../../src/assignments/config-cache';
import { decideNewUnit, loadConfigFromDb, targetingAttributes } from '../../src/assignments/service';
import type { DatabaseHandle } from '../../src/db/client';
import { createLayerService } from '../../src/layers/service';
import { openTestDatabase } from '../support/db';
import { createTestExperiment, experimentService, uniqueKey } from '../support/factories';
import { getUrl, makeKey, productionSecurity, startTestServer, type TestServer } from '../support/server';

let handle: DatabaseHandle;
let server: TestServer;
let assignKey: string;
let readKey: string;
const cache = new ExperimentConfigCache(loadConfigFromDb, 60_000);

beforeAll(async () => {
  handle = await openTestDatabase();
  server = await startTestServer(handle, { security: productionSecurity(), configCache: cache });
  assignKey = (await makeKey(handle.db, ['assign'])).key;
  readKey = (await makeKey(handle.db, ['read'])).key;
});
afterAll(async () => {
  await server?.close();
  await handle?.close();
});

const fetchPayload = (key = assignKey, headers: Record<string, string> = {}) =>
  getUrl(`${server.base}/v1/sdk/payload`, { authorization: `Bearer ${key}`, ...headers });

const service = () => experimentService(handle.db);
const layers = () => createLayerService({ db: handle.db, actor: { name: 'test' } });

async function start(
  overrides: Parameters<typeof createTestExperiment>[1],
  layer?: { key: string; ranges: [number, number] },
  holdoutKey?: string,
) {
  const e = await createTestExperiment(handle.db, overrides);
  if (layer) {
    await layers().setExperimentLayer({
      experimentKey: e.key,
      layerKey: layer.key,
      ranges: [{ start: layer.ranges[0], end: layer.ranges[1] }],
    });
  }
  if (holdoutKey) await layers().setHoldout({ experimentKey: e.key, holdoutKey });
  return service().transition(e.id, 'start');
}

const variants = (weights: number[]) =>
  weights.map((weight, i) => ({ name: `v${i}`, weight, isControl: i === 0, config: { arm: i } }));

describe('GET /v1/sdk/payload', () => {
  it('answers If-None-Match with 304, and a change gives a new ETag', async () => {
    const first = await fetchPayload();
    const etag = first.headers.get('etag')!;
    const again = await fetchPayload(assignKey, { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    expect(again.headers.get('etag')).toBe(etag);
    const started = await start({ key: uniqueKey('sdk-new') });
    cache.invalidate(); // what the LISTEN/NOTIFY of the change does in every instance
    const changed = await fetchPayload(assignKey, { 'if-none-match': etag });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect(changed.body.features[started.key]).toBeDefined();
  });

  it('needs the assign scope, and GET', async () => {
    const forbidden = await fetchPayload(readKey);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('FORBIDDEN');
    const anonymous = await getUrl(`${server.base}/v1/sdk/payload`);
    expect(anonymous.status).toBe(401);
    const post = await fetch(`${server.base}/v1/sdk/payload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${assignKey}` },
    });
    expect(post.status).toBe(405);
  });

  // Last: its long CPU-bound loop leaves the client's kept-alive connection to time out on the server.
  it('an SDK loaded with it agrees with the service on 10,000 units × 9 configurations', async () => {
    const layer = await layers().create({ key: uniqueKey('sdk-layer'), name: 'Home rows' });
    const holdout = await start({
      key: uniqueKey('sdk-holdout'),
      kind: 'holdout',
      variants: [
        { name: 'held-out', weight: 0.1, isControl: true },
        { name: 'general', weight: 0.9 },
      ],
    });
    const targeting = { $or: [{ country: { $in: ['US', 'CA'] } }, { appVersion: { $vgte: '2.0.0' } }] };
    const keys = [
      (await start({ key: uniqueKey('sdk-631'), variants: variants([0.6, 0.3, 0.1]) })).key,
      (await start({ key: uniqueKey('sdk-cov'), trafficAllocation: 0.3, variants: variants([1, 1]) })).key,
      (
        await start({
          key: uniqueKey('sdk-seed'),
          hashSeed: 'shared-seed',
          trafficAllocation: 0.75,
          variants: variants([0.2, 0.8]),
        })
      ).key,
      (await start({ key: uniqueKey('sdk-rel'), variants: variants([2, 1, 1]) })).key,
      (await start({ key: uniqueKey('sdk-tgt'), targeting, variants: variants([0.5, 0.5]) })).key,
      (
        await start(
          { key: uniqueKey('sdk-la'), variants: variants([0.5, 0.5]) },
          { key: layer.key, ranges: [0, 0.5] },
        )
      ).key,
      (
        await start(
          { key: uniqueKey('sdk-lb'), variants: variants([0.3, 0.7]) },
          { key: layer.key, ranges: [0.5, 0.9] },
        )
      ).key,
      (await start({ key: uniqueKey('sdk-held'), variants: variants([0.5, 0.5]) }, undefined, holdout.key))
        .key,
      (
        await start(
          {
            key: uniqueKey('sdk-all'),
            targeting: { plan: 'premium' },
            trafficAllocation: 0.8,
            variants: variants([0.6, 0.3, 0.1]),
          },
          { key: layer.key, ranges: [0.9, 1] },
          holdout.key,
        )
      ).key,
    ];
    cache.invalidate(); // what the LISTEN/NOTIFY of the changes does in every instance
    const response = await fetchPayload();
    expect(response.status).toBe(200);
    expect(response.headers.get('etag')).toMatch(/^".+"$/);
    const payload = response.body;
    for (const key of keys) {
      expect(payload.features[key].rules[0]).toMatchObject({
        key,
        hashVersion: 2,
        hashAttribute: 'id',
        phase: '0',
      });
    }
    expect(payload.features[keys[5]].rules[0].filters[0]).toEqual({
      seed: layer.key,
      ranges: [[0, 0.5]],
      hashVersion: 2,
      attribute: 'id',
    });
    expect(payload.features[keys[8]].rules[0].filters).toHaveLength(2);
    expect(payload.features[keys[4]].rules[0].condition).toEqual(targeting);

    const configs = await Promise.all(keys.map((key) => loadConfigFromDb(handle.db, key)));
    const countries = ['US', 'DE', 'CA', 'FR', 'BR'];
    const disagreements: string[] = [];
    const enrolled = keys.map(() => 0);
    for (let i = 0; i < 10_000; i++) {
      const userId = `sdk-unit-${i}`;
      const attributes = {
        country: countries[i % 5],
        appVersion: `${1 + (i % 3)}.${i % 10}.0`,
        plan: i % 4 ? 'free' : 'premium',
      };
      const gb = new GrowthBook({ attributes: { ...attributes, id: userId } });
      gb.initSync({ payload });
      keys.forEach((key, j) => {
        const result = gb.evalFeature(key).experimentResult;
        const sdk = result?.inExperiment ? result.key : null;
        const own =
          decideNewUnit(configs[j]!, userId, targetingAttributes(userId, attributes)).variant?.id ?? null;
        if (own) enrolled[j]++;
        if (sdk !== own) disagreements.push(`${key} ${userId}: service ${own}, SDK ${sdk}`);
      });
      gb.destroy();
    }
    expect(disagreements.slice(0, 5)).toEqual([]);
    expect(disagreements).toHaveLength(0);
    for (const n of enrolled) expect(n).toBeGreaterThan(0);
  });
});
