/**
 * GrowthBook-compatible deterministic bucketing (hash version 2), so an SDK evaluating an experiment
 * locally puts every user in the same variant as this service. Pure: no I/O.
 */

/** 32-bit FNV-1a over UTF-16 code units, as GrowthBook's SDKs compute it. */
export function fnv1a32(value: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** A number in [0, 1) with 4 decimals; the double hash spreads similar ids evenly. */
export function hashV2(seed: string, value: string): number {
  return (fnv1a32(String(fnv1a32(seed + value))) % 10000) / 10000;
}

export type BucketRange = [number, number];

/** GrowthBook's getBucketRange: contiguous ranges from cumulative weights, each shrunk by coverage. */
export function getBucketRanges(
  numVariations: number,
  coverage: number,
  weights?: number[] | null,
): BucketRange[] {
  const cov = Number.isFinite(coverage) ? Math.min(1, Math.max(0, coverage)) : 1;
  const equal = () => new Array<number>(numVariations).fill(1 / numVariations);
  let w = weights ?? equal();
  if (w.length !== numVariations) w = equal();
  const total = w.reduce((a, b) => a + b, 0);
  if (total < 0.99 || total > 1.01) w = equal();
  let cumulative = 0;
  return w.map((weight) => {
    const start = cumulative;
    cumulative += weight;
    return [start, start + cov * weight];
  });
}

/** Index of the range containing n, or -1 when the unit falls outside every range (not enrolled). */
export function chooseVariant(n: number, ranges: BucketRange[]): number {
  for (let i = 0; i < ranges.length; i++) {
    if (n >= ranges[i][0] && n < ranges[i][1]) return i;
  }
  return -1;
}

/** Normalises stored weights to sum 1 (GrowthBook expects that), keeping their order. */
export function normaliseWeights(weights: number[]): number[] | null {
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0) || !Number.isFinite(total)) return null;
  return weights.map((w) => w / total);
}

export interface BucketInput {
  seed: string;
  userId: string;
  trafficAllocation: number;
  /** Variant weights in position order. */
  weights: number[];
}

/** The variant index for a user, or -1 when outside the traffic allocation. */
export function bucket({ seed, userId, trafficAllocation, weights }: BucketInput): number {
  const normalised = normaliseWeights(weights);
  if (!normalised) return -1;
  const n = hashV2(seed, userId);
  return chooseVariant(n, getBucketRanges(weights.length, trafficAllocation, normalised));
}
