/**
 * GrowthBook-compatible deterministic bucketing (hash version 2), so an SDK evaluating an experiment
 * locally puts every user in the same variant as this service. Each function mirrors its namesake in
 * GrowthBook's JavaScript SDK (packages/sdk-js/src/util.ts), floating-point steps included: a range
 * edge moved by one ulp is enough to put a hash of exactly 0.6 in another variant. Pure: no I/O.
 */
import { type Attributes, type Condition, matchesCondition } from './targeting';

// Module-level bindings: in a VM context (Jest) every `Math.…` or `String` in a loop is a global lookup
// through the context's interceptors, several times the cost of the hash itself; plain Node is unaffected.
const { imul } = Math;
const stringOf = String;

/** 32-bit FNV-1a over UTF-16 code units, as GrowthBook's SDKs compute it. */
export function fnv1a32(value: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i);
    hash = imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** A number in [0, 1) with 4 decimals; the double hash spreads similar ids evenly. */
export function hashV2(seed: string, value: string): number {
  return (fnv1a32(stringOf(fnv1a32(seed + value))) % 10000) / 10000;
}

/**
 * GrowthBook's hash: version 2 is the one this service buckets with; version 1 (GrowthBook's original,
 * biased hash, still its SDKs' default) is here so the whole GrowthBook conformance suite runs against
 * this module. Unknown versions give null (not enrolled).
 */
export function hash(seed: string, value: string, version: number): number | null {
  if (version === 2) return hashV2(seed, value);
  if (version === 1) return (fnv1a32(value + seed) % 1000) / 1000;
  return null;
}

export type BucketRange = [number, number];

/** GrowthBook's weights when an experiment gives none (or unusable ones): 1/n each. */
export function getEqualWeights(numVariations: number): number[] {
  if (numVariations <= 0) return [];
  return new Array<number>(numVariations).fill(1 / numVariations);
}

/** GrowthBook accepts weights as given only when they sum to within this band; else it uses equal weights. */
export const GROWTHBOOK_WEIGHT_SUM = { min: 0.99, max: 1.01 } as const;

/** Sums in array order, as GrowthBook does (floating-point addition is not associative). */
const total = (weights: readonly number[]) => weights.reduce((sum, w) => sum + w, 0);

/** GrowthBook's getBucketRanges: contiguous ranges from cumulative weights, each shrunk by coverage. */
export function getBucketRanges(
  numVariations: number,
  coverage: number | undefined,
  weights?: readonly number[] | null,
): BucketRange[] {
  let cov = coverage === undefined ? 1 : coverage;
  if (cov < 0) cov = 0;
  else if (cov > 1) cov = 1;
  const equal = getEqualWeights(numVariations);
  let w = weights ?? equal;
  if (w.length !== numVariations) w = equal;
  const sum = total(w);
  if (sum < GROWTHBOOK_WEIGHT_SUM.min || sum > GROWTHBOOK_WEIGHT_SUM.max) w = equal;
  let cumulative = 0;
  return w.map((weight) => {
    const start = cumulative;
    cumulative += weight;
    return [start, start + cov * weight];
  });
}

/** Index of the range containing n, or -1 when the unit falls outside every range (not enrolled). */
export function chooseVariant(n: number, ranges: readonly BucketRange[]): number {
  for (let i = 0; i < ranges.length; i++) {
    if (n >= ranges[i][0] && n < ranges[i][1]) return i;
  }
  return -1;
}

/** Scales weights to sum 1, keeping their order; null when they sum to 0 (or are unusable). */
export function normaliseWeights(weights: readonly number[]): number[] | null {
  const sum = total(weights);
  if (!(sum > 0) || !Number.isFinite(sum)) return null;
  return weights.map((w) => w / sum);
}

/**
 * The weights bucketing uses, which are also the weights to give a GrowthBook SDK. Stored weights that
 * GrowthBook accepts (summing to within [0.99, 1.01]) are used exactly as stored, never rescaled: scaling
 * 0.6 / 0.3 / 0.1 (which add up to 0.9999999999999999) would move two range edges by an ulp. Any other
 * relative weights (2 / 1 / 1, or 80 / 20) are scaled to sum 1, where GrowthBook would fall back to
 * equal weights. Null when no variant has weight (nobody can be enrolled).
 */
export function bucketWeights(weights: readonly number[]): number[] | null {
  const sum = total(weights);
  if (!(sum > 0) || !Number.isFinite(sum)) return null;
  if (sum >= GROWTHBOOK_WEIGHT_SUM.min && sum <= GROWTHBOOK_WEIGHT_SUM.max) return [...weights];
  return normaliseWeights(weights);
}

/** The fields of a GrowthBook experiment that decide bucketing (no targeting, forcing or namespaces). */
export interface BucketingExperiment {
  key: string;
  /** Only their number matters here. */
  variations: readonly unknown[];
  weights?: readonly number[];
  coverage?: number;
  seed?: string;
  /** GrowthBook's default is 1; this service always publishes 2. */
  hashVersion?: number;
  active?: boolean;
}

/**
 * GrowthBook's runExperiment reduced to those fields (its steps 1, 5, 6, 9 and 10): the variation index
 * a unit gets, or -1 when it is not in the experiment.
 */
export function growthBookVariation(
  experiment: BucketingExperiment,
  hashValue: string | null | undefined,
): number {
  const count = experiment.variations.length;
  if (count < 2 || experiment.active === false || !hashValue) return -1;
  const n = hash(experiment.seed || experiment.key, hashValue, experiment.hashVersion || 1);
  if (n === null) return -1;
  return chooseVariant(n, getBucketRanges(count, experiment.coverage, experiment.weights));
}

export interface BucketInput {
  seed: string;
  userId: string;
  trafficAllocation: number;
  /** Variant weights in position order, as stored. */
  weights: number[];
}

/** The variant index for a user, or -1 when outside the traffic allocation (or no variant has weight). */
export function bucket({ seed, userId, trafficAllocation, weights }: BucketInput): number {
  const effective = bucketWeights(weights);
  if (!effective) return -1;
  return growthBookVariation(
    { key: seed, seed, hashVersion: 2, coverage: trafficAllocation, weights: effective, variations: weights },
    userId,
  );
}

/** GrowthBook's inRange: start inclusive, end exclusive. */
export const inRange = (n: number, [start, end]: BucketRange) => n >= start && n < end;

/**
 * GrowthBook's inNamespace (its older mutual-exclusion model): hash version 1 with the seed "__" + the
 * namespace id. Layers use filters (below) instead; this is here so GrowthBook's conformance cases run.
 */
export function inNamespace(hashValue: string, [id, start, end]: [string, number, number]): boolean {
  const n = hash(`__${id}`, hashValue, 1);
  return n !== null && n >= start && n < end;
}

/**
 * A layer's share of a unit: GrowthBook's filter `{ seed, ranges, hashVersion: 2, attribute: "id" }`. The
 * layer hash uses the layer's seed, independent of every experiment's own seed, so where a unit falls in
 * the layer says nothing about its variant.
 */
export function inLayerRanges(layerSeed: string, userId: string, ranges: readonly BucketRange[]): boolean {
  const n = hashV2(layerSeed, userId);
  return ranges.some((range) => inRange(n, range));
}

/** A GrowthBook filter: the unit must hash (with this seed) into one of the ranges. */
export interface GrowthBookFilter {
  seed: string;
  ranges: BucketRange[];
  hashVersion?: number;
  attribute?: string;
}

/** The fields of a GrowthBook experiment this service publishes or models (no SDK-context features). */
export interface RunnableExperiment extends BucketingExperiment {
  hashAttribute?: string;
  condition?: Condition;
  filters?: GrowthBookFilter[];
  namespace?: [string, number, number];
  ranges?: BucketRange[];
  force?: number;
}

const attributeValue = (attributes: Attributes, name: string) => {
  const value = attributes[name];
  return value === undefined || value === null || value === '' ? null : String(value);
};

/**
 * GrowthBook's runExperiment for one unit's attributes, without the SDK context (url, forced variations
 * from the context, QA mode, sticky buckets, prerequisites): steps 1, 5-8, 9-11 of its core, in its order.
 * `variation` is what the SDK returns as the value's index (0 when not in the experiment).
 */
export function runExperiment(
  experiment: RunnableExperiment,
  attributes: Attributes,
): { variation: number; inExperiment: boolean } {
  const out = { variation: 0, inExperiment: false };
  const count = experiment.variations.length;
  if (count < 2 || experiment.active === false) return out;
  const hashValue = attributeValue(attributes, experiment.hashAttribute || 'id');
  if (!hashValue) return out;
  if (experiment.filters) {
    const filteredOut = experiment.filters.some((filter) => {
      const value = attributeValue(attributes, filter.attribute || 'id');
      if (!value) return true;
      const n = hash(filter.seed, value, filter.hashVersion || 2);
      return n === null || !filter.ranges.some((range) => inRange(n, range));
    });
    if (filteredOut) return out;
  } else if (experiment.namespace && !inNamespace(hashValue, experiment.namespace)) {
    return out;
  }
  if (experiment.condition && !matchesCondition(experiment.condition, attributes)) return out;
  const n = hash(experiment.seed || experiment.key, hashValue, experiment.hashVersion || 1);
  if (n === null) return out;
  const ranges = experiment.ranges || getBucketRanges(count, experiment.coverage, experiment.weights);
  const assigned = chooseVariant(n, ranges);
  if (assigned < 0) return out;
  // A forced variation wins over the bucket, but the unit counts as not in the experiment.
  if ('force' in experiment) {
    const forced = experiment.force ?? -1;
    return forced >= 0 && forced < count ? { variation: forced, inExperiment: false } : out;
  }
  return { variation: assigned, inExperiment: true };
}
