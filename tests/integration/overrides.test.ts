/**
 * QA overrides through the API: FORCED wins over status (but ARCHIVED), traffic, targeting and stored
 * assignments; bad input is a typed error with nothing written; every change is audited; the limit holds;
 * forced units are never stored as assignments: their events are kept apart, so 100 overrides leave results
 * and metrics as they were unless `includeForced: true` adds them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { assignVariant } from '../../src/assignments/service';
import { LIMITS } from '../../src/config';
import type { DatabaseHandle } from '../../src/db/client';
import { experimentOverrides } from '../../src/db/schema';
import type { App } from '../../src/http/app';
import { createTestApp, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import {
  createRunningWithVariants,
  createTestExperiment,
  experimentService,
  uniqueKey,
} from '../support/factories';
import { getVariants } from '../../src/experiments/repository';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => {
  await handle?.close();
});

const SET = `mutation Set($key: String!, $userId: String!, $variantId: ID!) {
  setOverride(experimentKey: $key, userId: $userId, variantId: $variantId) {
    __typename
    ... on Override { userId createdBy variant { id name } }
    ... on Error { code message }
    ... on ValidationError { fieldErrors { path message } }
  }
}`;
const REMOVE = `mutation Remove($key: String!, $userId: String!) {
  removeOverride(experimentKey: $key, userId: $userId) {
    __typename
    ... on Override { userId }
    ... on Error { code message }
  }
}`;
const READ = `query Read($key: String!) {
  experiment(key: $key) {
    assignmentCount
    overrides { userId variant { id } }
    auditLog(first: 10) { action details }
  }
}`;

const setOverride = async (key: string, userId: string, variantId: string) =>
  (await gqlOk(app, SET, { key, userId, variantId })).setOverride;

describe('setOverride / removeOverride', () => {
  it('forces a unit before traffic, targeting and its stored assignment, and stores nothing', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db, {
      key: uniqueKey('ovr'),
      trafficAllocation: 0,
      targeting: { plan: 'premium' },
    });
    const set = await setOverride(experiment.key, 'qa-1', variants[1].id);
    expect(set).toMatchObject({ __typename: 'Override', userId: 'qa-1', variant: { id: variants[1].id } });
    const forced = await assignVariant(handle.db, experiment.key, 'qa-1', {}, { plan: 'free' });
    expect(forced).toMatchObject({ reason: 'FORCED', enrolled: true, assignedAt: null });
    expect(forced.variant!.id).toBe(variants[1].id);
    // Someone else is not forced: no traffic.
    expect((await assignVariant(handle.db, experiment.key, 'qa-2', {}, { plan: 'premium' })).reason).toBe(
      'OUTSIDE_TRAFFIC',
    );
    const read = (await gqlOk(app, READ, { key: experiment.key })).experiment;
    expect(read.assignmentCount).toBe(0);
    expect(read.overrides).toEqual([{ userId: 'qa-1', variant: { id: variants[1].id } }]);
    expect(read.auditLog[0]).toMatchObject({ action: 'override.set', details: { before: null } });
  });

  it('wins over a stored assignment, moves on a second set, and removing it restores the stored one', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db, { key: uniqueKey('ovr-st') });
    const stored = await assignVariant(handle.db, experiment.key, 'qa-st');
    const other = variants.find((v) => v.id !== stored.variant!.id)!;
    await setOverride(experiment.key, 'qa-st', other.id);
    expect((await assignVariant(handle.db, experiment.key, 'qa-st')).variant!.id).toBe(other.id);
    await setOverride(experiment.key, 'qa-st', stored.variant!.id);
    expect((await assignVariant(handle.db, experiment.key, 'qa-st')).reason).toBe('FORCED');
    const removed = (await gqlOk(app, REMOVE, { key: experiment.key, userId: 'qa-st' })).removeOverride;
    expect(removed).toEqual({ __typename: 'Override', userId: 'qa-st' });
    expect(await assignVariant(handle.db, experiment.key, 'qa-st')).toMatchObject({
      reason: 'EXISTING',
      variant: { id: stored.variant!.id },
    });
    const actions = (await gqlOk(app, READ, { key: experiment.key })).experiment.auditLog.map(
      (a: { action: string }) => a.action,
    );
    expect(actions.slice(0, 3)).toEqual(['override.removed', 'override.set', 'override.set']);
    const again = (await gqlOk(app, REMOVE, { key: experiment.key, userId: 'qa-st' })).removeOverride;
    expect(again.code).toBe('NOT_FOUND');
  });

  it('previews a draft (and a paused experiment); refuses archived experiments', async () => {
    const draft = await createTestExperiment(handle.db, { key: uniqueKey('ovr-draft') });
    const [control] = await getVariants(handle.db, draft.id);
    await setOverride(draft.key, 'qa-d', control.id);
    expect((await assignVariant(handle.db, draft.key, 'qa-d')).reason).toBe('FORCED');
    expect((await assignVariant(handle.db, draft.key, 'someone')).reason).toBe('NOT_RUNNING');
    await experimentService(handle.db).transition(draft.id, 'archive');
    expect((await assignVariant(handle.db, draft.key, 'qa-d')).reason).toBe('NOT_RUNNING');
    const refused = await setOverride(draft.key, 'qa-e', control.id);
    expect(refused.code).toBe('RULE_VIOLATION');
  });

  it('refuses bad input with a typed error and writes nothing', async () => {
    const { experiment } = await createRunningWithVariants(handle.db, { key: uniqueKey('ovr-bad') });
    const foreign = (await createRunningWithVariants(handle.db, { key: uniqueKey('ovr-other') })).variants[0];
    const wrongVariant = await setOverride(experiment.key, 'qa-x', foreign.id);
    expect(wrongVariant.fieldErrors).toEqual([{ path: ['variantId'], message: expect.any(String) }]);
    expect((await setOverride(experiment.key, 'qa-x', 'not-a-uuid')).fieldErrors[0].path).toEqual([
      'variantId',
    ]);
    expect((await setOverride(experiment.key, '', foreign.id)).fieldErrors[0].path).toEqual(['userId']);
    expect((await setOverride(uniqueKey('missing'), 'qa-x', foreign.id)).code).toBe('NOT_FOUND');
    const read = (await gqlOk(app, READ, { key: experiment.key })).experiment;
    expect(read.overrides).toEqual([]);
    expect(read.auditLog.filter((a: { action: string }) => a.action.startsWith('override'))).toEqual([]);
  });

  it(`holds at most ${LIMITS.maxOverridesPerExperiment} overrides per experiment`, async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db, {
      key: uniqueKey('ovr-lim'),
    });
    // Filled directly: the limit is what is under test, not a thousand audited mutations.
    await handle.db.insert(experimentOverrides).values(
      Array.from({ length: LIMITS.maxOverridesPerExperiment }, (_, i) => ({
        experimentId: experiment.id,
        userId: `bulk-${i}`,
        variantId: variants[0].id,
        createdBy: 'test',
      })),
    );
    const refused = await setOverride(experiment.key, 'one-more', variants[0].id);
    expect(refused.fieldErrors[0]).toMatchObject({ path: ['userId'] });
    // Moving an existing one is no new override.
    expect((await setOverride(experiment.key, 'bulk-0', variants[1].id)).__typename).toBe('Override');
  });
});

describe('forced units stay out of results unless asked (includeForced)', () => {
  const RESULTS = `query Results($key: String!, $forced: Boolean) {
    experiment(key: $key) {
      assignmentCount
      metrics(includeForced: $forced) {
        variantMetrics { variant { id } exposures uniqueUsers conversions conversionRate avgMetricValue }
        totalUniqueUsers
      }
      results(metric: "watch", includeForced: $forced, minUnitsPerVariant: 2) {
        includeForced excludedConversions srm { observed }
        variants { variant { id } units mean }
      }
    }
  }`;
  const RECORD = `mutation Record($events: [EventInput!]!) {
    recordEvents(events: $events) {
      ... on RecordEventsResult { accepted duplicates rejected { index code } }
    }
  }`;
  const events = (key: string, users: string[], value: number) =>
    users.flatMap((userId) => [
      { kind: 'EXPOSURE', experimentKey: key, userId, eventId: randomUUID() },
      {
        kind: 'CONVERSION',
        experimentKey: key,
        userId,
        eventId: randomUUID(),
        metricName: 'watch',
        value,
      },
    ]);

  it('100 forced units send events: recorded apart, results and metrics unchanged by default, added on request', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db, {
      key: uniqueKey('ovr-res'),
    });
    const enrolled = Array.from({ length: 40 }, (_, i) => `unit-${i}`);
    for (const u of enrolled) await assignVariant(handle.db, experiment.key, u);
    await gqlOk(app, RECORD, { events: events(experiment.key, enrolled, 3) });
    const before = (await gqlOk(app, RESULTS, { key: experiment.key })).experiment;

    const qa = Array.from({ length: 100 }, (_, i) => `qa-${i}`);
    for (const [i, u] of qa.entries()) await setOverride(experiment.key, u, variants[i % 2].id);
    for (const u of qa) expect((await assignVariant(handle.db, experiment.key, u)).reason).toBe('FORCED');
    const batch = events(experiment.key, qa, 5);
    // A conversion before the unit's first exposure is recorded but outside its attribution window.
    batch.push({
      kind: 'CONVERSION',
      experimentKey: experiment.key,
      userId: 'qa-0',
      eventId: randomUUID(),
      metricName: 'watch',
      value: 100,
      occurredAt: new Date(Date.now() - 3_600_000).toISOString(),
    } as (typeof batch)[number]);
    const recorded = (await gqlOk(app, RECORD, { events: batch })).recordEvents;
    expect(recorded).toMatchObject({ accepted: 201, duplicates: 0, rejected: [] });
    // A replay is a duplicate, not a second event.
    expect((await gqlOk(app, RECORD, { events: batch.slice(0, 2) })).recordEvents).toMatchObject({
      accepted: 0,
      duplicates: 2,
    });

    // By default nothing moved: forced units are not assignments and their events are not counted.
    const byDefault = (await gqlOk(app, RESULTS, { key: experiment.key })).experiment;
    expect(byDefault).toEqual(before);
    expect(byDefault.results.includeForced).toBe(false);

    const withForced = (await gqlOk(app, RESULTS, { key: experiment.key, forced: true })).experiment;
    expect(withForced.assignmentCount).toBe(40);
    expect(withForced.results.includeForced).toBe(true);
    // The sample-ratio check reads randomised units only.
    expect(withForced.results.srm).toEqual(before.results.srm);
    expect(withForced.results.excludedConversions).toBe(before.results.excludedConversions + 1);
    for (const [i, v] of withForced.results.variants.entries()) {
      const was = before.results.variants[i];
      expect(v.units).toBe(was.units + 50);
      expect(v.mean).toBeCloseTo((3 * was.units + 5 * 50) / (was.units + 50), 12);
    }
    expect(withForced.metrics.totalUniqueUsers).toBe(140);
    for (const [i, m] of withForced.metrics.variantMetrics.entries()) {
      const was = before.metrics.variantMetrics[i];
      expect(m).toEqual({
        variant: was.variant,
        exposures: was.exposures + 50,
        uniqueUsers: was.uniqueUsers + 50,
        conversions: was.conversions + 50,
        conversionRate: 1,
        avgMetricValue: expect.closeTo((3 * was.conversions + 5 * 50) / (was.conversions + 50), 12),
      });
    }
  });

  it('a forced unit is never enrolled by an event, and an event naming another variant is a mismatch', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db, {
      key: uniqueKey('ovr-ev'),
    });
    await setOverride(experiment.key, 'qa-v', variants[1].id);
    const exposure = (variantId: string) => ({
      kind: 'EXPOSURE',
      experimentKey: experiment.key,
      userId: 'qa-v',
      variantId,
      eventId: randomUUID(),
    });
    const mismatch = (await gqlOk(app, RECORD, { events: [exposure(variants[0].id)] })).recordEvents;
    expect(mismatch.rejected).toEqual([{ index: 0, code: 'VARIANT_MISMATCH' }]);
    // Naming its forced variant (an SDK that applied the override) records the event, still not enrolled.
    expect((await gqlOk(app, RECORD, { events: [exposure(variants[1].id)] })).recordEvents.accepted).toBe(1);
    const read = (await gqlOk(app, RESULTS, { key: experiment.key, forced: true })).experiment;
    expect(read.assignmentCount).toBe(0);
    expect(read.results.variants.map((v: { units: number }) => v.units)).toEqual([0, 1]);
  });
});
