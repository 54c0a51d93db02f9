/**
 * Monitoring: the job that watches running experiments (guardrails, sample-ratio mismatch, significance)
 * and `configureGuardrails`. The decisions themselves are pure (./decisions.ts); this file reads the
 * statistics through the results service, acts through the experiment service as the actor `guardrail`,
 * and writes alerts to the webhook outbox, all in the job run's transaction: a crash loses nothing and
 * repeats nothing, and the runner's lock makes one instance do it.
 */
import { z } from 'zod';
import { NotFoundError, RuleViolationError, ValidationError } from '../common/errors';
import { parse, uuid } from '../common/validation';
import { LIMITS } from '../config';
import type { Db } from '../db/client';
import * as experimentsRepo from '../experiments/repository';
import { type ChangeListener, createExperimentService } from '../experiments/service';
import type { Job } from '../jobs/runner';
import { getListedMetricKeys } from '../metrics/repository';
import { CONVERSION_METRIC, type ExperimentResults, getResults } from '../results/service';
import { emitEvent } from '../webhooks/service';
import {
  GUARDRAIL_ACTIONS,
  GUARDRAIL_ACTOR,
  type GuardrailAction,
  harmThreshold,
  MONITOR_ANALYSIS,
  type MonitorState,
  nextState,
  observe,
  sameState,
} from './decisions';
import * as repo from './repository';

export const MONITOR_JOB = 'experiment-monitors';

/** `configureGuardrails(id, input)`. */
export const guardrailSettingsInput = z.object({
  action: z.enum(GUARDRAIL_ACTIONS, { error: `action must be one of ${GUARDRAIL_ACTIONS.join(', ')}` }),
});
export type GuardrailSettingsInput = z.input<typeof guardrailSettingsInput>;

export function createMonitorService({
  db,
  actor,
  afterCommit,
}: {
  db: Db;
  actor: { name: string };
  afterCommit?: () => void;
}) {
  return {
    async configureGuardrails(experimentId: string, rawInput: GuardrailSettingsInput) {
      parse(uuid('id'), experimentId, ['id']);
      const input = parse(guardrailSettingsInput, rawInput, ['input']);
      const experiment = await db.transaction(async (tx) => {
        if (!(await experimentsRepo.getExperiment(tx, { id: experimentId }))) {
          throw new NotFoundError('Experiment', experimentId);
        }
        // The record's lock first, then the experiment's: the job holds the records it claimed for its
        // whole run when it takes an experiment's lock, so the other order could deadlock with it.
        const before = await repo.lockMonitor(tx, experimentId);
        const locked = await experimentsRepo.lockExperiment(tx, experimentId);
        if (!locked) throw new NotFoundError('Experiment', experimentId);
        if (locked.status === 'completed' || locked.status === 'archived') {
          throw new RuleViolationError('READ_ONLY', `A ${locked.status} experiment cannot be changed`);
        }
        await repo.setGuardrailAction(tx, experimentId, input.action);
        await experimentsRepo.insertAudit(tx, {
          actor: actor.name,
          action: 'experiment.guardrails_configured',
          entityType: 'experiment',
          entityId: experimentId,
          details: { before: { action: before.guardrailAction }, after: input },
        });
        return locked;
      });
      afterCommit?.();
      return experiment;
    },
  };
}

export interface MonitorJobDeps {
  onChange?: ChangeListener;
  afterCommit?: () => void;
}

/**
 * The monitoring job: each run claims the running experiments not looked at within
 * LIMITS.monitorIntervalMs and, for those whose statistics changed since the last decision, decides again.
 * Each experiment's decision runs in its own savepoint: one that fails is recorded on its row and leaves
 * the others alone.
 */
export function monitorJob(deps: MonitorJobDeps = {}): Job {
  return {
    name: MONITOR_JOB,
    async run(tx, now) {
      const due = await repo.claimDueMonitors(
        tx,
        now,
        LIMITS.monitorIntervalMs,
        LIMITS.monitorExperimentsPerRun,
      );
      for (const item of due) {
        if (item.fingerprint === item.previousFingerprint) continue;
        try {
          await tx.transaction((sp) => decideExperiment(sp, item.experimentId, item.fingerprint, now, deps));
        } catch (err) {
          await repo.saveError(tx, item.experimentId, err instanceof Error ? err.message : String(err));
        }
      }
    },
  };
}

/** The metrics the decisions read: those the experiment lists (the SRM check needs one metric: any). */
async function analyse(tx: Db, experiment: experimentsRepo.ExperimentRow): Promise<ExperimentResults[]> {
  const keys = await getListedMetricKeys(tx, experiment.id);
  return getResults(tx, experiment, keys.length ? keys : [CONVERSION_METRIC], MONITOR_ANALYSIS);
}

async function decideExperiment(
  tx: Db,
  experimentId: string,
  fingerprint: string,
  now: Date,
  deps: MonitorJobDeps,
) {
  const experiment = await experimentsRepo.getExperiment(tx, { id: experimentId });
  if (experiment?.status !== 'running') return;
  const results = await analyse(tx, experiment);
  const seen = observe(results, results[0].srm);
  const [unlocked] = await repo.getMonitorsByExperimentIds(tx, [experimentId]);
  const quiet = nextState(unlocked ?? EMPTY_STATE, seen);
  if (unlocked && sameState(unlocked, quiet.state)) {
    // Nothing to tell or do: record the decision without locking the experiment.
    await repo.saveDecision(tx, experimentId, { state: quiet.state, fingerprint, at: now });
    return;
  }
  // Something changes: the run holds the record since it claimed it; take the experiment's lock too (in
  // this order, as configureGuardrails), then decide on the locked state.
  const locked = await experimentsRepo.lockExperiment(tx, experimentId);
  if (locked?.status !== 'running') return;
  const before = await repo.lockMonitor(tx, experimentId);
  const { state, onsets } = nextState(before, seen);
  const base = {
    key: locked.key,
    method: MONITOR_ANALYSIS.method,
    confidenceLevel: MONITOR_ANALYSIS.confidenceLevel,
  };

  if (onsets.srm) {
    const srm = results[0].srm;
    await emitEvent(tx, 'SRM_DETECTED', experimentId, {
      ...base,
      pValue: srm.pValue,
      chiSquare: srm.chiSquare,
      variants: results[0].variants.map((v, i) => ({
        variantId: v.variantId,
        variantName: v.variantName,
        observed: srm.observed[i] ?? null,
        expected: srm.expected?.[i] ?? null,
      })),
    });
  }
  const byMetric = new Map(results.map((r) => [r.metric, r]));
  for (const metric of onsets.significance) {
    const r = byMetric.get(metric)!;
    await emitEvent(tx, 'SIGNIFICANCE_REACHED', experimentId, {
      ...base,
      metric,
      role: r.role,
      goal: r.goal,
      variants: seen.significant.get(metric)!.map((v) => ({
        variantId: v.variantId,
        variantName: v.variantName,
        units: v.units,
        pValue: v.pValue,
        relativeEffect: v.relativeEffect && {
          estimate: v.relativeEffect.estimate,
          lower: v.relativeEffect.lower,
          upper: v.relativeEffect.upper,
        },
      })),
    });
  }
  if (onsets.breaches.length) {
    const breaches = onsets.breaches.map((metric) => {
      const r = byMetric.get(metric)!;
      const control = r.variants.find((v) => v.isControl);
      return {
        metric,
        goal: r.goal,
        toleratedHarm: r.toleratedHarm,
        threshold: harmThreshold(r.goal, r.toleratedHarm),
        control: {
          variantId: control?.variantId ?? null,
          units: control?.units ?? null,
          mean: control?.mean ?? null,
        },
        variants: seen.breaches.get(metric)!,
      };
    });
    const taken = await act(tx, locked, results[0].controlVariantId, before.guardrailAction, deps);
    await experimentsRepo.insertAudit(tx, {
      actor: GUARDRAIL_ACTOR,
      action: 'experiment.guardrail_breached',
      entityType: 'experiment',
      entityId: experimentId,
      details: {
        ...base,
        action: taken.action,
        configuredAction: before.guardrailAction,
        ...taken.details,
        breaches,
      },
    });
    for (const b of breaches) {
      await emitEvent(tx, 'GUARDRAIL_BREACHED', experimentId, { ...base, action: taken.action, ...b });
    }
  }
  await repo.saveDecision(tx, experimentId, { state, fingerprint, at: now });
}

const EMPTY_STATE: MonitorState = { srmDetected: false, significantMetrics: [], breachedMetrics: [] };

/**
 * Takes the configured action through the experiment service, as a person would, with the actor
 * `guardrail`: pausing is the lifecycle transition; zeroing sets each treatment's weight to 0 with
 * updateVariant (each change opens a phase; stored assignments keep their variant). When the control has no
 * weight, zeroing the treatments would leave no traffic at all: the experiment is paused instead.
 */
async function act(
  tx: Db,
  experiment: experimentsRepo.ExperimentRow,
  controlVariantId: string | null,
  action: GuardrailAction,
  deps: MonitorJobDeps,
): Promise<{ action: GuardrailAction; details: Record<string, unknown> }> {
  const serviceOn = (db: Db) =>
    createExperimentService({
      db,
      actor: { name: GUARDRAIL_ACTOR },
      onChange: deps.onChange,
      afterCommit: deps.afterCommit,
    });
  const service = serviceOn(tx);
  if (action === 'ZERO_TREATMENT_WEIGHTS') {
    const variants = await experimentsRepo.getVariants(tx, experiment.id);
    const treatments = variants.filter((v) => v.id !== controlVariantId && v.weight > 0);
    try {
      // All treatments or none: a refusal rolls back the ones already zeroed.
      await tx.transaction(async (sp) => {
        for (const v of treatments) await serviceOn(sp).updateVariant(v.id, { weight: 0 });
      });
      return {
        action,
        details: { zeroed: treatments.map((v) => ({ variantId: v.id, weightBefore: v.weight })) },
      };
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      await service.transition(experiment.id, 'pause');
      return { action: 'PAUSE', details: { fallback: err.message } };
    }
  }
  await service.transition(experiment.id, 'pause');
  return { action, details: {} };
}
