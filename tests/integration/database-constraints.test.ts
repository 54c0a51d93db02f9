/**
 * The database refuses bad rows on its own, whatever code writes them: these insert directly with
 * Drizzle, past the services' validation.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it as serial } from '@jest/globals';
import { pgConstraint, pgErrorCode } from '../../src/common/errors';
import type { Database, DatabaseHandle } from '../../src/db/client';
import {
  experimentAssignments,
  experimentConversions,
  experimentEventIds,
  experimentExposures,
  experiments,
  experimentVariants,
} from '../../src/db/schema';
import { openTestDatabase } from '../support/db';
import { uniqueKey } from '../support/factories';
import { rowCounts } from '../support/rows';

// Every test makes its own experiments (unique keys) and looks only at them: they run concurrently.
const it = serial.concurrent;

let handle: DatabaseHandle;
let db: Database;

beforeAll(async () => {
  handle = await openTestDatabase();
  db = handle.db;
});
afterAll(async () => handle.close());

/** Runs a write that must fail, and returns the SQLSTATE and constraint the database reported. */
async function rejection(write: () => Promise<unknown>): Promise<{ code?: string; constraint?: string }> {
  try {
    await write();
  } catch (err) {
    return { code: pgErrorCode(err), constraint: pgConstraint(err) };
  }
  throw new Error('the write succeeded but should have been refused');
}

const CHECK = '23514';
const UNIQUE = '23505';
const FOREIGN_KEY = '23503';

async function experimentWithVariants() {
  const [experiment] = await db
    .insert(experiments)
    .values({ key: uniqueKey('db'), name: 'Constraint test' })
    .returning();
  const variants = await db
    .insert(experimentVariants)
    .values([
      { experimentId: experiment.id, name: 'control', isControl: true, position: 0 },
      { experimentId: experiment.id, name: 'treatment', position: 1 },
    ])
    .returning();
  return { experiment, variants };
}

describe('experiments', () => {
  it.each([-0.1, 1.5, Number.NaN])('refuses traffic_allocation %p', async (trafficAllocation) => {
    const key = uniqueKey('db');
    expect(
      await rejection(() => db.insert(experiments).values({ key, name: 'x', trafficAllocation })),
    ).toEqual({ code: CHECK, constraint: 'experiments_traffic_allocation_range' });
  });

  it('accepts the bounds 0 and 1', async () => {
    const rows = await db
      .insert(experiments)
      .values([
        { key: uniqueKey('db'), name: 'none', trafficAllocation: 0 },
        { key: uniqueKey('db'), name: 'all', trafficAllocation: 1 },
      ])
      .returning();
    expect(rows.map((r) => r.trafficAllocation)).toEqual([0, 1]);
  });

  it.each([
    ['upper case', 'Upper-Case'],
    ['a leading dash', '-leading-dash'],
    ['a space', 'has space'],
    ['nothing', ''],
    ['non-ASCII letters', 'ünïcode'],
    ['129 characters', `k${'x'.repeat(128)}`],
  ])('refuses a key with %s', async (_what, key) => {
    expect(await rejection(() => db.insert(experiments).values({ key, name: 'x' }))).toEqual({
      code: CHECK,
      constraint: 'experiments_key_slug',
    });
  });

  it('refuses a duplicate key', async () => {
    const key = uniqueKey('db');
    await db.insert(experiments).values({ key, name: 'first' });
    expect(await rejection(() => db.insert(experiments).values({ key, name: 'second' }))).toEqual({
      code: UNIQUE,
      constraint: 'experiments_key_unique',
    });
  });
});

describe('variants', () => {
  it('refuses a negative weight', async () => {
    const { experiment } = await experimentWithVariants();
    expect(
      await rejection(() =>
        db
          .insert(experimentVariants)
          .values({ experimentId: experiment.id, name: 'neg', weight: -1, position: 2 }),
      ),
    ).toEqual({ code: CHECK, constraint: 'experiment_variants_weight_nonnegative' });
  });

  it('refuses a second control in one experiment, but not a control in another', async () => {
    const { experiment } = await experimentWithVariants();
    expect(
      await rejection(() =>
        db
          .insert(experimentVariants)
          .values({ experimentId: experiment.id, name: 'control-2', isControl: true, position: 2 }),
      ),
    ).toEqual({ code: UNIQUE, constraint: 'experiment_variants_one_control' });
    const other = await experimentWithVariants();
    expect(other.variants.filter((v) => v.isControl)).toHaveLength(1);
  });

  it('refuses two controls inserted in one statement', async () => {
    const [experiment] = await db
      .insert(experiments)
      .values({ key: uniqueKey('db'), name: 'x' })
      .returning();
    expect(
      await rejection(() =>
        db.insert(experimentVariants).values([
          { experimentId: experiment.id, name: 'a', isControl: true, position: 0 },
          { experimentId: experiment.id, name: 'b', isControl: true, position: 1 },
        ]),
      ),
    ).toEqual({ code: UNIQUE, constraint: 'experiment_variants_one_control' });
    expect((await rowCounts(db, experiment.id)).variants).toBe(0);
  });

  it('refuses a duplicate variant name within an experiment', async () => {
    const { experiment } = await experimentWithVariants();
    expect(
      await rejection(() =>
        db.insert(experimentVariants).values({ experimentId: experiment.id, name: 'treatment', position: 2 }),
      ),
    ).toEqual({ code: UNIQUE, constraint: 'experiment_variants_experiment_name_unique' });
  });

  it('refuses a config that is not a JSON object', async () => {
    const { experiment } = await experimentWithVariants();
    expect(
      await rejection(() =>
        db.insert(experimentVariants).values({
          experimentId: experiment.id,
          name: 'array-config',
          position: 2,
          config: [1, 2] as unknown as Record<string, unknown>,
        }),
      ),
    ).toEqual({ code: CHECK, constraint: 'experiment_variants_config_object' });
  });

  it('refuses a variant of an experiment that does not exist', async () => {
    const { code } = await rejection(() =>
      db.insert(experimentVariants).values({ experimentId: randomUUID(), name: 'orphan', position: 0 }),
    );
    expect(code).toBe(FOREIGN_KEY);
  });
});

describe('assignments and events', () => {
  it('refuses a second assignment of one user in one experiment', async () => {
    const { experiment, variants } = await experimentWithVariants();
    await db
      .insert(experimentAssignments)
      .values({ experimentId: experiment.id, userId: 'user-1', variantId: variants[0].id });
    expect(
      await rejection(() =>
        db
          .insert(experimentAssignments)
          .values({ experimentId: experiment.id, userId: 'user-1', variantId: variants[1].id }),
      ),
    ).toEqual({ code: UNIQUE, constraint: 'experiment_assignments_experiment_user_unique' });
    expect((await rowCounts(db, experiment.id)).assignments).toBe(1);
  });

  it('allows the same user in two experiments', async () => {
    const a = await experimentWithVariants();
    const b = await experimentWithVariants();
    await db.insert(experimentAssignments).values([
      { experimentId: a.experiment.id, userId: 'shared-user', variantId: a.variants[0].id },
      { experimentId: b.experiment.id, userId: 'shared-user', variantId: b.variants[1].id },
    ]);
    expect((await rowCounts(db, a.experiment.id)).assignments).toBe(1);
    expect((await rowCounts(db, b.experiment.id)).assignments).toBe(1);
  });

  it('refuses a second claim of an event id, whichever kind recorded it (the raw tables are partitioned)', async () => {
    const { experiment, variants } = await experimentWithVariants();
    const base = { experimentId: experiment.id, variantId: variants[0].id, userId: 'user-1' };
    const eventId = randomUUID();
    await db.insert(experimentEventIds).values({ eventId });
    await db.insert(experimentExposures).values({ ...base, eventId });
    expect(await rejection(() => db.insert(experimentEventIds).values({ eventId }))).toEqual({
      code: UNIQUE,
      constraint: 'experiment_event_ids_pkey',
    });
    expect(await rowCounts(db, experiment.id)).toMatchObject({ exposures: 1, conversions: 0 });
  });

  it('refuses an event for a variant that does not exist', async () => {
    const { experiment } = await experimentWithVariants();
    const { code } = await rejection(() =>
      db.insert(experimentExposures).values({
        experimentId: experiment.id,
        variantId: randomUUID(),
        userId: 'user-1',
        eventId: randomUUID(),
      }),
    );
    expect(code).toBe(FOREIGN_KEY);
  });

  it('refuses an event for a variant of another experiment, and a whole batch with one such event', async () => {
    const { experiment, variants } = await experimentWithVariants();
    const other = await experimentWithVariants();
    const event = (variantId: string) => ({
      experimentId: experiment.id,
      variantId,
      userId: 'user-1',
      eventId: randomUUID(),
      metricName: 'purchase',
    });
    const { code } = await rejection(() =>
      db.insert(experimentConversions).values([event(variants[0].id), event(other.variants[0].id)]),
    );
    expect(code).toBe(FOREIGN_KEY);
    expect((await rowCounts(db, experiment.id)).conversions).toBe(0);
  });
});
