import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it as serial } from '@jest/globals';
import { eq } from 'drizzle-orm';
import { getExperimentMetrics } from '../../src/aggregates/read';
import { assignVariant } from '../../src/assignments/service';
import {
  NotAssignedError,
  NotFoundError,
  ValidationError,
  VariantMismatchError,
} from '../../src/common/errors';
import type { Database, DatabaseHandle } from '../../src/db/client';
import { experimentConversions, experimentExposures } from '../../src/db/schema';
import { recordConversion, recordEvents, recordExposure, recordMetric } from '../../src/events/service';
import * as experimentsRepo from '../../src/experiments/repository';
import { openTestDatabase } from '../support/db';
import {
  createRunningWithVariants,
  createTestExperiment,
  experimentService,
  uniqueKey,
} from '../support/factories';
import { expectMetricsEqual, recomputeMetrics, rowCounts, storedAssignment } from '../support/rows';

// Every test makes its own experiments (unique keys) and looks only at them: they run concurrently.
const it = serial.concurrent;

let handle: DatabaseHandle;
let db: Database;

beforeAll(async () => {
  // Several connections on PostgreSQL, so concurrent events really contend for the aggregates.
  handle = await openTestDatabase({ poolSize: 10 });
  db = handle.db;
});
afterAll(async () => handle.close());

/** A running experiment and a user already assigned in it (through the real assignment path). */
async function assignedUser() {
  const { experiment, variants } = await createRunningWithVariants(db);
  const userId = uniqueKey('user');
  const { variant } = await assignVariant(db, experiment.key, userId);
  const other = variants.find((v) => v.id !== variant!.id)!;
  return { experiment, variants, userId, assigned: variant!, other };
}

async function rejectionOf(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => {
      throw new Error('the call succeeded but should have been rejected');
    },
    (err: unknown) => err,
  );
}

describe('exposures and conversions with a stored assignment', () => {
  it('an exposure without a variant counts for the stored assignment', async () => {
    const { experiment, userId, assigned } = await assignedUser();
    const occurredAt = new Date(Date.now() - 60_000);
    const result = await recordExposure(db, {
      experimentKey: experiment.key,
      userId,
      occurredAt,
      metadata: { surface: 'home' },
    });
    expect(result).toMatchObject({ duplicate: false, experimentId: experiment.id, variantId: assigned.id });
    const rows = await db
      .select()
      .from(experimentExposures)
      .where(eq(experimentExposures.experimentId, experiment.id));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      userId,
      variantId: assigned.id,
      eventId: result.eventId,
      occurredAt,
      metadata: { surface: 'home' },
    });
  });

  it('a conversion without a variant counts for the stored assignment, value 1 by default', async () => {
    const { experiment, userId, assigned } = await assignedUser();
    const first = await recordConversion(db, { experimentKey: experiment.key, userId, metricName: 'signup' });
    const second = await recordConversion(db, {
      experimentKey: experiment.key,
      userId,
      metricName: 'watch_minutes',
      value: 42.5,
    });
    expect(first.variantId).toBe(assigned.id);
    expect(second.variantId).toBe(assigned.id);
    const rows = await db
      .select()
      .from(experimentConversions)
      .where(eq(experimentConversions.experimentId, experiment.id));
    expect(rows.map((r) => [r.metricName, r.value, r.variantId, r.eventId]).sort()).toEqual(
      [
        ['signup', 1, assigned.id, first.eventId],
        ['watch_minutes', 42.5, assigned.id, second.eventId],
      ].sort(),
    );
  });

  it('an event naming the stored variant is recorded', async () => {
    const { experiment, userId, assigned } = await assignedUser();
    const result = await recordExposure(db, {
      experimentKey: experiment.key,
      userId,
      variantId: assigned.id,
    });
    expect(result.variantId).toBe(assigned.id);
    expect((await rowCounts(db, experiment.id)).exposures).toBe(1);
  });

  it('an event naming another variant is a VariantMismatch, and nothing is written', async () => {
    const { experiment, userId, assigned, other } = await assignedUser();
    const before = await rowCounts(db, experiment.id);
    const exposureErr = await rejectionOf(
      recordExposure(db, { experimentKey: experiment.key, userId, variantId: other.id }),
    );
    expect(exposureErr).toBeInstanceOf(VariantMismatchError);
    expect(exposureErr).toMatchObject({
      code: 'VARIANT_MISMATCH',
      assignedVariantId: assigned.id,
      givenVariantId: other.id,
    });
    await expect(
      recordConversion(db, {
        experimentKey: experiment.key,
        userId,
        variantId: other.id,
        metricName: 'signup',
      }),
    ).rejects.toBeInstanceOf(VariantMismatchError);
    expect(await rowCounts(db, experiment.id)).toEqual(before);
    expect((await storedAssignment(db, experiment.id, userId))!.variantId).toBe(assigned.id);
  });

  it('an event naming a variant of another experiment is a ValidationError on input.variantId', async () => {
    const { experiment, userId } = await assignedUser();
    const elsewhere = await createRunningWithVariants(db);
    const before = await rowCounts(db, experiment.id);
    const err = await rejectionOf(
      recordExposure(db, { experimentKey: experiment.key, userId, variantId: elsewhere.variants[0].id }),
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).fieldErrors).toEqual([
      {
        path: ['input', 'variantId'],
        message: `variant ${elsewhere.variants[0].id} does not belong to experiment ${experiment.key}`,
      },
    ]);
    expect(await rowCounts(db, experiment.id)).toEqual(before);
  });
});

describe('events without a stored assignment', () => {
  it('without a variant: NotAssigned, and nothing is written', async () => {
    const { experiment } = await createRunningWithVariants(db);
    const userId = uniqueKey('user');
    const before = await rowCounts(db, experiment.id);
    const err = await rejectionOf(recordExposure(db, { experimentKey: experiment.key, userId }));
    expect(err).toBeInstanceOf(NotAssignedError);
    expect(err).toMatchObject({ code: 'NOT_ASSIGNED', experimentKey: experiment.key, userId });
    await expect(
      recordConversion(db, { experimentKey: experiment.key, userId, metricName: 'signup' }),
    ).rejects.toBeInstanceOf(NotAssignedError);
    expect(await rowCounts(db, experiment.id)).toEqual(before);
  });

  it('with a variant (an SDK evaluated locally): the assignment is recorded with the event', async () => {
    const { experiment, variants } = await createRunningWithVariants(db);
    const userId = uniqueKey('user');
    const result = await recordConversion(db, {
      experimentKey: experiment.key,
      userId,
      variantId: variants[1].id,
      metricName: 'purchase',
      value: 9.99,
    });
    expect(result.variantId).toBe(variants[1].id);
    expect(await storedAssignment(db, experiment.id, userId)).toMatchObject({
      variantId: variants[1].id,
    });
    // From then on the user is assigned: assignVariant and variant-less events agree with the SDK.
    expect(await assignVariant(db, experiment.key, userId)).toMatchObject({
      reason: 'EXISTING',
      variant: { id: variants[1].id },
    });
    expect((await recordExposure(db, { experimentKey: experiment.key, userId })).variantId).toBe(
      variants[1].id,
    );
    expect(await rowCounts(db, experiment.id)).toMatchObject({
      assignments: 1,
      exposures: 1,
      conversions: 1,
    });
  });

  it('with a variant of another experiment: ValidationError on input.variantId, nothing written', async () => {
    const { experiment } = await createRunningWithVariants(db);
    const elsewhere = await createRunningWithVariants(db);
    const before = await rowCounts(db, experiment.id);
    const err = await rejectionOf(
      recordExposure(db, {
        experimentKey: experiment.key,
        userId: uniqueKey('user'),
        variantId: elsewhere.variants[1].id,
      }),
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).fieldErrors).toEqual([
      {
        path: ['input', 'variantId'],
        message: `variant ${elsewhere.variants[1].id} does not belong to experiment ${experiment.key}`,
      },
    ]);
    expect(await rowCounts(db, experiment.id)).toEqual(before);
  });

  it('with a variant of an experiment that is not running: ValidationError, nobody is enrolled', async () => {
    const draft = await createTestExperiment(db);
    const [variant] = await experimentsRepo.getVariants(db, draft.id);
    const before = await rowCounts(db, draft.id);
    const err = await rejectionOf(
      recordExposure(db, { experimentKey: draft.key, userId: uniqueKey('user'), variantId: variant.id }),
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).fieldErrors[0].path).toEqual(['input', 'experimentKey']);
    expect((err as ValidationError).fieldErrors[0].message).toMatch(/is draft/);
    expect(await rowCounts(db, draft.id)).toEqual(before);
  });

  it('concurrent first events naming different variants: one assignment, the losers get VariantMismatch', async () => {
    const { experiment, variants } = await createRunningWithVariants(db);
    const userId = uniqueKey('user');
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        recordExposure(db, { experimentKey: experiment.key, userId, variantId: variants[i % 2].id }),
      ),
    );
    const stored = await storedAssignment(db, experiment.id, userId);
    const fulfilled = results.filter((r) => r.status === 'fulfilled');
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(fulfilled.length).toBeGreaterThanOrEqual(1);
    expect(fulfilled.every((r) => r.value.variantId === stored!.variantId)).toBe(true);
    expect(rejected.every((r) => r.reason instanceof VariantMismatchError)).toBe(true);
    expect(await rowCounts(db, experiment.id)).toMatchObject({ assignments: 1, exposures: fulfilled.length });
  });
});

describe('idempotency', () => {
  it('a repeated eventId is reported as a duplicate and stored once', async () => {
    const { experiment, userId } = await assignedUser();
    const eventId = randomUUID();
    const first = await recordExposure(db, { experimentKey: experiment.key, userId, eventId });
    const again = await recordExposure(db, { experimentKey: experiment.key, userId, eventId });
    expect(first).toMatchObject({ eventId, duplicate: false });
    expect(again).toMatchObject({ eventId, duplicate: true });
    expect((await rowCounts(db, experiment.id)).exposures).toBe(1);

    const conversionId = randomUUID();
    await recordConversion(db, {
      experimentKey: experiment.key,
      userId,
      metricName: 'purchase',
      value: 5,
      eventId: conversionId,
    });
    const retried = await recordConversion(db, {
      experimentKey: experiment.key,
      userId,
      metricName: 'purchase',
      value: 500,
      eventId: conversionId,
    });
    expect(retried.duplicate).toBe(true);
    const rows = await db
      .select()
      .from(experimentConversions)
      .where(eq(experimentConversions.eventId, conversionId));
    expect(rows.map((r) => r.value)).toEqual([5]);
  });

  it('events without an eventId get a fresh one each time', async () => {
    const { experiment, userId } = await assignedUser();
    const a = await recordExposure(db, { experimentKey: experiment.key, userId });
    const b = await recordExposure(db, { experimentKey: experiment.key, userId });
    expect(a.eventId).not.toBe(b.eventId);
    expect((await rowCounts(db, experiment.id)).exposures).toBe(2);
  });
});

describe('recordMetric', () => {
  it("'exposure' goes to the exposures table", async () => {
    const { experiment, userId, assigned } = await assignedUser();
    const result = await recordMetric(db, {
      experimentId: experiment.id,
      userId,
      metricName: 'exposure',
      value: 7,
    });
    expect(result).toMatchObject({ variantId: assigned.id, duplicate: false });
    expect(await rowCounts(db, experiment.id)).toMatchObject({ exposures: 1, conversions: 0 });
  });

  it('any other metric goes to conversions with its value', async () => {
    const { experiment, userId, assigned } = await assignedUser();
    await recordMetric(db, { experimentId: experiment.id, userId, metricName: 'watch_minutes', value: 31.5 });
    await recordMetric(db, { experimentId: experiment.id, userId, metricName: 'signup' });
    const rows = await db
      .select()
      .from(experimentConversions)
      .where(eq(experimentConversions.experimentId, experiment.id));
    expect(rows.map((r) => [r.metricName, r.value, r.variantId]).sort()).toEqual(
      [
        ['signup', 1, assigned.id],
        ['watch_minutes', 31.5, assigned.id],
      ].sort(),
    );
    expect((await rowCounts(db, experiment.id)).exposures).toBe(0);
  });

  it('follows the same variant rules as the other events', async () => {
    const { experiment, userId, other } = await assignedUser();
    const before = await rowCounts(db, experiment.id);
    await expect(
      recordMetric(db, { experimentId: experiment.id, userId, variantId: other.id, metricName: 'signup' }),
    ).rejects.toBeInstanceOf(VariantMismatchError);
    await expect(
      recordMetric(db, { experimentId: experiment.id, userId: uniqueKey('user'), metricName: 'exposure' }),
    ).rejects.toBeInstanceOf(NotAssignedError);
    expect(await rowCounts(db, experiment.id)).toEqual(before);
  });

  it('an unknown experiment id is NotFound', async () => {
    await expect(
      recordMetric(db, { experimentId: randomUUID(), userId: 'u', metricName: 'signup' }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('unknown experiments and other states', () => {
  it('an unknown experiment key is NotFound', async () => {
    await expect(
      recordExposure(db, { experimentKey: uniqueKey('missing'), userId: 'u' }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a paused experiment still records events of users assigned while it ran', async () => {
    const { experiment, userId, assigned } = await assignedUser();
    await experimentService(db).transition(experiment.id, 'pause');
    const result = await recordConversion(db, {
      experimentKey: experiment.key,
      userId,
      metricName: 'signup',
    });
    expect(result.variantId).toBe(assigned.id);
  });
});

describe('metrics after events', () => {
  it('concurrent events from many users leave the maintained numbers equal to the raw rows (no lost update)', async () => {
    const { experiment } = await createRunningWithVariants(db);
    const users = Array.from({ length: 16 }, (_, i) => `${uniqueKey('burst')}-${i}`);
    for (const userId of users) await assignVariant(db, experiment.key, userId);
    await Promise.all(
      users.flatMap((userId, i) => [
        recordExposure(db, { experimentKey: experiment.key, userId }),
        recordExposure(db, { experimentKey: experiment.key, userId }),
        recordConversion(db, { experimentKey: experiment.key, userId, metricName: 'purchase', value: i + 1 }),
      ]),
    );
    const metrics = await getExperimentMetrics(db, [experiment.id]);
    expectMetricsEqual(metrics, await recomputeMetrics(db, experiment.id));
    expect(metrics.reduce((s, m) => s + m.exposures, 0)).toBe(32);
    expect(metrics.reduce((s, m) => s + m.conversions, 0)).toBe(16);
  });

  it('getExperimentMetrics matches a recomputation from the raw rows after a mix of accepted and refused events', async () => {
    const { experiment, variants } = await createRunningWithVariants(db);
    const users = Array.from({ length: 12 }, (_, i) => `${uniqueKey('mix')}-${i}`);
    for (const userId of users.slice(0, 10)) await assignVariant(db, experiment.key, userId);
    const key = experiment.key;
    for (const [i, userId] of users.slice(0, 10).entries()) {
      // Some convert before their first exposure, some never are exposed, some convert twice.
      if (i % 5 === 0)
        await recordConversion(db, { experimentKey: key, userId, metricName: 'watch_minutes', value: 10.5 });
      for (let k = 0; k < i % 4; k++) await recordExposure(db, { experimentKey: key, userId });
      if (i % 2 === 0)
        await recordConversion(db, { experimentKey: key, userId, metricName: 'purchase', value: i });
      if (i % 3 === 0)
        await recordMetric(db, { experimentId: experiment.id, userId, metricName: 'purchase', value: 2 });
    }
    // A retried event and refused events must not move any number.
    const eventId = randomUUID();
    await recordExposure(db, { experimentKey: key, userId: users[1], eventId });
    await recordExposure(db, { experimentKey: key, userId: users[1], eventId });
    const assigned = (await storedAssignment(db, experiment.id, users[2]))!.variantId;
    const other = variants.find((v) => v.id !== assigned)!;
    await expect(
      recordConversion(db, {
        experimentKey: key,
        userId: users[2],
        variantId: other.id,
        metricName: 'purchase',
        value: 1000,
      }),
    ).rejects.toBeInstanceOf(VariantMismatchError);
    await expect(recordExposure(db, { experimentKey: key, userId: users[10] })).rejects.toBeInstanceOf(
      NotAssignedError,
    );
    // A locally evaluated user arrives with a variant.
    await recordExposure(db, { experimentKey: key, userId: users[11], variantId: variants[1].id });
    await recordConversion(db, { experimentKey: key, userId: users[11], metricName: 'purchase', value: 5 });

    const metrics = await getExperimentMetrics(db, [experiment.id]);
    expectMetricsEqual(metrics, await recomputeMetrics(db, experiment.id));
    expect(metrics.reduce((s, m) => s + m.uniqueUsers, 0)).toBe(
      users.filter((_, i) => i === 11 || (i < 10 && i % 4 !== 0)).length,
    );
  });
});

describe('writing events', () => {
  it('recordEvents writes a batch, skips known and repeated event ids, and reports what it recorded', async () => {
    const { experiment, variants } = await createRunningWithVariants(db);
    const [a, b] = variants;
    const known = randomUUID();
    await recordExposure(db, {
      experimentKey: experiment.key,
      userId: 'batch-1',
      variantId: a.id,
      eventId: known,
    });
    // Units without an assignment are enrolled by their events' variant.
    const event = (
      kind: 'EXPOSURE' | 'CONVERSION',
      userId: string,
      variantId: string,
      eventId: string = randomUUID(),
    ) => ({
      kind,
      experimentKey: experiment.key,
      userId,
      variantId,
      eventId,
      ...(kind === 'CONVERSION' ? { metricName: 'purchase', value: 4 } : {}),
      metadata: { batch: true },
    });
    const repeated = randomUUID();
    const batch = [
      event('EXPOSURE', 'batch-1', a.id, known),
      event('EXPOSURE', 'batch-2', b.id, repeated),
      event('EXPOSURE', 'batch-2', b.id, repeated),
      event('EXPOSURE', 'batch-3', b.id),
      event('CONVERSION', 'batch-2', b.id),
      event('CONVERSION', 'batch-1', a.id),
    ];
    const result = await recordEvents(db, batch);
    expect(result.outcomes.map((o) => o.status)).toEqual([
      'duplicate',
      'accepted',
      'duplicate',
      'accepted',
      'accepted',
      'accepted',
    ]);
    const recorded = result.outcomes.flatMap((o) => (o.status === 'accepted' ? [o.result.eventId] : []));
    expect(recorded.sort()).toEqual([repeated, batch[3].eventId, batch[4].eventId, batch[5].eventId].sort());
    expect(await rowCounts(db, experiment.id)).toMatchObject({ exposures: 3, conversions: 2 });
    const metrics = await getExperimentMetrics(db, [experiment.id]);
    expectMetricsEqual(metrics, await recomputeMetrics(db, experiment.id));
    expect(metrics.map((m) => [m.exposures, m.uniqueUsers, m.conversions, m.conversionRate])).toEqual([
      [1, 1, 1, 1],
      [2, 2, 1, 0.5],
    ]);
    expect(await recordEvents(db, [])).toMatchObject({ accepted: 0, duplicates: 0, rejected: [] });
  });

  it('each kind goes to its own table, and a repeated event id is reported as a duplicate', async () => {
    const { experiment, variants } = await createRunningWithVariants(db);
    const base = {
      experimentKey: experiment.key,
      variantId: variants[0].id,
      userId: 'writer-user',
      occurredAt: new Date(),
      metadata: { via: 'service' },
    };
    const exposureId = randomUUID();
    expect(await recordExposure(db, { ...base, eventId: exposureId })).toMatchObject({ duplicate: false });
    expect(await recordExposure(db, { ...base, eventId: exposureId })).toMatchObject({ duplicate: true });
    const conversionId = randomUUID();
    const conversion = { ...base, eventId: conversionId, metricName: 'purchase', value: 3 };
    expect(await recordConversion(db, conversion)).toMatchObject({ duplicate: false });
    expect(await recordConversion(db, conversion)).toMatchObject({ duplicate: true });
    expect(await rowCounts(db, experiment.id)).toMatchObject({ exposures: 1, conversions: 1 });
    const [stored] = await db
      .select()
      .from(experimentConversions)
      .where(eq(experimentConversions.eventId, conversionId));
    expect(stored).toMatchObject({ metricName: 'purchase', value: 3, metadata: { via: 'service' } });
  });
});
