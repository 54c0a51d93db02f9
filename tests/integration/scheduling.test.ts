/**
 * Schedules and the job runner: validation writes nothing; three runner instances on one database carry
 * out each due transition exactly once, audited as `scheduler`; failures are recorded and retried a
 * bounded number of times; a unit cap holds under 50 concurrent connections.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { and, eq, sql } from 'drizzle-orm';
import { AssignmentBatcher } from '../../src/assignments/batcher';
import { assignVariant } from '../../src/assignments/service';
import { RuleViolationError, ValidationError } from '../../src/common/errors';
import { recordEvents } from '../../src/events/service';
import { LIMITS } from '../../src/config';
import { queryRows, type Database, type DatabaseHandle } from '../../src/db/client';
import { auditLog, experimentSchedules } from '../../src/db/schema';
import * as experimentsRepo from '../../src/experiments/repository';
import { getJobRecord, type Job, JobRunner } from '../../src/jobs/runner';
import { createScheduleService, SCHEDULE_JOB, scheduleJob } from '../../src/scheduling/service';
import { createTestApp, gql, gqlOk } from '../support/app';
import { openTestDatabase, testDriver } from '../support/db';
import { createRunningWithVariants, createTestExperiment, uniqueKey } from '../support/factories';
import { rowCounts } from '../support/rows';

let handle: DatabaseHandle;
let db: Database;
/** Three instances' databases: three pools on PostgreSQL; the one in-process database on PGlite. */
let instances: DatabaseHandle[];

beforeAll(async () => {
  handle = await openTestDatabase();
  db = handle.db;
  instances =
    testDriver() === 'postgres'
      ? [handle, await openTestDatabase({ poolSize: 2 }), await openTestDatabase({ poolSize: 2 })]
      : [handle, handle, handle];
});
afterAll(async () => {
  for (const h of new Set(instances)) await h.close();
});

const MINUTE = 60_000;
/**
 * Scheduler tests schedule this far ahead and move their runners' clocks there, so runners of other test
 * files (whose clocks stay near now) never act on their schedules.
 */
const AHEAD = 100 * 24 * 60 * MINUTE;

/**
 * Ticks until `done` holds: a runner of another test file may hold the job's lock for a moment (then these
 * skip), or do the work itself (a cap reached is due at any time).
 */
async function tickUntil(rs: JobRunner[], done: () => Promise<boolean>) {
  for (let i = 0; i < 100 && !(await done()); i++) await Promise.all(rs.map((r) => r.tick()));
}
/** One run of the schedule job by this runner (retried while another test file's runner holds the lock). */
async function ownTick(runner: JobRunner) {
  while ((await runner.tick())[SCHEDULE_JOB] === 'skipped') await new Promise((r) => setTimeout(r, 20));
}
const statusOf = async (id: string) => (await experimentsRepo.getExperiment(db, { id }))!.status;
const schedules = (now: () => Date = () => new Date()) =>
  createScheduleService({ db, actor: { name: 'planner' }, now });

/** Three runners, one per instance, all on the same (injected) clock. */
function runners(clock: { now: Date }, extra: Job[] = []) {
  return instances.map(
    (h, i) =>
      new JobRunner({
        db: h.db,
        intervalMs: 0,
        now: () => clock.now,
        instance: `test-${i}`,
        jobs: [scheduleJob({}), ...extra],
      }),
  );
}

async function auditOf(experimentId: string, action: string) {
  return db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.entityId, experimentId), eq(auditLog.action, action)));
}

async function scheduleOf(experimentId: string) {
  const [row] = await db
    .select()
    .from(experimentSchedules)
    .where(eq(experimentSchedules.experimentId, experimentId));
  return row ?? null;
}

describe('scheduleExperiment validation', () => {
  it('refuses past times, stopAt not after startAt, an empty schedule and bad caps, naming the field and writing nothing', async () => {
    const experiment = await createTestExperiment(db);
    const before = await rowCounts(db, experiment.id);
    const now = Date.now();
    const cases: [Parameters<ReturnType<typeof schedules>['schedule']>[1], string][] = [
      [{ startAt: new Date(now - MINUTE) }, 'input.startAt'],
      [{ stopAt: new Date(now - 1) }, 'input.stopAt'],
      [{ startAt: new Date(now + 2 * MINUTE), stopAt: new Date(now + MINUTE) }, 'input.stopAt'],
      [{ startAt: new Date(now + MINUTE), stopAt: new Date(now + MINUTE) }, 'input.stopAt'],
      [{}, 'input.startAt'],
      [{ stopAfterUnits: 0 }, 'input.stopAfterUnits'],
      [{ stopAfterUnits: 1.5 }, 'input.stopAfterUnits'],
      [{ stopAfterUnits: LIMITS.maxStopAfterUnits + 1 }, 'input.stopAfterUnits'],
    ];
    for (const [input, path] of cases) {
      const error = await schedules()
        .schedule(experiment.id, input)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).fieldErrors.map((f) => f.path.join('.'))).toContain(path);
    }
    expect(await rowCounts(db, experiment.id)).toEqual(before);
    expect(await scheduleOf(experiment.id)).toBeNull();
  });

  it('refuses a start for a running experiment, a cap not above the units already enrolled, and completed experiments', async () => {
    const { experiment, variants } = await createRunningWithVariants(db);
    for (const u of ['a', 'b', 'c']) {
      await assignVariant(db, experiment.key, `${experiment.key}-${u}`);
    }
    const start = await schedules()
      .schedule(experiment.id, { startAt: new Date(Date.now() + MINUTE) })
      .catch((e: unknown) => e);
    expect((start as ValidationError).fieldErrors[0].path).toEqual(['input', 'startAt']);
    const cap = await schedules()
      .schedule(experiment.id, { stopAfterUnits: 3 })
      .catch((e: unknown) => e);
    expect((cap as ValidationError).fieldErrors[0]).toMatchObject({
      path: ['input', 'stopAfterUnits'],
      message: expect.stringContaining('3 units already enrolled'),
    });
    expect(await scheduleOf(experiment.id)).toBeNull();
    // A cap above the count starts from it.
    const { schedule } = await schedules().schedule(experiment.id, { stopAfterUnits: 4 });
    expect(schedule).toMatchObject({ stopAfterUnits: 4, enrolledUnits: 3 });
    expect(variants).toHaveLength(2);

    await experimentsRepo.updateExperiment(db, experiment.id, { status: 'completed' });
    const done = await schedules()
      .schedule(experiment.id, { stopAt: new Date(Date.now() + MINUTE) })
      .catch((e: unknown) => e);
    expect(done).toBeInstanceOf(RuleViolationError);
  });
});

describe('the scheduler', () => {
  it('starts and completes an experiment exactly once across three instances, audited as scheduler', async () => {
    const experiment = await createTestExperiment(db);
    const t0 = Date.now() + AHEAD;
    await schedules().schedule(experiment.id, {
      startAt: new Date(t0 + MINUTE),
      stopAt: new Date(t0 + 10 * MINUTE),
    });
    const clock = { now: new Date(t0 + 30_000) };
    const three = runners(clock);

    // Not yet due.
    await Promise.all(three.map((r) => r.tick()));
    expect((await experimentsRepo.getExperiment(db, { id: experiment.id }))!.status).toBe('draft');

    // Due: all three run at once, one transition happens.
    clock.now = new Date(t0 + MINUTE + 1000);
    const outcomes = await Promise.all(three.map((r) => r.tick()));
    expect(outcomes.map((o) => o[SCHEDULE_JOB]).filter((o) => o === 'failed')).toEqual([]);
    await tickUntil(three, async () => (await statusOf(experiment.id)) === 'running');
    expect(await statusOf(experiment.id)).toBe('running');
    const started = await auditOf(experiment.id, 'experiment.started');
    expect(started).toHaveLength(1);
    expect(started[0].actor).toBe('scheduler');
    expect((await scheduleOf(experiment.id))!.startedAt).toEqual(clock.now);

    clock.now = new Date(t0 + 10 * MINUTE + 1000);
    await Promise.all(three.map((r) => r.tick()));
    await tickUntil(three, async () => (await statusOf(experiment.id)) === 'completed');
    const completed = await auditOf(experiment.id, 'experiment.completed');
    expect(completed.map((a) => a.actor)).toEqual(['scheduler']);
    expect((await experimentsRepo.getExperiment(db, { id: experiment.id }))!.status).toBe('completed');
    expect(await getJobRecord(db, SCHEDULE_JOB)).toMatchObject({ lastError: null });
  });

  it('records a failed transition, retries it with backoff at most the configured number of times, then gives up', async () => {
    // One variant: the lifecycle refuses to start it, for the scheduler as for a person.
    const experiment = await createTestExperiment(db, { variants: [{ name: 'only' }] });
    const t0 = Date.now() + AHEAD;
    await schedules().schedule(experiment.id, { startAt: new Date(t0 + MINUTE) });
    const clock = { now: new Date(t0 + MINUTE) };
    const [runner] = runners(clock);
    await ownTick(runner);
    let schedule = (await scheduleOf(experiment.id))!;
    expect(schedule).toMatchObject({ attempts: 1, failedAt: null });
    expect(schedule.failureReason).toMatch(/two variants/);
    // Before the backoff has passed nothing is tried.
    await ownTick(runner);
    expect((await scheduleOf(experiment.id))!.attempts).toBe(1);

    for (let retry = 1; retry <= LIMITS.scheduleMaxRetries; retry++) {
      clock.now = new Date(clock.now.getTime() + LIMITS.scheduleRetryBaseMs * 2 ** (retry - 1));
      await ownTick(runner);
      expect((await scheduleOf(experiment.id))!.attempts).toBe(retry + 1);
    }
    schedule = (await scheduleOf(experiment.id))!;
    expect(schedule.failedAt).toEqual(clock.now);
    clock.now = new Date(clock.now.getTime() + 365 * 24 * 60 * MINUTE);
    await ownTick(runner);
    expect((await scheduleOf(experiment.id))!.attempts).toBe(LIMITS.scheduleMaxRetries + 1);
    const failures = await auditOf(experiment.id, 'experiment.schedule_failed');
    expect(failures).toHaveLength(LIMITS.scheduleMaxRetries + 1);
    expect(failures.every((f) => f.actor === 'scheduler')).toBe(true);
    expect((await experimentsRepo.getExperiment(db, { id: experiment.id }))!.status).toBe('draft');
  });
});

describe('the job runner', () => {
  it('a run that fails leaves none of its effects and records the failure; the next run does the work', async () => {
    const marker = uniqueKey('job');
    let fail = true;
    const job: Job = {
      name: `test-${marker}`,
      async run(tx) {
        await tx.execute(sql`INSERT INTO jobs (name) VALUES (${`${marker}-effect`})`);
        if (fail) throw new Error('crashed mid-run');
      },
    };
    const runner = new JobRunner({ db, intervalMs: 0, jobs: [job] });
    expect(await runner.tick()).toEqual({ [job.name]: 'failed' });
    expect(await getJobRecord(db, `${marker}-effect`)).toBeNull();
    expect(await getJobRecord(db, job.name)).toMatchObject({ runs: 1, lastError: 'crashed mid-run' });
    fail = false;
    expect(await runner.tick()).toEqual({ [job.name]: 'ran' });
    expect(await getJobRecord(db, `${marker}-effect`)).not.toBeNull();
    expect(await getJobRecord(db, job.name)).toMatchObject({ runs: 2, lastError: null });
  });

  it('runs a job on one instance at a time', async () => {
    if (testDriver() !== 'postgres') return; // PGlite: one connection, transactions run one after another
    let active = 0;
    let most = 0;
    let runs = 0;
    const job: Job = {
      name: `test-${uniqueKey('overlap')}`,
      async run() {
        active++;
        runs++;
        most = Math.max(most, active);
        await new Promise((r) => setTimeout(r, 200));
        active--;
      },
    };
    const three = instances.map((h) => new JobRunner({ db: h.db, intervalMs: 0, jobs: [job] }));
    const outcomes = await Promise.all(three.map((r) => r.tick()));
    expect(most).toBe(1);
    expect(runs).toBe(1);
    expect(outcomes.map((o) => o[job.name]).sort()).toEqual(['ran', 'skipped', 'skipped']);
  });

  it('runs on its interval once started and stops cleanly', async () => {
    let runs = 0;
    const job: Job = { name: `test-${uniqueKey('timer')}`, run: async () => void runs++ };
    const runner = new JobRunner({ db, intervalMs: 20, jobs: [job] });
    runner.start();
    while (runs < 3) await new Promise((r) => setTimeout(r, 10));
    await runner.stop();
    const after = runs;
    await new Promise((r) => setTimeout(r, 100));
    expect(runs).toBe(after);
  });
});

describe('stopAfterUnits', () => {
  it('never enrols more than the cap under 50 concurrent connections, answers CAP_REACHED, and the scheduler completes it', async () => {
    const CAP = 37;
    const wide = testDriver() === 'postgres' ? await openTestDatabase({ poolSize: 50 }) : handle;
    try {
      const { experiment } = await createRunningWithVariants(db);
      await schedules().schedule(experiment.id, { stopAfterUnits: CAP });
      // Every call its own statement on its own connection (no batcher)…
      const single = await Promise.all(
        Array.from({ length: 150 }, (_, i) =>
          assignVariant(wide.db, experiment.key, `${experiment.key}-s${i}`),
        ),
      );
      // …and batched statements from three instances at once.
      const batchers = instances.map((h) => new AssignmentBatcher(h.db));
      const batched = await Promise.all(
        Array.from({ length: 150 }, (_, i) =>
          assignVariant(instances[i % 3].db, experiment.key, `${experiment.key}-b${i}`, {
            batcher: batchers[i % 3],
          }),
        ),
      );
      const results = [...single, ...batched];
      const enrolled = results.filter((r) => r.enrolled);
      expect(enrolled).toHaveLength(CAP);
      expect(results.filter((r) => r.reason === 'CAP_REACHED')).toHaveLength(300 - CAP);
      expect((await rowCounts(db, experiment.id)).assignments).toBe(CAP);
      expect((await scheduleOf(experiment.id))!.enrolledUnits).toBe(CAP);
      // A returning unit keeps its variant.
      const again = await assignVariant(db, experiment.key, enrolled[0].userId);
      expect(again).toMatchObject({ reason: 'EXISTING', variant: { id: enrolled[0].variant!.id } });

      const [runner] = runners({ now: new Date() });
      await tickUntil([runner], async () => (await statusOf(experiment.id)) === 'completed');
      expect((await experimentsRepo.getExperiment(db, { id: experiment.id }))!.status).toBe('completed');
      expect((await auditOf(experiment.id, 'experiment.completed')).map((a) => a.actor)).toEqual([
        'scheduler',
      ]);
      expect((await assignVariant(db, experiment.key, `${experiment.key}-late`)).reason).toBe('NOT_RUNNING');
    } finally {
      if (wide !== handle) await wide.close();
    }
  });

  it('rejects events that would enrol a unit past the cap (NOT_ASSIGNED) and counts those that enrol', async () => {
    const { experiment, variants } = await createRunningWithVariants(db);
    await schedules().schedule(experiment.id, { stopAfterUnits: 2 });
    const exposure = (userId: string) => ({
      kind: 'EXPOSURE',
      experimentKey: experiment.key,
      userId,
      variantId: variants[1].id,
      eventId: randomUUID(),
    });
    const result = await recordEvents(db, [exposure('u1'), exposure('u2'), exposure('u3')]);
    const statuses = result.outcomes.sort((a, b) => a.index - b.index).map((o) => o.status);
    expect(statuses).toEqual(['accepted', 'accepted', 'rejected']);
    const rejected = result.outcomes.find((o) => o.status === 'rejected');
    expect(rejected && 'error' in rejected && rejected.error.code).toBe('NOT_ASSIGNED');
    expect((await scheduleOf(experiment.id))!.enrolledUnits).toBe(2);
    expect((await rowCounts(db, experiment.id)).assignments).toBe(2);
  });

  it('costs nothing in an uncapped experiment: no schedule row is locked or written', async () => {
    const { experiment } = await createRunningWithVariants(db);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => assignVariant(db, experiment.key, `${experiment.key}-${i}`)),
    );
    expect(results.every((r) => r.reason === 'ASSIGNED')).toBe(true);
    expect(await scheduleOf(experiment.id)).toBeNull();
  });
});

describe('GraphQL', () => {
  it('schedules, shows and clears a schedule; a bad one is a ValidationError naming the field', async () => {
    const app = createTestApp(handle);
    const experiment = await createTestExperiment(db);
    const startAt = new Date(Date.now() + 5 * MINUTE).toISOString();
    const mutation = `mutation S($id: ID!, $input: ScheduleInput!) {
      scheduleExperiment(id: $id, input: $input) {
        __typename
        ... on Experiment { id schedule { startAt stopAt stopAfterUnits enrolledUnits attempts failureReason } }
        ... on ValidationError { fieldErrors { path message } }
      }
    }`;
    const bad = await gqlOk(app, mutation, {
      id: experiment.id,
      input: { startAt, stopAt: new Date(Date.now() + MINUTE).toISOString() },
    });
    expect(bad.scheduleExperiment.__typename).toBe('ValidationError');
    expect(bad.scheduleExperiment.fieldErrors[0].path).toEqual(['input', 'stopAt']);

    const ok = await gqlOk(app, mutation, { id: experiment.id, input: { startAt, stopAfterUnits: 1000 } });
    expect(ok.scheduleExperiment.schedule).toEqual({
      startAt,
      stopAt: null,
      stopAfterUnits: 1000,
      enrolledUnits: 0,
      attempts: 0,
      failureReason: null,
    });
    const audit = await auditOf(experiment.id, 'experiment.scheduled');
    expect(audit).toHaveLength(1);

    const cleared = await gql(
      app,
      `mutation C($id: ID!) { clearExperimentSchedule(id: $id) { __typename ... on Experiment { schedule { startAt } } } }`,
      { id: experiment.id },
    );
    expect(cleared.data.clearExperimentSchedule).toEqual({ __typename: 'Experiment', schedule: null });
    const rows = await queryRows<{ n: number }>(
      db,
      sql`SELECT count(*)::int AS n FROM experiment_schedules WHERE experiment_id = ${experiment.id}`,
    );
    expect(rows[0].n).toBe(0);
  });
});
