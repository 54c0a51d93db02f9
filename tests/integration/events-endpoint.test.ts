/**
 * POST /v1/events: the SDK-side twin of recordEvents over the real HTTP server: accepted, duplicates and
 * rejections by index as the mutation reports them, the batch limit, the assign scope, JSON errors as
 * /v1/assignments has them, and a GrowthBook trackingCallback posting its exposures straight to it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { GrowthBook } from '@growthbook/growthbook';
import { assignVariant } from '../../src/assignments/service';
import { LIMITS } from '../../src/config';
import type { DatabaseHandle } from '../../src/db/client';
import { openTestDatabase } from '../support/db';
import { createRunningWithVariants, uniqueKey } from '../support/factories';
import {
  getUrl,
  makeKey,
  postGraphQL,
  productionSecurity,
  rawPost,
  startTestServer,
  type TestServer,
} from '../support/server';

let handle: DatabaseHandle;
let server: TestServer;
let assignKey: string;
let readKey: string;

beforeAll(async () => {
  handle = await openTestDatabase();
  server = await startTestServer(handle, { security: productionSecurity() });
  assignKey = (await makeKey(handle.db, ['assign'])).key;
  readKey = (await makeKey(handle.db, ['read'])).key;
});
afterAll(async () => {
  await server?.close();
  await handle?.close();
});

const post = (body: unknown, key = assignKey) =>
  rawPost(`${server.base}/v1/events`, JSON.stringify(body), { key });

async function exposures(experimentKey: string): Promise<number> {
  const result = await postGraphQL(
    `${server.base}/graphql`,
    `query M($key: String!) { experiment(key: $key) { metrics { totalExposures } } }`,
    { key: experimentKey },
    { key: readKey },
  );
  return result.body.data.experiment.metrics.totalExposures;
}

describe('POST /v1/events', () => {
  it('accepts, deduplicates and rejects by index, as recordEvents does', async () => {
    const { experiment } = await createRunningWithVariants(handle.db, { key: uniqueKey('ev') });
    const assigned = await assignVariant(handle.db, experiment.key, 'ev-user');
    const exposure = {
      kind: 'EXPOSURE',
      experimentKey: experiment.key,
      userId: 'ev-user',
      variantId: assigned.variant!.id,
      eventId: randomUUID(),
    };
    const batch = [
      exposure,
      { ...exposure, eventId: 'not-a-uuid' },
      { ...exposure, userId: 'never-assigned', variantId: undefined, eventId: randomUUID() },
      {
        kind: 'CONVERSION',
        experimentKey: experiment.key,
        userId: 'ev-user',
        eventId: randomUUID(),
        metricName: 'watch',
        value: 2,
      },
    ];
    const first = await post({ events: batch });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ accepted: 2, duplicates: 0 });
    expect(first.body.rejected).toEqual([
      {
        index: 1,
        code: 'VALIDATION_FAILED',
        message: expect.any(String),
        fields: [{ path: ['events', '1', 'eventId'], message: expect.any(String) }],
      },
      { index: 2, code: 'NOT_ASSIGNED', message: expect.any(String) },
    ]);
    const replay = await post({ events: [batch[0], batch[3]] });
    expect(replay.body).toEqual({ accepted: 0, duplicates: 2, rejected: [] });
    expect(await exposures(experiment.key)).toBe(1);
  });

  it('takes CUPED covariates on exposures and names a bad one', async () => {
    const { experiment } = await createRunningWithVariants(handle.db, { key: uniqueKey('cov') });
    const assigned = await assignVariant(handle.db, experiment.key, 'cov-user');
    const exposure = {
      kind: 'EXPOSURE',
      experimentKey: experiment.key,
      userId: 'cov-user',
      variantId: assigned.variant!.id,
      eventId: randomUUID(),
      covariates: { watch: 12.5 },
    };
    const result = await post({
      events: [
        exposure,
        { ...exposure, eventId: randomUUID(), covariates: { watch: Number.MAX_VALUE } },
        { ...exposure, eventId: randomUUID(), covariates: 'lots' },
      ],
    });
    expect(result.status).toBe(200);
    expect(result.body.accepted).toBe(1);
    expect(
      result.body.rejected.map((r: { fields: { path: string[] }[] }) =>
        r.fields.map((f) => f.path.join('.')),
      ),
    ).toEqual([['events.1.covariates.watch'], ['events.2.covariates']]);
    const results = await postGraphQL(
      `${server.base}/graphql`,
      `query R($key: String!) { experiment(key: $key) { results(metric: "watch", minUnitsPerVariant: 2) { covariateUnits } } }`,
      { key: experiment.key },
      { key: readKey },
    );
    expect(results.body.data.experiment.results.covariateUnits).toBe(1);
  });

  it('refuses a batch over the limit, a bad envelope and a key without the assign scope', async () => {
    const tooMany = await post({ events: Array.from({ length: LIMITS.maxBatchSize + 1 }, () => ({})) });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatchObject({ code: 'VALIDATION_FAILED', fields: [{ path: ['events'] }] });
    const notList = await post({ events: 'x' });
    expect(notList.body.error.fields[0].path).toEqual(['events']);
    const extra = await post({ events: [], other: 1 });
    expect(extra.status).toBe(400);
    expect((await post({ events: [] }, readKey)).status).toBe(403);
    const notJson = await rawPost(`${server.base}/v1/events`, '{', { key: assignKey });
    expect(notJson.body.error.code).toBe('BAD_REQUEST');
    const form = await rawPost(`${server.base}/v1/events`, 'a=1', {
      key: assignKey,
      contentType: 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(415);
    expect((await getUrl(`${server.base}/v1/events`, { authorization: `Bearer ${assignKey}` })).status).toBe(
      405,
    );
  });

  it('takes the exposures a GrowthBook trackingCallback posts, with the payload from /v1/sdk/payload', async () => {
    const { experiment } = await createRunningWithVariants(handle.db, { key: uniqueKey('ev-sdk') });
    const payload = (await getUrl(`${server.base}/v1/sdk/payload`, { authorization: `Bearer ${assignKey}` }))
      .body;
    const users = Array.from({ length: 20 }, (_, i) => `sdk-tracked-${i}`);
    const posts: Promise<unknown>[] = [];
    for (const userId of users) {
      // The service must know the unit: an SDK client assigns through the service once (or the
      // exposure is rejected NOT_ASSIGNED); then it evaluates locally and tracks.
      await assignVariant(handle.db, experiment.key, userId);
      const gb = new GrowthBook({
        attributes: { id: userId },
        trackingCallback: (exp, result) => {
          posts.push(
            post({
              events: [
                {
                  kind: 'EXPOSURE',
                  experimentKey: exp.key,
                  userId,
                  variantId: result.key,
                  eventId: randomUUID(),
                },
              ],
            }),
          );
        },
      });
      gb.initSync({ payload });
      gb.evalFeature(experiment.key);
      gb.destroy();
    }
    const answers = (await Promise.all(posts)) as { body: { accepted: number } }[];
    expect(answers.map((a) => a.body.accepted)).toEqual(users.map(() => 1));
    expect(await exposures(experiment.key)).toBe(users.length);
  });
});
