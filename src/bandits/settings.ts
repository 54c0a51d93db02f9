/**
 * A bandit's settings: the one input definition (`createExperiment(input: {kind: BANDIT, bandit})`; the
 * GraphQL input type is checked against it by the compiler) and the stage vocabulary. No database here, so
 * the experiment service and the schema can import it without a cycle.
 */
import { z } from 'zod';
import { LIMITS } from '../config';
import { numberBetween, slug } from '../common/validation';

/** EXPLORE: equal weights until the first reweighting; EXPLOIT: weights follow P(best) from then on. */
export const BANDIT_STAGES = ['EXPLORE', 'EXPLOIT'] as const;
export type BanditStage = (typeof BANDIT_STAGES)[number];

const B = LIMITS.bandit;

const integerBetween = (what: string, min: number, max: number) =>
  z
    .number({ error: `${what} must be an integer` })
    .int(`${what} must be an integer`)
    .refine((v) => v >= min && v <= max, `${what} must be between ${min} and ${max}`);

export const banditInput = z.object({
  /** A defined metric's key (createMetric): its kind, events, cap and direction decide what "best" is. */
  decisionMetric: slug('decisionMetric', LIMITS.keyMaxLength),
  explorationHours: numberBetween('explorationHours', 0, B.maxExplorationHours)
    .nullish()
    .transform((v) => v ?? B.explorationHoursDefault),
  updateEveryMinutes: integerBetween('updateEveryMinutes', B.minUpdateEveryMinutes, B.maxUpdateEveryMinutes)
    .nullish()
    .transform((v) => v ?? B.updateEveryMinutesDefault),
  minWeight: numberBetween('minWeight', 0, B.maxMinWeight)
    .nullish()
    .transform((v) => v ?? B.minWeightDefault),
  minUnitsPerVariant: integerBetween('minUnitsPerVariant', B.minMinUnitsPerVariant, B.maxMinUnitsPerVariant)
    .nullish()
    .transform((v) => v ?? B.minUnitsPerVariantDefault),
});
export type BanditInput = z.input<typeof banditInput>;
export type BanditSettings = z.output<typeof banditInput>;

/** The floor of every arm must leave room to move: k × minWeight < 1. Null when it does. */
export function floorProblem(minWeight: number, variants: number): string | null {
  return variants > 0 && minWeight * variants >= 1
    ? `minWeight × variants must be below 1 (${minWeight} × ${variants} leaves no weight to move)`
    : null;
}
