/**
 * Targeting through the API: conditions checked on save (ValidationError with the operator's path, nothing
 * written), attributes on assignVariant and POST /v1/assignments, NOT_TARGETED storing nothing, a stored
 * assignment winning over a changed condition, and a GrowthBook SDK given the published experiment agreeing.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GrowthBook } from '@growthbook/growthbook';
import { assignVariant } from '../../src/assignments/service';
import type { DatabaseHandle } from '../../src/db/client';
import { getExperiment } from '../../src/experiments/repository';
import type { App } from '../../src/http/app';
import { createTestApp, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { createRunningWithVariants, experimentService, uniqueKey } from '../support/factories';
import { makeKey, productionSecurity, rawPost, startTestServer, type TestServer } from '../support/server';

let handle: DatabaseHandle;
let app: App;
let server: TestServer;
let assignKey: string;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
  server = await startTestServer(handle, { security: productionSecurity() });
  assignKey = (await makeKey(handle.db, ['assign'])).key;
});
afterAll(async () => {
  await server?.close();
  await handle?.close();
});

const CREATE = `mutation Create($input: CreateExperimentInput!) {
  createExperiment(input: $input) {
    __typename
    ... on Experiment { id targeting }
    ... on ValidationError { fieldErrors { path message } }
  }
}`;
const UPDATE = `mutation Update($id: ID!, $input: UpdateExperimentInput!) {
  updateExperiment(id: $id, input: $input) {
    __typename
    ... on Experiment { id targeting }
    ... on ValidationError { fieldErrors { path message } }
  }
}`;
const ASSIGN = `mutation Assign($key: String!, $userId: String!, $attributes: JSON) {
  assignVariant(experimentKey: $key, userId: $userId, attributes: $attributes) {
    __typename
    ... on Assignment { enrolled reason variant { id } }
    ... on ValidationError { fieldErrors { path message } }
  }
}`;
const COUNT = `query Count($key: String!) { experiment(key: $key) { assignmentCount growthbook } }`;

const US_PREMIUM = { $and: [{ country: { $in: ['US', 'CA'] } }, { plan: 'premium' }] };

const assign = async (key: string, userId: string, attributes?: unknown) =>
  (await gqlOk(app, ASSIGN, { key, userId, attributes })).assignVariant;
const assignmentCount = async (key: string) =>
  (await gqlOk(app, COUNT, { key })).experiment.assignmentCount as number;

describe('targeting on save', () => {
  it('refuses an unknown operator with its path, and writes nothing', async () => {
    const key = uniqueKey('tgt-bad');
    const result = (
      await gqlOk(app, CREATE, {
        input: { key, name: 'bad', targeting: { $and: [{ country: { $inn: ['US'] } }] } },
      })
    ).createExperiment;
    expect(result.__typename).toBe('ValidationError');
    expect(result.fieldErrors).toEqual([
      {
        path: ['input', 'targeting', '$and', '0', 'country', '$inn'],
        message: expect.stringContaining('unknown operator $inn'),
      },
    ]);
    expect(await getExperiment(handle.db, { key })).toBeNull();
  });

  it('refuses a targeting value that is no JSON object', async () => {
    const result = (
      await gqlOk(app, CREATE, { input: { key: uniqueKey('tgt-arr'), name: 'x', targeting: [1] } })
    ).createExperiment;
    expect(result.fieldErrors[0].path).toEqual(['input', 'targeting']);
  });

  it('stores, changes and clears a condition; a bad update leaves the stored one', async () => {
    const key = uniqueKey('tgt-upd');
    const created = (await gqlOk(app, CREATE, { input: { key, name: 'x', targeting: US_PREMIUM } }))
      .createExperiment;
    expect(created.targeting).toEqual(US_PREMIUM);
    const bad = (await gqlOk(app, UPDATE, { id: created.id, input: { targeting: { a: { $regex: '(' } } } }))
      .updateExperiment;
    expect(bad.fieldErrors[0].path).toEqual(['input', 'targeting', 'a', '$regex']);
    expect((await getExperiment(handle.db, { key }))!.targeting).toEqual(US_PREMIUM);
    const changed = (await gqlOk(app, UPDATE, { id: created.id, input: { targeting: { plan: 'free' } } }))
      .updateExperiment;
    expect(changed.targeting).toEqual({ plan: 'free' });
    const unchanged = (await gqlOk(app, UPDATE, { id: created.id, input: { name: 'renamed' } }))
      .updateExperiment;
    expect(unchanged.targeting).toEqual({ plan: 'free' });
    const cleared = (await gqlOk(app, UPDATE, { id: created.id, input: { targeting: null } }))
      .updateExperiment;
    expect(cleared.targeting).toBeNull();
  });
});

describe('assignment with attributes', () => {
  it('enrolls matching units, answers NOT_TARGETED and stores nothing for the others', async () => {
    const { experiment } = await createRunningWithVariants(handle.db, {
      key: uniqueKey('tgt-assign'),
      targeting: US_PREMIUM,
    });
    const ok = await assign(experiment.key, 'u-match', { country: 'CA', plan: 'premium' });
    expect(ok).toMatchObject({ enrolled: true, reason: 'ASSIGNED' });
    expect(await assign(experiment.key, 'u-free', { country: 'US', plan: 'free' })).toMatchObject({
      enrolled: false,
      reason: 'NOT_TARGETED',
      variant: null,
    });
    expect((await assign(experiment.key, 'u-none')).reason).toBe('NOT_TARGETED');
    expect(await assignmentCount(experiment.key)).toBe(1);
  });

  it('keeps a stored assignment when the unit no longer matches or the condition changes (sticky)', async () => {
    const { experiment } = await createRunningWithVariants(handle.db, {
      key: uniqueKey('tgt-sticky'),
      targeting: { plan: 'premium' },
    });
    const first = await assign(experiment.key, 'u-sticky', { plan: 'premium' });
    expect(first.reason).toBe('ASSIGNED');
    const downgraded = await assign(experiment.key, 'u-sticky', { plan: 'free' });
    expect(downgraded).toMatchObject({ reason: 'EXISTING', enrolled: true, variant: first.variant });
    await experimentService(handle.db).update(experiment.id, { targeting: { plan: 'enterprise' } });
    expect(await assign(experiment.key, 'u-sticky', { plan: 'premium' })).toMatchObject({
      reason: 'EXISTING',
      variant: first.variant,
    });
    expect((await assign(experiment.key, 'u-new', { plan: 'premium' })).reason).toBe('NOT_TARGETED');
  });

  it('evaluates `id` as the userId, and refuses attributes with another id or of the wrong shape', async () => {
    const { experiment } = await createRunningWithVariants(handle.db, {
      key: uniqueKey('tgt-id'),
      targeting: { id: { $in: ['vip-1', 'vip-2'] } },
    });
    expect((await assign(experiment.key, 'vip-1')).reason).toBe('ASSIGNED');
    expect((await assign(experiment.key, 'vip-2', { id: 'vip-2' })).reason).toBe('ASSIGNED');
    expect((await assign(experiment.key, 'other')).reason).toBe('NOT_TARGETED');
    const mismatch = await assign(experiment.key, 'other', { id: 'vip-1' });
    expect(mismatch.fieldErrors).toEqual([{ path: ['attributes', 'id'], message: expect.any(String) }]);
    const notObject = await assign(experiment.key, 'other', ['x']);
    expect(notObject.fieldErrors[0].path).toEqual(['attributes']);
    expect(await assignmentCount(experiment.key)).toBe(2);
  });

  it('agrees with a GrowthBook SDK given the published experiment and the same attributes', async () => {
    const { experiment } = await createRunningWithVariants(handle.db, {
      key: uniqueKey('tgt-sdk'),
      targeting: { $or: [{ country: 'US' }, { age: { $gte: 40 } }], 'device.os': { $ne: 'tv' } },
      trafficAllocation: 0.8,
    });
    const { growthbook } = (await gqlOk(app, COUNT, { key: experiment.key })).experiment;
    expect(growthbook.condition).toEqual(experiment.targeting);
    const countries = ['US', 'DE', 'FR'];
    const disagreements: string[] = [];
    for (let i = 0; i < 400; i++) {
      const userId = `tgt-sdk-${i}`;
      const attributes = {
        country: countries[i % 3],
        age: 20 + (i % 40),
        device: { os: i % 7 ? 'ios' : 'tv' },
      };
      const service = await assignVariant(handle.db, experiment.key, userId, {}, attributes);
      const gb = new GrowthBook({ attributes: { ...attributes, id: userId } });
      const sdk = gb.run(growthbook);
      gb.destroy();
      const sdkVariant = sdk.inExperiment ? sdk.key : null;
      if ((service.variant?.id ?? null) !== sdkVariant) disagreements.push(`${userId}: ${service.reason}`);
    }
    expect(disagreements).toEqual([]);
  });
});

describe('POST /v1/assignments with attributes', () => {
  const post = (body: unknown) =>
    rawPost(`${server.base}/v1/assignments`, JSON.stringify(body), { key: assignKey });

  it('targets with the attributes given, for one key or several', async () => {
    const { experiment } = await createRunningWithVariants(handle.db, {
      key: uniqueKey('tgt-rest'),
      targeting: { country: 'US' },
    });
    const open = (await createRunningWithVariants(handle.db, { key: uniqueKey('tgt-open') })).experiment;
    const one = await post({ experimentKey: experiment.key, userId: 'r1', attributes: { country: 'DE' } });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ reason: 'NOT_TARGETED', enrolled: false, variant: null });
    const many = await post({
      experimentKeys: [experiment.key, open.key],
      userId: 'r2',
      attributes: { country: 'US' },
    });
    expect(many.body.assignments.map((a: { reason: string }) => a.reason)).toEqual(['ASSIGNED', 'ASSIGNED']);
  });

  it('answers 400 naming the field for bad attributes, and stores nothing', async () => {
    const { experiment } = await createRunningWithVariants(handle.db, { key: uniqueKey('tgt-rest-bad') });
    const notObject = await post({ experimentKey: experiment.key, userId: 'r3', attributes: 'US' });
    expect(notObject.status).toBe(400);
    expect(notObject.body.error.fields[0].path).toEqual(['attributes']);
    const otherId = await post({ experimentKey: experiment.key, userId: 'r3', attributes: { id: 'r4' } });
    expect(otherId.status).toBe(400);
    expect(otherId.body.error.fields).toEqual([{ path: ['attributes', 'id'], message: expect.any(String) }]);
    expect(await assignmentCount(experiment.key)).toBe(0);
  });
});
