/**
 * A scheduled start carried out by three spawned instances on one PostgreSQL database, with their job clocks
 * moved by JOBS_CLOCK_OFFSET_MS: before its time none of them starts the experiment; once their clocks are
 * past it, exactly one start happens, audited with actor `scheduler`, however many rounds all three run.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { and, eq } from 'drizzle-orm';
import { auditLog, experimentSchedules } from '../../src/db/schema';
import { getExperiment } from '../../src/experiments/repository';
import { getJobRecord } from '../../src/jobs/runner';
import { SCHEDULE_JOB } from '../../src/scheduling/service';
import { testDriver } from '../support/db';
import { createTestExperiment } from '../support/factories';
import { type SpawnedService, spawnService } from '../support/processes';
import {
  eventually,
  type IsolatedDatabase,
  makeKey,
  openIsolatedDatabase,
  postGraphQL,
} from '../support/server';

const HOUR = 3600_000;

// Spawned instances cannot reach an in-memory PGlite: several instances need PostgreSQL.
const onPostgres = testDriver() === 'postgres' ? describe : describe.skip;

onPostgres('a scheduled start with three instances and a moved clock', () => {
  let iso: IsolatedDatabase;
  let instances: SpawnedService[] = [];

  beforeAll(async () => {
    iso = await openIsolatedDatabase();
  });
  afterAll(async () => {
    await Promise.all(instances.map((i) => i.kill()));
    await iso?.close();
  });

  /** Three instances whose job runners see the clock `offsetMs` ahead, running a round every 100 ms. */
  async function startInstances(offsetMs: number) {
    const env = {
      DATABASE_URL: iso.url!,
      DB_POOL_SIZE: '3',
      LOG_LEVEL: 'warn',
      JOBS_INTERVAL_MS: '100',
      JOBS_CLOCK_OFFSET_MS: String(offsetMs),
    };
    instances = await Promise.all([spawnService(env), spawnService(env), spawnService(env)]);
  }
  /** Waits until the schedule job ran `rounds` more times (on any of the instances). */
  async function rounds(count: number) {
    const runsNow = async () => (await getJobRecord(iso.handle.db, SCHEDULE_JOB))?.runs ?? 0;
    const target = (await runsNow()) + count;
    expect(await eventually(async () => (await runsNow()) >= target, 60_000, 100)).toBe(true);
  }

  it('happens exactly once, audited with actor `scheduler`', async () => {
    const db = iso.handle.db;
    const { key } = await makeKey(db, ['write']);
    const experiment = await createTestExperiment(db);
    await startInstances(0);
    const startAt = new Date(Date.now() + HOUR);
    const scheduled = await postGraphQL(
      instances[1].url,
      `mutation S($id: ID!, $startAt: DateTime!) { scheduleExperiment(id: $id, input: { startAt: $startAt }) {
        __typename ... on Experiment { schedule { startAt } } } }`,
      { id: experiment.id, startAt: startAt.toISOString() },
      { key },
    );
    expect(scheduled.body.data.scheduleExperiment).toEqual({
      __typename: 'Experiment',
      schedule: { startAt: startAt.toISOString() },
    });

    // An hour early: rounds go by on the instances, and the experiment stays a draft.
    await rounds(9);
    expect((await getExperiment(db, { id: experiment.id }))!.status).toBe('draft');
    await Promise.all(instances.map((i) => i.kill()));

    // The same instances two hours later (JOBS_CLOCK_OFFSET_MS): all three see the start due.
    await startInstances(2 * HOUR);
    expect(
      await eventually(
        async () => (await getExperiment(db, { id: experiment.id }))!.status === 'running',
        60_000,
        100,
      ),
    ).toBe(true);
    await rounds(15);

    const started = await db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.entityId, experiment.id), eq(auditLog.action, 'experiment.started')));
    expect(started).toHaveLength(1);
    expect(started[0].actor).toBe('scheduler');
    const [schedule] = await db
      .select()
      .from(experimentSchedules)
      .where(eq(experimentSchedules.experimentId, experiment.id));
    // Done at the instances' clock, two hours ahead of the real one.
    expect(schedule.startedAt!.getTime()).toBeGreaterThanOrEqual(startAt.getTime());
    expect(schedule).toMatchObject({ attempts: 0, failureReason: null, failedAt: null });
  });
});
