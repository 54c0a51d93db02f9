/**
 * Bandits: the reweighting job and the per-phase statistics it (and a bandit's `results`) reads.
 *
 * A BANDIT starts with equal weights (phase 1, stage EXPLORE). `explorationHours` after the start, and then
 * every `updateEveryMinutes`, the job reads each arm's exposed units and decision-metric totals per phase,
 * weights each phase by its share of all units (src/bandits/engine.ts), and sets the weights to each arm's
 * posterior probability of being best, floored at `minWeight`, through the experiment service's `reweight`
 * (the variants' weights, a new phase, an audit entry as `bandit`, the configuration change notification),
 * with a `BANDIT_REWEIGHTED` alert and a history row in the same transaction. While an arm has fewer than
 * `minUnitsPerVariant` exposed units nothing changes; the job looks again an hour later (or at the cadence,
 * if shorter).
 */
import type { ChangeListener } from '../experiments/service';
import { createExperimentService } from '../experiments/service';
import * as experimentsRepo from '../experiments/repository';
import { LIMITS } from '../config';
import type { Db } from '../db/client';
import type { Job } from '../jobs/runner';
import type { MetricRow } from '../metrics/repository';
import * as metricsRepo from '../metrics/repository';
import { emitEvent } from '../webhooks/service';
import { type ArmPeriodStats, banditUpdate, type PeriodStats } from './engine';
import * as repo from './repository';

/** The audit log's actor for every reweighting. */
export const BANDIT_ACTOR = 'bandit';

export const BANDIT_JOB = 'bandit-reweights';

/** How soon the job looks again at a bandit it could not update (an arm short of units). */
const RETRY_MINUTES = 60;

/** Why a due bandit kept its weights (`banditState.waitingReason`). */
export const BANDIT_WAITING_REASONS = ['TOO_FEW_UNITS', 'ZERO_VARIANCE', 'FAILED'] as const;
export type BanditWaitingReason = (typeof BANDIT_WAITING_REASONS)[number];

/**
 * The per-phase statistics of a metric in the engine's shape: phases in order, arms in `variantIds` order
 * (an arm without units in a phase: zeros). A BINOMIAL metric counts units with a total > 0, so Σx = Σx² =
 * conversions; a MEAN metric sums the (capped) totals.
 */
export function toPeriods(
  rows: readonly repo.PeriodRow[],
  variantIds: readonly string[],
  kind: MetricRow['kind'],
): PeriodStats {
  const phases = [...new Set(rows.map((r) => r.phase))].sort((x, y) => x - y);
  const byKey = new Map(rows.map((r) => [`${r.phase}/${r.variantId}`, r]));
  return phases.map((phase) =>
    variantIds.map((id): ArmPeriodStats => {
      const r = byKey.get(`${phase}/${id}`);
      if (!r) return { n: 0, sum: 0, sumSquares: 0 };
      return kind === 'BINOMIAL'
        ? { n: r.n, sum: r.converted, sumSquares: r.converted }
        : { n: r.n, sum: r.sum, sumSquares: r.sumSquares };
    }),
  );
}

/** Reads a bandit's per-phase statistics of its decision metric (or another defined metric). */
export async function readPeriods(
  db: Db,
  experimentId: string,
  variantIds: readonly string[],
  metric: Pick<MetricRow, 'eventName' | 'kind' | 'capValue'>,
): Promise<PeriodStats> {
  const rows = await repo.getPeriodStats(
    db,
    experimentId,
    metric.eventName,
    metric.kind === 'MEAN' ? metric.capValue : null,
  );
  return toPeriods(rows, variantIds, metric.kind);
}

const minutes = (at: Date, n: number) => new Date(at.getTime() + n * 60_000);

/** One look at a due bandit, in the caller's savepoint: reweights it, or records why not. */
async function reweightOne(
  tx: Db,
  experimentId: string,
  now: Date,
  deps: { onChange?: ChangeListener; afterCommit?: () => void },
): Promise<void> {
  // The experiment's row first, then the bandit's: the order every experiment change takes.
  const experiment = await experimentsRepo.lockExperiment(tx, experimentId);
  if (experiment?.status !== 'running' || experiment.kind !== 'bandit') return;
  const bandit = await repo.lockBandit(tx, experimentId);
  if (!bandit?.nextUpdateAt || bandit.nextUpdateAt > now) return;
  const [metric] = await metricsRepo.getMetricsByIds(tx, [bandit.decisionMetricId]);
  const variants = await experimentsRepo.getVariants(tx, experimentId);
  const periods = await readPeriods(
    tx,
    experimentId,
    variants.map((v) => v.id),
    metric,
  );
  const update = banditUpdate({
    periods,
    arms: variants.length,
    direction: metric.direction,
    minWeight: bandit.minWeight,
    minUnitsPerVariant: bandit.minUnitsPerVariant,
  });
  if (!update.weights) {
    await repo.updateBandit(tx, experimentId, {
      lastCheckedAt: now,
      waitingReason: update.reason,
      nextUpdateAt: minutes(now, Math.min(bandit.updateEveryMinutes, RETRY_MINUTES)),
    });
    return;
  }
  const weights = variants.map((v, i) => ({ variantId: v.id, weight: update.weights[i] }));
  const bestArmProbabilities = variants.map((v, i) => ({
    variantId: v.id,
    probability: update.bestArmProbabilities[i],
  }));
  const estimates = variants.map((v, i) => ({ variantId: v.id, ...update.estimates[i] }));
  const { phase } = await createExperimentService({
    db: tx,
    actor: { name: BANDIT_ACTOR },
    onChange: deps.onChange,
    afterCommit: deps.afterCommit,
  }).reweight(experimentId, weights, { decisionMetric: metric.key, bestArmProbabilities, estimates });
  await repo.insertBanditUpdate(tx, {
    experimentId,
    at: now,
    phase,
    weights,
    bestArmProbabilities,
    estimates,
  });
  await repo.updateBandit(tx, experimentId, {
    stage: 'EXPLOIT',
    bestArmProbabilities,
    updatedAt: now,
    lastCheckedAt: now,
    waitingReason: null,
    nextUpdateAt: minutes(now, bandit.updateEveryMinutes),
  });
  await emitEvent(tx, 'BANDIT_REWEIGHTED', experimentId, {
    key: experiment.key,
    phase,
    stage: 'EXPLOIT',
    weights,
    bestArmProbabilities,
    actor: BANDIT_ACTOR,
  });
}

/**
 * The reweighting job. Each due bandit is looked at in its own savepoint: one that fails (its metric was
 * archived and deleted, say) is marked FAILED and retried later without undoing the others.
 */
export function banditJob(deps: { onChange?: ChangeListener; afterCommit?: () => void }): Job {
  return {
    name: BANDIT_JOB,
    async run(tx, now) {
      const due = await repo.getDueBandits(tx, now, LIMITS.bandit.updatesPerRun);
      for (const experimentId of due) {
        try {
          await tx.transaction((savepoint) => reweightOne(savepoint, experimentId, now, deps));
        } catch {
          await repo.updateBandit(tx, experimentId, {
            lastCheckedAt: now,
            waitingReason: 'FAILED',
            nextUpdateAt: minutes(now, RETRY_MINUTES),
          });
        }
      }
    },
  };
}
