/**
 * The GrowthBook experiment that reproduces this service's bucketing, for clients that evaluate locally
 * with a GrowthBook SDK (`gb.run(experiment)`): same seed, hash version 2, coverage = traffic allocation
 * and the weights bucketing really uses (relative weights already scaled, see bucketWeights). Pure.
 */
import { type BucketRange, bucketWeights, getBucketRanges } from './bucketing';
import { type ExperimentConfig, hashSeedOf } from './service';
import type { Condition } from './targeting';

export interface GrowthBookFilter {
  seed: string;
  ranges: BucketRange[];
  hashVersion: 2;
  attribute: 'id';
}

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
  /**
   * The layer (the unit must fall in these ranges of the layer's own hash) and the holdout (it must fall
   * outside the held-out group of the holdout's hash).
   */
  filters?: GrowthBookFilter[];
}

/**
 * The holdout as a GrowthBook filter: the unit must hash (with the holdout's seed) outside the held-out
 * group's bucket range, i.e. in the general group or outside the holdout's coverage. Null when the holdout
 * holds nobody out (not RUNNING, or no weight).
 */
function holdoutFilter(holdout: ExperimentConfig): GrowthBookFilter | null {
  if (holdout.experiment.status !== 'running') return null;
  const weights = bucketWeights(holdout.variants.map((v) => v.weight));
  const held = holdout.variants.findIndex((v) => v.isControl);
  if (!weights || held < 0) return null;
  const [start, end] = getBucketRanges(weights.length, holdout.experiment.trafficAllocation, weights)[held];
  const ranges = (
    [
      [0, start],
      [end, 1],
    ] as BucketRange[]
  ).filter(([s, e]) => s < e);
  return { seed: hashSeedOf(holdout.experiment), ranges, hashVersion: 2, attribute: 'id' };
}

export function growthBookExperiment({
  experiment,
  variants,
  layerSeed,
  holdout,
}: ExperimentConfig): GrowthBookExperiment {
  const weights = bucketWeights(variants.map((v) => v.weight));
  const filters: GrowthBookFilter[] = [];
  if (experiment.layerRanges && layerSeed) {
    filters.push({ seed: layerSeed, ranges: experiment.layerRanges, hashVersion: 2, attribute: 'id' });
  }
  const held = holdout ? holdoutFilter(holdout) : null;
  if (held) filters.push(held);
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
    ...(filters.length ? { filters } : {}),
  };
}
