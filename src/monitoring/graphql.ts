/** Experiment.monitoring and configureGuardrails. */
import { LIMITS } from '../config';
import { ExperimentRef } from '../experiments/graphql';
import { builder } from '../graphql/builder';
import type { GraphQLContext } from '../graphql/context';
import { enumValues } from '../graphql/enums';
import { CHANGE_ERRORS } from '../graphql/errors';
import type { InputFieldsOf } from '../graphql/input';
import { DEFAULT_GUARDRAIL_ACTION, GUARDRAIL_ACTIONS, type GuardrailAction } from './decisions';
import type { MonitorRow } from './repository';
import { createMonitorService, type GuardrailSettingsInput as Input } from './service';

const GuardrailActionEnum = builder.enumType('GuardrailAction', {
  description: 'What a guardrail breach does to a running experiment (actor `guardrail` in the audit log).',
  values: enumValues(GUARDRAIL_ACTIONS, {
    PAUSE: 'Pause the experiment (the default): no new units enrol; a person resumes it.',
    ZERO_TREATMENT_WEIGHTS:
      'Set every treatment’s weight to 0, as updateVariant does (each change opens a phase): new units all get the control; units already assigned keep their variant. Pauses instead when the control has no weight.',
  } satisfies Record<GuardrailAction, string>),
});

/** A record with the defaults for an experiment the job has not looked at yet. */
type Monitoring = Pick<
  MonitorRow,
  | 'guardrailAction'
  | 'checkedAt'
  | 'decidedAt'
  | 'srmDetected'
  | 'significantMetrics'
  | 'breachedMetrics'
  | 'lastError'
>;
const NOT_LOOKED_AT: Monitoring = {
  guardrailAction: DEFAULT_GUARDRAIL_ACTION,
  checkedAt: null,
  decidedAt: null,
  srmDetected: false,
  significantMetrics: [],
  breachedMetrics: [],
  lastError: null,
};

const MonitoringRef = builder.objectRef<Monitoring>('ExperimentMonitoring').implement({
  authScopes: { read: true },
  description: `What the monitoring job watches on a running experiment (README, Automation): GUARDRAIL metrics against their tolerated harm, the sample-ratio check and the significance of PRIMARY and SECONDARY metrics, by the SEQUENTIAL method, at most once every ${LIMITS.monitorIntervalMs / 1000} s and only after the statistics changed. The flags are the state at the last decision: each alert fires when its flag turns on.`,
  fields: (t) => ({
    guardrailAction: t.field({
      type: GuardrailActionEnum,
      description: 'What a breach does (configureGuardrails); PAUSE by default.',
      resolve: (m) => m.guardrailAction,
    }),
    checkedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the job last looked at the statistics; null: never (not running yet).',
      resolve: (m) => m.checkedAt,
    }),
    decidedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the job last decided (the statistics had changed since the decision before).',
      resolve: (m) => m.decidedAt,
    }),
    srmDetected: t.boolean({
      description: 'The sample-ratio check failed at the last decision.',
      resolve: (m) => m.srmDetected,
    }),
    significantMetrics: t.stringList({
      description: 'PRIMARY and SECONDARY metrics with a significant treatment at the last decision.',
      resolve: (m) => m.significantMetrics,
    }),
    breachedMetrics: t.stringList({
      description:
        'GUARDRAIL metrics beyond their tolerated harm at the last decision. The guardrail acted when each appeared; it acts again only after the breach cleared and came back.',
      resolve: (m) => m.breachedMetrics,
    }),
    lastError: t.string({
      nullable: true,
      description: 'Why the last decision failed (tried again at the next look); null when it succeeded.',
      resolve: (m) => m.lastError,
    }),
  }),
});

builder.objectField(ExperimentRef, 'monitoring', (t) =>
  t.field({
    type: MonitoringRef,
    description: 'Guardrails, SRM and significance monitoring of the experiment, with its configuration.',
    resolve: async (e, _a, ctx) => (await ctx.loaders.monitorByExperimentId.load(e.id)) ?? NOT_LOOKED_AT,
  }),
);

const GuardrailSettingsInput = builder.inputRef<Input, false>('GuardrailSettingsInput').implement({
  description: 'How the experiment’s guardrails act on a breach.',
  fields: (t) =>
    ({
      action: t.field({
        type: GuardrailActionEnum,
        required: true,
        description: 'What a breach does.',
      }),
    }) satisfies InputFieldsOf<Input>,
});

builder.mutationFields((t) => ({
  configureGuardrails: t.field({
    type: ExperimentRef,
    description:
      'Sets what a guardrail breach does to the experiment (audited). Refused for COMPLETED and ARCHIVED experiments (READ_ONLY).',
    authScopes: { write: true },
    errors: { types: CHANGE_ERRORS },
    args: {
      id: t.arg.id({ required: true, description: 'The experiment’s UUID.' }),
      input: t.arg({ type: GuardrailSettingsInput, required: true, description: 'The settings.' }),
    },
    resolve: (_r, { id, input }, ctx: GraphQLContext) =>
      createMonitorService({
        db: ctx.db,
        actor: ctx.actor,
        afterCommit: ctx.afterExperimentChange,
      }).configureGuardrails(id, input),
  }),
}));
