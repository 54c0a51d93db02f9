/**
 * Experiment schedules: validation and audit of `scheduleExperiment` / `clearExperimentSchedule`, and the
 * job that carries schedules out through the experiment lifecycle service, as the actor `scheduler`.
 */
import { z } from 'zod';
import { NotFoundError, RuleViolationError, ValidationError } from '../common/errors';
import { parse, uuid } from '../common/validation';
import { LIMITS } from '../config';
import type { Db } from '../db/client';
import type { Job } from '../jobs/runner';
import * as experimentsRepo from '../experiments/repository';
import { type ChangeListener, createExperimentService } from '../experiments/service';
import { emitEvent } from '../webhooks/service';
import * as repo from './repository';

/** The audit log's actor for everything the scheduler does. */
export const SCHEDULER_ACTOR = 'scheduler';

export const SCHEDULE_JOB = 'experiment-schedules';

const when = (what: string) => z.date({ error: `${what} must be a date-time` });

/**
 * A schedule replaces the experiment's previous one. Null or absent means "none" for each part; at least
 * one part must be given (clearExperimentSchedule removes a schedule).
 */
export const scheduleInput = z.object({
  startAt: when('startAt')
    .nullish()
    .transform((v) => v ?? null),
  stopAt: when('stopAt')
    .nullish()
    .transform((v) => v ?? null),
  stopAfterUnits: z
    .number({ error: 'stopAfterUnits must be an integer' })
    .int('stopAfterUnits must be an integer')
    .min(1, 'stopAfterUnits must be at least 1')
    .max(LIMITS.maxStopAfterUnits, `stopAfterUnits must be at most ${LIMITS.maxStopAfterUnits}`)
    .nullish()
    .transform((v) => v ?? null),
});
export type ScheduleInput = z.input<typeof scheduleInput>;

export interface ScheduleServiceDeps {
  db: Db;
  actor: { name: string };
  onChange?: ChangeListener;
  afterCommit?: () => void;
  /** The clock "in the past" is judged by (tests inject one). */
  now?: () => Date;
}

export function createScheduleService({
  db,
  actor,
  onChange,
  afterCommit,
  now = () => new Date(),
}: ScheduleServiceDeps) {
  return {
    async schedule(experimentId: string, rawInput: ScheduleInput) {
      parse(uuid('id'), experimentId, ['id']);
      const input = parse(scheduleInput, rawInput, ['input']);
      const at = now();
      const problems: { path: string[]; message: string }[] = [];
      const field = (name: string, message: string) => problems.push({ path: ['input', name], message });
      if (input.startAt === null && input.stopAt === null && input.stopAfterUnits === null) {
        field(
          'startAt',
          'give startAt, stopAt or stopAfterUnits (clearExperimentSchedule removes a schedule)',
        );
      }
      if (input.startAt && input.startAt <= at) field('startAt', 'startAt must be in the future');
      if (input.stopAt && input.stopAt <= at) field('stopAt', 'stopAt must be in the future');
      if (input.startAt && input.stopAt && input.stopAt <= input.startAt) {
        field('stopAt', 'stopAt must be after startAt');
      }
      if (problems.length) throw new ValidationError(problems);

      const result = await db.transaction(async (tx) => {
        // A cap starts from an exact count: block new assignments while counting (taken before the
        // experiment's row lock: the scheduler holds schedule rows that assignment statements wait for, and
        // then takes experiment row locks).
        const capCounts = input.stopAfterUnits !== null;
        if (capCounts) await repo.lockAssignments(tx);
        const locked = await experimentsRepo.lockExperiment(tx, experimentId);
        if (!locked) throw new NotFoundError('Experiment', experimentId);
        if (locked.status === 'completed' || locked.status === 'archived') {
          throw new RuleViolationError('READ_ONLY', `A ${locked.status} experiment cannot be scheduled`);
        }
        if (input.startAt && locked.status === 'running') {
          throw ValidationError.field(['input', 'startAt'], 'the experiment is already running');
        }
        const enrolledUnits = capCounts ? await repo.countAssignments(tx, experimentId) : 0;
        if (input.stopAfterUnits !== null && input.stopAfterUnits <= enrolledUnits) {
          throw ValidationError.field(
            ['input', 'stopAfterUnits'],
            `stopAfterUnits must be more than the ${enrolledUnits} units already enrolled`,
          );
        }
        const [before] = await repo.getSchedulesByExperimentIds(tx, [experimentId]);
        const after = await repo.upsertSchedule(tx, experimentId, { ...input, enrolledUnits });
        await experimentsRepo.insertAudit(tx, {
          actor: actor.name,
          action: 'experiment.scheduled',
          entityType: 'experiment',
          entityId: experimentId,
          details: { before: before ?? null, after },
        });
        // Assignment caches carry whether the experiment has a cap.
        await onChange?.(experimentId, tx);
        return { experiment: locked, schedule: after };
      });
      afterCommit?.();
      return result;
    },

    async clear(experimentId: string) {
      parse(uuid('id'), experimentId, ['id']);
      const result = await db.transaction(async (tx) => {
        const locked = await experimentsRepo.lockExperiment(tx, experimentId);
        if (!locked) throw new NotFoundError('Experiment', experimentId);
        const before = await repo.deleteSchedule(tx, experimentId);
        if (before) {
          await experimentsRepo.insertAudit(tx, {
            actor: actor.name,
            action: 'experiment.schedule_cleared',
            entityType: 'experiment',
            entityId: experimentId,
            details: { before },
          });
          await onChange?.(experimentId, tx);
        }
        return locked;
      });
      afterCommit?.();
      return result;
    },
  };
}

/** Told of a scheduled transition that failed, in the transaction that records it (alerts hook in here). */
export type ScheduleFailureListener = (
  tx: Db,
  failure: {
    experimentId: string;
    action: repo.ScheduledAction;
    reason: string;
    attempts: number;
    final: boolean;
  },
) => Promise<void>;

/**
 * The job that carries out due schedules. Each transition runs through the lifecycle service (same rules,
 * audit as `scheduler`) in a savepoint of the run's transaction, and its "done" mark commits with it: a
 * crash loses nothing and repeats nothing, and locked rows keep two runs from acting on one schedule.
 */
export function scheduleJob(deps: { onChange?: ChangeListener; afterCommit?: () => void }): Job {
  return {
    name: SCHEDULE_JOB,
    async run(tx, now) {
      const due = await repo.lockDueSchedules(tx, now, LIMITS.scheduleRetryBaseMs);
      const lifecycle = createExperimentService({
        db: tx,
        actor: { name: SCHEDULER_ACTOR },
        onChange: deps.onChange,
        afterCommit: deps.afterCommit,
      });
      for (const item of due) {
        try {
          await lifecycle.transition(item.experimentId, item.action);
          await repo.markDone(tx, item.experimentId, item.action, now);
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          const attempts = item.attempts + 1;
          const final = attempts > LIMITS.scheduleMaxRetries;
          await repo.markFailed(tx, item.experimentId, { at: now, reason, attempts, final });
          await experimentsRepo.insertAudit(tx, {
            actor: SCHEDULER_ACTOR,
            action: 'experiment.schedule_failed',
            entityType: 'experiment',
            entityId: item.experimentId,
            details: { action: item.action, reason, attempts, final },
          });
          await emitEvent(tx, 'SCHEDULE_FAILED', item.experimentId, {
            action: item.action,
            reason,
            attempts,
            final,
          });
        }
      }
    },
  };
}
