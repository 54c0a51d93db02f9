/** Experiment.schedule, scheduleExperiment and clearExperimentSchedule. */
import { LIMITS } from '../config';
import { ExperimentRef } from '../experiments/graphql';
import { builder } from '../graphql/builder';
import type { GraphQLContext } from '../graphql/context';
import { CHANGE_ERRORS } from '../graphql/errors';
import { NotFoundError, ValidationError } from '../common/errors';
import type { InputFieldsOf } from '../graphql/input';
import type { ScheduleRow } from './repository';
import { createScheduleService, type ScheduleInput as Input } from './service';

function service(ctx: GraphQLContext) {
  return createScheduleService({
    db: ctx.db,
    actor: ctx.actor,
    onChange: ctx.onExperimentChange,
    afterCommit: ctx.afterExperimentChange,
  });
}

const ScheduleRef = builder.objectRef<ScheduleRow>('ExperimentSchedule').implement({
  authScopes: { read: true },
  description: `When the scheduler starts and completes an experiment, and the most units it enrols. The job runner checks schedules every JOBS_INTERVAL_MS (README, Automation); each transition runs once, through the same rules as a person's, audited with actor \`scheduler\`. A failed transition is recorded here and retried at most ${LIMITS.scheduleMaxRetries} times, with a growing delay.`,
  fields: (t) => ({
    startAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the experiment is started (or resumed, if paused then); null: no scheduled start.',
      resolve: (s) => s.startAt,
    }),
    stopAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the experiment is completed; null: no scheduled stop.',
      resolve: (s) => s.stopAt,
    }),
    stopAfterUnits: t.int({
      nullable: true,
      description:
        'The most units the experiment enrols; once reached, new units get reason CAP_REACHED and the scheduler completes it. Null: no cap.',
      resolve: (s) => s.stopAfterUnits,
    }),
    enrolledUnits: t.int({
      nullable: true,
      description: 'Units enrolled, counted against stopAfterUnits; null without a cap.',
      resolve: (s) => (s.stopAfterUnits === null ? null : s.enrolledUnits),
    }),
    startedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the scheduler started the experiment; null until it has.',
      resolve: (s) => s.startedAt,
    }),
    stoppedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the scheduler completed the experiment; null until it has.',
      resolve: (s) => s.stoppedAt,
    }),
    attempts: t.exposeInt('attempts', {
      description: 'Failed attempts of the pending transition (0 after a success).',
    }),
    lastAttemptAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the scheduler last tried a transition of this schedule.',
      resolve: (s) => s.lastAttemptAt,
    }),
    failureReason: t.string({
      nullable: true,
      description: 'Why the last attempt failed (the lifecycle error); null when it succeeded.',
      resolve: (s) => s.failureReason,
    }),
    failedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: `When the scheduler gave up after ${LIMITS.scheduleMaxRetries} retries; set a new schedule to try again.`,
      resolve: (s) => s.failedAt,
    }),
  }),
});

builder.objectField(ExperimentRef, 'schedule', (t) =>
  t.field({
    type: ScheduleRef,
    nullable: true,
    description: 'The experiment’s schedule; null when it has none.',
    resolve: (e, _args, ctx) => ctx.loaders.scheduleByExperimentId.load(e.id),
  }),
);

const ScheduleInput = builder.inputRef<Input, false>('ScheduleInput').implement({
  description:
    'Replaces the experiment’s schedule. Give at least one part; times must be in the future and stopAt after startAt. With both stopAt and stopAfterUnits, whichever comes first completes the experiment.',
  fields: (t) =>
    ({
      startAt: t.field({
        type: 'DateTime',
        required: false,
        description: 'Start (DRAFT) or resume (PAUSED) the experiment at this time.',
      }),
      stopAt: t.field({
        type: 'DateTime',
        required: false,
        description: 'Complete the experiment at this time.',
      }),
      stopAfterUnits: t.int({
        required: false,
        description: `Enrol at most this many units (1 to ${LIMITS.maxStopAfterUnits}, more than those already enrolled), then complete the experiment.`,
      }),
    }) satisfies InputFieldsOf<Input>,
});

builder.mutationFields((t) => ({
  scheduleExperiment: t.field({
    type: ExperimentRef,
    description:
      'Sets when the experiment starts and stops, or after how many units. Refused for COMPLETED and ARCHIVED experiments (READ_ONLY).',
    authScopes: { write: true },
    errors: { types: CHANGE_ERRORS },
    args: {
      id: t.arg.id({ required: true, description: 'The experiment’s UUID.' }),
      input: t.arg({ type: ScheduleInput, required: true, description: 'The new schedule.' }),
    },
    resolve: async (_r, { id, input }, ctx) => (await service(ctx).schedule(id, input)).experiment,
  }),
  clearExperimentSchedule: t.field({
    type: ExperimentRef,
    description: 'Removes the experiment’s schedule (and its unit cap); the scheduler then leaves it alone.',
    authScopes: { write: true },
    errors: { types: [ValidationError, NotFoundError] },
    args: { id: t.arg.id({ required: true, description: 'The experiment’s UUID.' }) },
    resolve: (_r, { id }, ctx) => service(ctx).clear(id),
  }),
}));
