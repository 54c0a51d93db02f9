import { afterAll, beforeAll, describe, expect, it as serial } from '@jest/globals';
import { hashV2 } from '../../src/assignments/bucketing';
import * as repo from '../../src/assignments/repository';
import { CAP_REACHED, type ResolvedAssignment } from '../../src/assignments/repository';
import { assignVariant, loadConfigFromDb, pickVariant } from '../../src/assignments/service';
import { ValidationError } from '../../src/common/errors';
import type { Database, DatabaseHandle } from '../../src/db/client';
import type { ExperimentRow, VariantRow } from '../../src/experiments/repository';
import { openTestDatabase, testDriver } from '../support/db';
import {
  assignUnit,
  createRunningWithVariants,
  createTestExperiment,
  experimentService,
  uniqueKey,
} from '../support/factories';
import { rowCounts, storedAssignment } from '../support/rows';

// Every test makes its own experiments (unique keys) and looks only at them: they run concurrently.
const it = serial.concurrent;

let handle: DatabaseHandle;
let db: Database;

beforeAll(async () => {
  // Ten connections on PostgreSQL, so the concurrency tests really run their calls in parallel.
  handle = await openTestDatabase({ poolSize: 10 });
  db = handle.db;
});
afterAll(async () => handle.close());

const users = (n: number, prefix = uniqueKey('user')) =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('assignVariant', () => {
  it('buckets a new user with hash_v2(key, userId) over the weighted ranges, and records it', async () => {
    const { experiment, variants } = await createRunningWithVariants(db, {
      variants: [
        { name: 'control', weight: 1, isControl: true },
        { name: 'treatment', weight: 3 },
      ],
    });
    const ids = users(40);
    const seen = new Set<string>();
    for (const userId of ids) {
      const result = await assignVariant(db, experiment.key, userId);
      // Weights 1:3 → control holds [0, 0.25), treatment [0.25, 1).
      const expected = hashV2(experiment.key, userId) < 0.25 ? variants[0] : variants[1];
      expect(result).toMatchObject({
        experimentKey: experiment.key,
        userId,
        enrolled: true,
        reason: 'ASSIGNED',
        variant: { id: expected.id, name: expected.name },
      });
      expect(result.experiment!.id).toBe(experiment.id);
      expect(result.assignedAt).toBeInstanceOf(Date);
      const stored = await storedAssignment(db, experiment.id, userId);
      expect(stored).toMatchObject({ variantId: expected.id, assignedAt: result.assignedAt });
      seen.add(expected.name);
    }
    expect(seen).toEqual(new Set(['control', 'treatment']));
    expect((await rowCounts(db, experiment.id)).assignments).toBe(ids.length);
  });

  it('hashes with the hash seed instead of the key when one is set', async () => {
    const { experiment, variants } = await createRunningWithVariants(db, { hashSeed: 'shared-seed' });
    for (const userId of users(30)) {
      const result = await assignVariant(db, experiment.key, userId);
      const expected = hashV2('shared-seed', userId) < 0.5 ? variants[0] : variants[1];
      expect(result.variant!.id).toBe(expected.id);
    }
  });

  it('answers a returning user from the stored row: same variant, EXISTING, nothing new written', async () => {
    const { experiment } = await createRunningWithVariants(db);
    const [userId] = users(1);
    const first = await assignVariant(db, experiment.key, userId);
    const countsAfterFirst = await rowCounts(db, experiment.id);
    const again = await assignVariant(db, experiment.key, userId);
    expect(again).toMatchObject({
      reason: 'EXISTING',
      enrolled: true,
      variant: { id: first.variant!.id },
      assignedAt: first.assignedAt,
    });
    expect(await rowCounts(db, experiment.id)).toEqual(countsAfterFirst);
  });

  it('is sticky after a weight change, while fresh users follow the new weights', async () => {
    // A fixed hash seed and fixed user ids make the split, and so the test, deterministic.
    const { experiment, variants } = await createRunningWithVariants(db, { hashSeed: 'sticky-test' });
    const [control, treatment] = variants;
    const before = users(40, 'sticky');
    const assigned = new Map<string, string>();
    for (const userId of before) {
      assigned.set(userId, (await assignVariant(db, experiment.key, userId)).variant!.id);
    }
    const inControl = before.filter((u) => assigned.get(u) === control.id);
    expect(inControl.length).toBeGreaterThan(5);

    // All new traffic to the treatment: control's range becomes empty.
    await experimentService(db).updateVariant(control.id, { weight: 0 });
    const config = (await loadConfigFromDb(db, experiment.key))!;
    // Re-bucketed from scratch, every control user would now move: stickiness is what keeps them.
    expect(inControl.every((u) => pickVariant(config, u)!.id === treatment.id)).toBe(true);

    for (const userId of before) {
      const result = await assignVariant(db, experiment.key, userId);
      expect(result).toMatchObject({ reason: 'EXISTING', variant: { id: assigned.get(userId) } });
    }
    for (const userId of users(20, 'fresh')) {
      const result = await assignVariant(db, experiment.key, userId);
      expect(result).toMatchObject({ reason: 'ASSIGNED', variant: { id: treatment.id } });
    }
  });

  it.each(['draft', 'paused', 'completed', 'archived'] as const)(
    'does not enroll anyone while %s (NOT_RUNNING) and writes nothing',
    async (status) => {
      const experiment = await createTestExperiment(db);
      const service = experimentService(db);
      const path = {
        draft: [],
        paused: ['start', 'pause'],
        completed: ['start', 'complete'],
        archived: ['archive'],
      } as const;
      for (const action of path[status]) await service.transition(experiment.id, action);
      const countsBefore = await rowCounts(db, experiment.id);
      const [userId] = users(1);
      const result = await assignVariant(db, experiment.key, userId);
      expect(result).toMatchObject({
        experimentKey: experiment.key,
        userId,
        enrolled: false,
        variant: null,
        reason: 'NOT_RUNNING',
        assignedAt: null,
        experiment: { id: experiment.id, status },
      });
      expect(await rowCounts(db, experiment.id)).toEqual(countsBefore);
    },
  );

  it('a paused experiment does not serve even users assigned before the pause', async () => {
    const { experiment } = await createRunningWithVariants(db);
    const [userId] = users(1);
    expect((await assignVariant(db, experiment.key, userId)).enrolled).toBe(true);
    await experimentService(db).transition(experiment.id, 'pause');
    expect(await assignVariant(db, experiment.key, userId)).toMatchObject({
      enrolled: false,
      reason: 'NOT_RUNNING',
      variant: null,
    });
    await experimentService(db).transition(experiment.id, 'start');
    expect(await assignVariant(db, experiment.key, userId)).toMatchObject({
      enrolled: true,
      reason: 'EXISTING',
    });
  });

  it('an unknown key is NOT_FOUND', async () => {
    for (const key of [uniqueKey('missing'), 'Not A Slug']) {
      expect(await assignVariant(db, key, 'user-1')).toEqual({
        experiment: null,
        experimentKey: key,
        userId: 'user-1',
        variant: null,
        enrolled: false,
        reason: 'NOT_FOUND',
        assignedAt: null,
      });
    }
  });

  it('leaves users outside the traffic allocation unenrolled (OUTSIDE_TRAFFIC) and writes nothing for them', async () => {
    const { experiment, variants } = await createRunningWithVariants(db, {
      trafficAllocation: 0.2,
      hashSeed: 'traffic-test',
    });
    // Coverage 0.2 on 50/50: control [0, 0.1), treatment [0.5, 0.6).
    const ids = users(100, 'traffic');
    const inside = ids.filter((u) => {
      const n = hashV2('traffic-test', u);
      return n < 0.1 || (n >= 0.5 && n < 0.6);
    });
    const outside = ids.filter((u) => !inside.includes(u));
    expect(inside.length).toBeGreaterThan(5);
    for (const userId of outside) {
      expect(await assignVariant(db, experiment.key, userId)).toMatchObject({
        enrolled: false,
        variant: null,
        reason: 'OUTSIDE_TRAFFIC',
        assignedAt: null,
        experiment: { id: experiment.id },
      });
    }
    expect((await rowCounts(db, experiment.id)).assignments).toBe(0);
    for (const userId of inside) {
      const result = await assignVariant(db, experiment.key, userId);
      const expected = hashV2('traffic-test', userId) < 0.1 ? variants[0] : variants[1];
      expect(result).toMatchObject({ enrolled: true, reason: 'ASSIGNED', variant: { id: expected.id } });
    }
    expect((await rowCounts(db, experiment.id)).assignments).toBe(inside.length);
  });

  it('traffic allocation 0 enrolls nobody', async () => {
    const { experiment } = await createRunningWithVariants(db, { trafficAllocation: 0 });
    for (const userId of users(20)) {
      expect((await assignVariant(db, experiment.key, userId)).reason).toBe('OUTSIDE_TRAFFIC');
    }
    expect((await rowCounts(db, experiment.id)).assignments).toBe(0);
  });

  it('agrees with the seed: a seeded unit gets its seeded variant back without a write', async () => {
    const seed = (await loadConfigFromDb(db, 'homepage-recs-collaborative'))!;
    const stored = await storedAssignment(db, seed.experiment.id, 'device-0001');
    expect(stored).not.toBeNull();
    expect(pickVariant(seed, 'device-0001')!.id).toBe(stored!.variantId);
    const result = await assignVariant(db, seed.experiment.key, 'device-0001');
    expect(result).toMatchObject({ reason: 'EXISTING', variant: { id: stored!.variantId } });
  });

  it('rejects a bad userId with a ValidationError before touching the database', async () => {
    const { experiment } = await createRunningWithVariants(db);
    await expect(assignVariant(db, experiment.key, '')).rejects.toBeInstanceOf(ValidationError);
    expect((await rowCounts(db, experiment.id)).assignments).toBe(0);
  });
});

describe('concurrent first assignments', () => {
  it(`50 parallel calls for one new user leave exactly one row, and all see one variant (${testDriver()})`, async () => {
    const { experiment } = await createRunningWithVariants(db);
    const [userId] = users(1);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => assignVariant(db, experiment.key, userId)),
    );
    expect((await rowCounts(db, experiment.id)).assignments).toBe(1);
    const stored = await storedAssignment(db, experiment.id, userId);
    expect(new Set(results.map((r) => r.variant!.id))).toEqual(new Set([stored!.variantId]));
    expect(results.filter((r) => r.reason === 'ASSIGNED')).toHaveLength(1);
    expect(results.filter((r) => r.reason === 'EXISTING')).toHaveLength(49);
    expect(new Set(results.map((r) => r.assignedAt!.getTime()))).toEqual(
      new Set([stored!.assignedAt.getTime()]),
    );
  });

  it('50 parallel resolveAssignments calls naming different variants: the first insert wins for everyone', async () => {
    const { experiment, variants } = await createRunningWithVariants(db);
    const [userId] = users(1);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        assignUnit(db, {
          experimentId: experiment.id,
          userId,
          variantId: variants[i % 2].id,
        }),
      ),
    );
    const stored = await storedAssignment(db, experiment.id, userId);
    expect((await rowCounts(db, experiment.id)).assignments).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.assignment.id))).toEqual(new Set([stored!.id]));
    expect(new Set(results.map((r) => r.assignment.variantId))).toEqual(new Set([stored!.variantId]));
  });
});

describe('assignments repository', () => {
  let experiment: ExperimentRow;
  let variants: VariantRow[];
  let other: { experiment: ExperimentRow; variants: VariantRow[] };
  const prefix = uniqueKey('repo-user');

  beforeAll(async () => {
    ({ experiment, variants } = await createRunningWithVariants(db));
    other = await createRunningWithVariants(db);
  });

  it('resolveAssignments inserts once and then returns the stored row with created = false', async () => {
    const userId = `${prefix}-record`;
    const first = await assignUnit(db, {
      experimentId: experiment.id,
      userId,
      variantId: variants[0].id,
    });
    expect(first.created).toBe(true);
    expect(first.assignment).toMatchObject({
      experimentId: experiment.id,
      userId,
      variantId: variants[0].id,
    });
    const second = await assignUnit(db, {
      experimentId: experiment.id,
      userId,
      variantId: variants[1].id,
    });
    expect(second).toEqual({ assignment: first.assignment, created: false });
  });

  it('getAssignmentsByPairs of one pair returns its row, and nothing for another experiment or user', async () => {
    const userId = `${prefix}-get`;
    const { assignment } = await assignUnit(db, {
      experimentId: experiment.id,
      userId,
      variantId: variants[1].id,
    });
    const one = (experimentId: string, user: string) =>
      repo.getAssignmentsByPairs(db, [{ experimentId, userId: user }]);
    expect(await one(experiment.id, userId)).toEqual([assignment]);
    expect(await one(other.experiment.id, userId)).toEqual([]);
    expect(await one(experiment.id, `${prefix}-nobody`)).toEqual([]);
  });

  it('getAssignmentsByUserIds returns every experiment’s rows for those users, newest first', async () => {
    const a = `${prefix}-many-a`;
    const b = `${prefix}-many-b`;
    const rows = [
      (await assignUnit(db, { experimentId: experiment.id, userId: a, variantId: variants[0].id }))
        .assignment,
      (
        await assignUnit(db, {
          experimentId: other.experiment.id,
          userId: a,
          variantId: other.variants[1].id,
        })
      ).assignment,
      (await assignUnit(db, { experimentId: experiment.id, userId: b, variantId: variants[1].id }))
        .assignment,
    ];
    const found = await repo.getAssignmentsByUserIds(db, [a, b, `${prefix}-none`]);
    expect(found.map((r) => r.id).sort()).toEqual(rows.map((r) => r.id).sort());
    const times = found.map((r) => r.assignedAt.getTime());
    expect(times).toEqual([...times].sort((x, y) => y - x));
    expect(await repo.getAssignmentsByUserIds(db, [])).toEqual([]);
  });

  it('resolveAssignments inserts many at once, keeps pairs already assigned, and marks only its inserts as created', async () => {
    const kept = `${prefix}-batch-kept`;
    const original = (
      await assignUnit(db, {
        experimentId: experiment.id,
        userId: kept,
        variantId: variants[0].id,
      })
    ).assignment;
    const resolved = await repo.resolveAssignments(db, [
      { experimentId: experiment.id, userId: kept, variantId: variants[1].id },
      { experimentId: experiment.id, userId: `${prefix}-batch-new`, variantId: variants[1].id },
      { experimentId: other.experiment.id, userId: kept, variantId: other.variants[1].id },
    ]);
    const inserted = [...resolved.values()]
      .filter((r): r is ResolvedAssignment => r !== CAP_REACHED && r.created)
      .map((r) => r.assignment);
    expect(inserted.map((r) => [r.experimentId, r.userId, r.variantId]).sort()).toEqual(
      [
        [experiment.id, `${prefix}-batch-new`, variants[1].id],
        [other.experiment.id, kept, other.variants[1].id],
      ].sort(),
    );
    expect(resolved.get(repo.assignmentKey(experiment.id, kept))).toEqual({
      assignment: original,
      created: false,
    });
    expect(await storedAssignment(db, experiment.id, kept)).toEqual(original);
    expect(await repo.resolveAssignments(db, [])).toEqual(new Map());
  });

  it('getAssignmentsByPairs returns exactly the rows of the given (experiment, user) pairs', async () => {
    const a = `${prefix}-pair-a`;
    const b = `${prefix}-pair-b`;
    const aInFirst = (
      await assignUnit(db, { experimentId: experiment.id, userId: a, variantId: variants[0].id })
    ).assignment;
    await assignUnit(db, {
      experimentId: other.experiment.id,
      userId: a,
      variantId: other.variants[0].id,
    });
    const bInOther = (
      await assignUnit(db, {
        experimentId: other.experiment.id,
        userId: b,
        variantId: other.variants[1].id,
      })
    ).assignment;
    const found = await repo.getAssignmentsByPairs(db, [
      { experimentId: experiment.id, userId: a },
      { experimentId: other.experiment.id, userId: b },
      { experimentId: experiment.id, userId: b },
    ]);
    expect(found.map((r) => r.id).sort()).toEqual([aInFirst.id, bInOther.id].sort());
    expect(await repo.getAssignmentsByPairs(db, [])).toEqual([]);
  });
});
