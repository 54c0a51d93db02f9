/**
 * The GrowthBook experiment that reproduces this service's bucketing, for clients that evaluate locally
 * with a GrowthBook SDK (`gb.run(experiment)`): same seed, hash version 2, coverage = traffic allocation
 * and the weights bucketing really uses (relative weights already scaled, see bucketWeights). Pure.
 */
import { bucketWeights } from './bucketing';
import { type ExperimentConfig, hashSeedOf } from './service';
import type { Condition } from './targeting';

/** A GrowthBook `Experiment` (JavaScript SDK field names); the SDKs of other languages use the same. */
export interface GrowthBookExperiment {
  key: string;
  name: string;
  seed: string;
  hashVersion: 2;
  /** The attribute holding the unit id: pass `attributes: { id: userId }`. */
  hashAttribute: 'id';
  coverage: number;
  weights: number[];
  /** Each variant's config, in position order: what `run` returns as `value`. */
  variations: unknown[];
  /** `key` is the variant's id, so `result.key` is the `variantId` to send with events. */
  meta: { key: string; name: string }[];
  /** False unless the experiment is RUNNING with some weight: the SDK then enrolls nobody, as the service. */
  active: boolean;
  /** The targeting condition, evaluated by the SDK against the attributes it was given. */
  condition?: Condition;
  /** The layer: the unit must fall in these ranges of the layer's own hash (seed = the layer's seed). */
  filters?: { seed: string; ranges: [number, number][]; hashVersion: 2; attribute: 'id' }[];
}

export function growthBookExperiment({
  experiment,
  variants,
  layerSeed,
}: ExperimentConfig): GrowthBookExperiment {
  const weights = bucketWeights(variants.map((v) => v.weight));
  return {
    key: experiment.key,
    name: experiment.name,
    seed: hashSeedOf(experiment),
    hashVersion: 2,
    hashAttribute: 'id',
    coverage: experiment.trafficAllocation,
    weights: weights ?? variants.map(() => 0),
    variations: variants.map((v) => v.config),
    meta: variants.map((v) => ({ key: v.id, name: v.name })),
    active: experiment.status === 'running' && weights !== null,
    ...(experiment.targeting ? { condition: experiment.targeting } : {}),
    ...(experiment.layerRanges && layerSeed
      ? { filters: [{ seed: layerSeed, ranges: experiment.layerRanges, hashVersion: 2, attribute: 'id' }] }
      : {}),
  };
}
