import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it as serial } from '@jest/globals';
import { and, eq, sql } from 'drizzle-orm';
import {
  ConflictError,
  InvalidTransitionError,
  NotFoundError,
  RuleViolationError,
  ValidationError,
} from '../../src/common/errors';
import type { Database, DatabaseHandle } from '../../src/db/client';
import { auditLog } from '../../src/db/schema';
import type { ExperimentRule, ExperimentStatus, LifecycleAction } from '../../src/experiments/lifecycle';
import * as repo from '../../src/experiments/repository';
import { createExperimentService } from '../../src/experiments/service';
import { openTestDatabase } from '../support/db';
import { createTestExperiment, experimentService, uniqueKey } from '../support/factories';
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

const ACTOR = 'lifecycle-tester';
const service = () => experimentService(db, ACTOR);

/** The table of allowed transitions, written out independently of src/experiments/lifecycle.ts. */
const ALLOWED: Record<ExperimentStatus, Partial<Record<LifecycleAction, ExperimentStatus>>> = {
  draft: { start: 'running', archive: 'archived' },
  running: { pause: 'paused', complete: 'completed' },
  paused: { start: 'running', complete: 'completed' },
  completed: { archive: 'archived' },
  archived: {},
};
const TARGET: Record<LifecycleAction, ExperimentStatus> = {
  start: 'running',
  pause: 'paused',
  complete: 'completed',
  archive: 'archived',
};
const AUDIT_ACTION: Record<LifecycleAction, string> = {
  start: 'experiment.started',
  pause: 'experiment.paused',
  complete: 'experiment.completed',
  archive: 'experiment.archived',
};
const PATH_TO: Record<ExperimentStatus, LifecycleAction[]> = {
  draft: [],
  running: ['start'],
  paused: ['start', 'pause'],
  completed: ['start', 'complete'],
  archived: ['archive'],
};

async function experimentIn(status: ExperimentStatus) {
  const experiment = await createTestExperiment(db);
  let row = experiment;
  for (const action of PATH_TO[status]) row = await service().transition(experiment.id, action);
  expect(row.status).toBe(status);
  return row;
}

async function auditRows(experimentId: string) {
  return repo.listAuditByEntityIds(db, [experimentId], 100);
}

async function expectRefused(
  call: Promise<unknown>,
  from: string,
  to: string,
): Promise<InvalidTransitionError> {
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidTransitionError);
  expect(err).toMatchObject({ code: 'INVALID_TRANSITION', from, to });
  return err as InvalidTransitionError;
}

/** A change the status forbids by a rule (not a transition): RuleViolationError naming the rule. */
async function expectRuleViolation(call: Promise<unknown>, rule: ExperimentRule): Promise<void> {
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RuleViolationError);
  expect(err).toMatchObject({ code: 'RULE_VIOLATION', rule });
}

const cases = (Object.keys(ALLOWED) as ExperimentStatus[]).flatMap((from) =>
  (Object.keys(TARGET) as LifecycleAction[]).map((action) => ({
    from,
    action,
    to: ALLOWED[from][action] ?? null,
  })),
);

describe('transitions', () => {
  it.each(cases.filter((c) => c.to))(
    '$from → $action → $to, with its audit row',
    async ({ from, action, to }) => {
      const before = await experimentIn(from);
      const auditBefore = await auditRows(before.id);
      const after = await service().transition(before.id, action);
      expect(after.status).toBe(to);
      expect((await repo.getExperiment(db, { id: before.id }))!.status).toBe(to);

      const audit = await auditRows(before.id);
      expect(audit).toHaveLength(auditBefore.length + 1);
      const [row] = audit;
      expect(row).toMatchObject({ actor: ACTOR, action: AUDIT_ACTION[action], entityType: 'experiment' });
      expect(row.details).toMatchObject({
        from,
        to,
        before: { id: before.id, status: from },
        after: { id: before.id, status: to },
      });
    },
  );

  it.each(cases.filter((c) => !c.to))(
    '$from → $action is refused with from/to, and writes nothing',
    async ({ from, action }) => {
      const before = await experimentIn(from);
      const countsBefore = await rowCounts(db, before.id);
      const err = await expectRefused(service().transition(before.id, action), from, TARGET[action]);
      expect(err.message).toContain(from);
      expect(await repo.getExperiment(db, { id: before.id })).toEqual(before);
      expect(await rowCounts(db, before.id)).toEqual(countsBefore);
    },
  );

  it('sets startAt on the first start only, and endAt on completion', async () => {
    const draft = await createTestExperiment(db);
    expect(draft.startAt).toBeNull();
    const started = await service().transition(draft.id, 'start');
    expect(started.startAt).toBeInstanceOf(Date);
    expect(started.endAt).toBeNull();
    await service().transition(draft.id, 'pause');
    const resumed = await service().transition(draft.id, 'start');
    expect(resumed.startAt).toEqual(started.startAt);
    const completed = await service().transition(draft.id, 'complete');
    expect(completed.endAt).toBeInstanceOf(Date);
    expect(completed.endAt!.getTime()).toBeGreaterThanOrEqual(started.startAt!.getTime());
  });

  it('a resume is audited as started, from paused', async () => {
    const paused = await experimentIn('paused');
    await service().transition(paused.id, 'start');
    const [row] = await auditRows(paused.id);
    expect(row.action).toBe('experiment.started');
    expect(row.details).toMatchObject({ from: 'paused', to: 'running' });
  });

  it('two concurrent starts: one wins, the other is refused, one audit row', async () => {
    const draft = await createTestExperiment(db);
    const results = await Promise.allSettled([
      service().transition(draft.id, 'start'),
      service().transition(draft.id, 'start'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect((rejected[0] as PromiseRejectedResult).reason).toMatchObject({ from: 'running', to: 'running' });
    const started = (await auditRows(draft.id)).filter((r) => r.action === 'experiment.started');
    expect(started).toHaveLength(1);
  });

  it('an unknown experiment is NotFound, a malformed id a ValidationError on id', async () => {
    await expect(service().transition(randomUUID(), 'start')).rejects.toBeInstanceOf(NotFoundError);
    await expect(service().transition('not-a-uuid', 'start')).rejects.toMatchObject({
      fieldErrors: [{ path: ['id'], message: 'id must be a UUID' }],
    });
  });
});

describe('start requirements', () => {
  async function expectNotStartable(
    variants: { name: string; weight: number }[],
    message: RegExp,
  ): Promise<void> {
    const draft = await createTestExperiment(db, { variants });
    const countsBefore = await rowCounts(db, draft.id);
    const err = await service()
      .transition(draft.id, 'start')
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ValidationError);
    const { fieldErrors } = err as ValidationError;
    expect(fieldErrors.some((e) => e.path.join('.') === 'variants' && message.test(e.message))).toBe(true);
    expect((await repo.getExperiment(db, { id: draft.id }))!.status).toBe('draft');
    expect(await rowCounts(db, draft.id)).toEqual(countsBefore);
  }

  it('needs at least two variants', async () => {
    await expectNotStartable([], /at least two variants .*\(it has 0\)/);
    await expectNotStartable([{ name: 'only', weight: 1 }], /at least two variants .*\(it has 1\)/);
  });

  it('needs a positive total weight', async () => {
    await expectNotStartable(
      [
        { name: 'a', weight: 0 },
        { name: 'b', weight: 0 },
      ],
      /weights must sum to more than 0/,
    );
  });

  it('starts with two variants even if one has weight 0', async () => {
    const draft = await createTestExperiment(db, {
      variants: [
        { name: 'a', weight: 0 },
        { name: 'b', weight: 1 },
      ],
    });
    expect((await service().transition(draft.id, 'start')).status).toBe('running');
  });
});

describe('variants across the lifecycle', () => {
  it('removes a variant from a draft, with a variant.removed audit row', async () => {
    const draft = await createTestExperiment(db);
    const [, treatment] = await repo.getVariants(db, draft.id);
    const removed = await service().removeVariant(treatment.id);
    expect(removed.id).toBe(treatment.id);
    expect((await repo.getVariants(db, draft.id)).map((v) => v.name)).toEqual(['control']);
    const [row] = await auditRows(draft.id);
    expect(row).toMatchObject({ actor: ACTOR, action: 'variant.removed' });
    expect(row.details).toMatchObject({ before: { id: treatment.id, name: 'treatment' } });
  });

  it.each(['running', 'paused', 'completed', 'archived'] as const)(
    'refuses to remove a variant while %s, writing nothing',
    async (status) => {
      const experiment = await experimentIn(status);
      const variants = await repo.getVariants(db, experiment.id);
      const countsBefore = await rowCounts(db, experiment.id);
      await expectRuleViolation(service().removeVariant(variants[1].id), 'VARIANTS_FIXED');
      expect(await repo.getVariants(db, experiment.id)).toEqual(variants);
      expect(await rowCounts(db, experiment.id)).toEqual(countsBefore);
    },
  );

  it('adds a variant to a draft only', async () => {
    const draft = await createTestExperiment(db);
    const added = await service().addVariant(draft.id, { name: 'third', weight: 0.5 });
    expect(added).toMatchObject({ name: 'third', position: 2, weight: 0.5, isControl: false });
    const [row] = await auditRows(draft.id);
    expect(row).toMatchObject({
      action: 'variant.added',
      details: { after: { id: added.id, name: 'third' } },
    });

    const running = await experimentIn('running');
    const countsBefore = await rowCounts(db, running.id);
    await expectRuleViolation(service().addVariant(running.id, { name: 'late' }), 'VARIANTS_FIXED');
    expect(await rowCounts(db, running.id)).toEqual(countsBefore);
  });

  it('changes weights of a running experiment, but not names or the control', async () => {
    const running = await experimentIn('running');
    const [control, treatment] = await repo.getVariants(db, running.id);
    const after = await service().updateVariant(treatment.id, { weight: 3 });
    expect(after.weight).toBe(3);
    const [row] = await auditRows(running.id);
    expect(row).toMatchObject({
      action: 'variant.updated',
      details: { before: { id: treatment.id, weight: 0.5 }, after: { id: treatment.id, weight: 3 } },
    });

    const countsBefore = await rowCounts(db, running.id);
    await expectRuleViolation(
      service().updateVariant(treatment.id, { name: 'renamed' }),
      'VARIANT_IDENTITY_FIXED',
    );
    await expectRuleViolation(
      service().updateVariant(treatment.id, { isControl: true }),
      'VARIANT_IDENTITY_FIXED',
    );
    expect(await rowCounts(db, running.id)).toEqual(countsBefore);
    expect(await repo.getVariants(db, running.id)).toEqual([control, { ...treatment, weight: 3 }]);
  });

  it('refuses weights that leave a running experiment with no positive total', async () => {
    const running = await experimentIn('running');
    const [control, treatment] = await repo.getVariants(db, running.id);
    await service().updateVariant(control.id, { weight: 0 });
    const countsBefore = await rowCounts(db, running.id);
    await expect(service().updateVariant(treatment.id, { weight: 0 })).rejects.toMatchObject({
      fieldErrors: [
        { path: ['input', 'weight'], message: 'a running experiment needs a positive total weight' },
      ],
    });
    expect((await repo.getVariantsByIds(db, [treatment.id]))[0].weight).toBe(0.5);
    expect(await rowCounts(db, running.id)).toEqual(countsBefore);
  });

  it.each(['completed', 'archived'] as const)('refuses any variant change once %s', async (status) => {
    const experiment = await experimentIn(status);
    const [, treatment] = await repo.getVariants(db, experiment.id);
    const countsBefore = await rowCounts(db, experiment.id);
    await expectRuleViolation(service().updateVariant(treatment.id, { weight: 2 }), 'READ_ONLY');
    expect(await rowCounts(db, experiment.id)).toEqual(countsBefore);
  });
});

describe('delete', () => {
  it.each(['draft', 'archived'] as const)(
    'deletes a %s experiment and keeps its experiment.deleted audit row',
    async (status) => {
      const experiment = await experimentIn(status);
      expect(await service().delete(experiment.id)).toBe(experiment.id);
      expect(await rowCounts(db, experiment.id)).toMatchObject({ experiments: 0, variants: 0 });
      const [row] = await auditRows(experiment.id);
      expect(row).toMatchObject({
        actor: ACTOR,
        action: 'experiment.deleted',
        details: { before: { id: experiment.id, key: experiment.key, status } },
      });
    },
  );

  it.each(['running', 'paused', 'completed'] as const)(
    'refuses to delete a %s experiment, writing nothing',
    async (status) => {
      const experiment = await experimentIn(status);
      const countsBefore = await rowCounts(db, experiment.id);
      const err = await expectRefused(service().delete(experiment.id), status, 'deleted');
      expect(err.message).toMatch(/Only draft or archived/);
      expect(await rowCounts(db, experiment.id)).toEqual(countsBefore);
    },
  );
});

describe('create and update', () => {
  it('create writes experiment.created with the experiment and its variants', async () => {
    const key = uniqueKey('life');
    const experiment = await service().create({
      key,
      name: 'Audited',
      variants: [{ name: 'a', isControl: true }, { name: 'b' }],
    });
    const audit = await auditRows(experiment.id);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor: ACTOR,
      action: 'experiment.created',
      entityType: 'experiment',
      details: { after: { key, status: 'draft', variants: [{ name: 'a' }, { name: 'b' }] } },
    });
  });

  it('update writes experiment.updated with before and after', async () => {
    const experiment = await createTestExperiment(db);
    const after = await service().update(experiment.id, { name: 'Renamed', trafficAllocation: 0.5 });
    expect(after).toMatchObject({ name: 'Renamed', trafficAllocation: 0.5, description: null });
    const [row] = await auditRows(experiment.id);
    expect(row).toMatchObject({
      action: 'experiment.updated',
      details: {
        before: { name: 'Test experiment', trafficAllocation: 1 },
        after: { name: 'Renamed', trafficAllocation: 0.5 },
      },
    });
  });

  it('refuses to update an archived experiment, writing nothing', async () => {
    const archived = await experimentIn('archived');
    const countsBefore = await rowCounts(db, archived.id);
    await expectRuleViolation(service().update(archived.id, { name: 'Too late' }), 'READ_ONLY');
    expect(await repo.getExperiment(db, { id: archived.id })).toEqual(archived);
    expect(await rowCounts(db, archived.id)).toEqual(countsBefore);
  });

  it('a duplicate key is a Conflict on key, and nothing is written', async () => {
    const existing = await createTestExperiment(db);
    await expect(service().create({ key: existing.key, name: 'Again' })).rejects.toMatchObject({
      constructor: ConflictError,
      field: 'key',
    });
    const created = await db
      .select()
      .from(auditLog)
      .where(
        and(
          eq(auditLog.action, 'experiment.created'),
          sql`${auditLog.details}->'after'->>'key' = ${existing.key}`,
        ),
      );
    expect(created).toHaveLength(1);
  });

  it('a duplicate variant name or a second control is a Conflict naming the field, and nothing is written', async () => {
    const draft = await createTestExperiment(db);
    const countsBefore = await rowCounts(db, draft.id);
    await expect(service().addVariant(draft.id, { name: 'treatment' })).rejects.toMatchObject({
      constructor: ConflictError,
      field: 'name',
    });
    await expect(
      service().addVariant(draft.id, { name: 'control-2', isControl: true }),
    ).rejects.toMatchObject({
      constructor: ConflictError,
      field: 'isControl',
    });
    const [, treatment] = await repo.getVariants(db, draft.id);
    await expect(service().updateVariant(treatment.id, { name: 'control' })).rejects.toMatchObject({
      constructor: ConflictError,
      field: 'name',
    });
    expect(await rowCounts(db, draft.id)).toEqual(countsBefore);
  });
});

describe('the audit row and the change share one transaction', () => {
  it('a failure after the audit row is written rolls back both the change and the row', async () => {
    const draft = await createTestExperiment(db);
    const countsBefore = await rowCounts(db, draft.id);
    const seenInside: { status: string | null; audit: number }[] = [];
    const failing = createExperimentService({
      db,
      actor: { name: ACTOR },
      async onChange(experimentId, tx) {
        // Inside the transaction both writes are already visible...
        const row = await repo.getExperiment(tx, { id: experimentId });
        seenInside.push({ status: row?.status ?? null, audit: (await rowCounts(tx, experimentId)).audit });
        throw new Error('listener failed');
      },
    });
    await expect(failing.transition(draft.id, 'start')).rejects.toThrow('listener failed');
    expect(seenInside).toEqual([{ status: 'running', audit: countsBefore.audit + 1 }]);
    // ...and after the rollback neither is.
    expect((await repo.getExperiment(db, { id: draft.id }))!.status).toBe('draft');
    expect(await rowCounts(db, draft.id)).toEqual(countsBefore);

    await expect(failing.update(draft.id, { name: 'Never' })).rejects.toThrow('listener failed');
    await expect(failing.delete(draft.id)).rejects.toThrow('listener failed');
    expect(seenInside.slice(1)).toEqual([
      { status: 'draft', audit: countsBefore.audit + 1 },
      { status: null, audit: countsBefore.audit + 1 },
    ]);
    expect(await repo.getExperiment(db, { id: draft.id })).toEqual(draft);
    expect(await rowCounts(db, draft.id)).toEqual(countsBefore);
  });
});
