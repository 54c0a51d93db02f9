import type { DifferenceEstimate } from './difference';
import { normalCdf, normalPdf, normalQuantile } from './distributions';
import { type EffectResult, fail, type GaussianPrior, type Outcome, ok } from './types';

export interface Posterior {
  mean: number;
  sd: number;
}

/**
 * Normal posterior of the effect (gbstats `EffectBayesianABTest`): the likelihood is the estimate's normal
 * approximation; the prior, given on the relative scale, is rescaled by |control mean| for absolute effects.
 */
export function effectPosterior(diff: DifferenceEstimate, prior?: GaussianPrior | null): Outcome<Posterior> {
  if (!prior) return ok({ mean: diff.estimate, sd: diff.standardError });
  if (!Number.isFinite(prior.mean) || !Number.isFinite(prior.variance) || prior.variance <= 0) {
    return fail('INVALID_INPUT');
  }
  let { mean: priorMean, variance: priorVariance } = prior;
  if (diff.differenceType === 'ABSOLUTE') {
    // A relative prior says nothing on the absolute scale when the control mean is 0.
    if (diff.controlMean === 0) return fail('CONTROL_MEAN_ZERO');
    priorMean *= Math.abs(diff.controlMean);
    priorVariance *= diff.controlMean ** 2;
  }
  const precision = 1 / diff.variance + 1 / priorVariance;
  const mean = (diff.estimate / diff.variance + priorMean / priorVariance) / precision;
  const sd = Math.sqrt(1 / precision);
  return Number.isFinite(mean) && Number.isFinite(sd) && sd > 0
    ? ok({ mean, sd })
    : fail('NON_FINITE_RESULT');
}

/**
 * Expected loss of choosing each side under a N(mean, sd²) posterior of the effect:
 * control risk = E[max(Δ, 0)], treatment risk = E[max(−Δ, 0)] (gbstats `get_risk`, written in closed form).
 */
export function expectedLoss({ mean, sd }: Posterior): [number, number] {
  const z = mean / sd;
  const density = sd * normalPdf(z);
  // Clamped because the two terms cancel far in the tails and may round below zero.
  return [Math.max(0, mean * normalCdf(z) + density), Math.max(0, -mean * normalCdf(-z) + density)];
}

export function bayesianTest(
  diff: DifferenceEstimate,
  confidenceLevel = 0.95,
  prior?: GaussianPrior | null,
): Outcome<EffectResult> {
  const posterior = effectPosterior(diff, prior);
  if (posterior.value === null) return fail(posterior.reason);
  const { mean, sd } = posterior.value;
  const alpha = 1 - confidenceLevel;
  return ok({
    estimate: mean,
    lower: normalQuantile(alpha / 2, mean, sd),
    upper: normalQuantile(1 - alpha / 2, mean, sd),
    standardError: sd,
    pValue: null,
    chanceToWin: normalCdf(mean / sd),
    risk: expectedLoss(posterior.value),
  });
}
