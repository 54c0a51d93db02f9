/**
 * The layer tests' experiments and their million-unit count, in a module of its own so the count can run
 * outside Jest's VM context (tests/support/native.ts); layers.test.ts judges what it returns.
 */
import { type ExperimentConfig, isInLayer, pickVariant } from '../../src/assignments/service';
import type { ExperimentRow, VariantRow } from '../../src/experiments/repository';

export function layered(key: string, ranges: [number, number][], weights = [0.5, 0.5]): ExperimentConfig {
  const experiment = {
    id: key,
    key,
    hashSeed: null,
    trafficAllocation: 1,
    status: 'running',
    targeting: null,
    layerId: 'layer',
    layerRanges: ranges,
  } as unknown as ExperimentRow;
  const variants = weights.map((weight, i) => ({ id: `${key}-v${i}`, weight }) as VariantRow);
  return { experiment, variants, layerSeed: 'home-rows' };
}

export interface LayerSplit {
  /** Units both experiments would enroll (must be none). */
  both: number;
  /** Units in each experiment by variant (v0, v1). */
  a: [number, number];
  b: [number, number];
}

/** Units `unit-0` … `unit-(n−1)` through two experiments of one layer at [0, 0.5) and [0.5, 1). */
export function splitUnits(n: number): LayerSplit {
  const a = layered('exp-a', [[0, 0.5]]);
  const b = layered('exp-b', [[0.5, 1]]);
  const split: LayerSplit = { both: 0, a: [0, 0], b: [0, 0] };
  for (let i = 0; i < n; i++) {
    const userId = `unit-${i}`;
    const inA = isInLayer(a, userId);
    const inB = isInLayer(b, userId);
    if (inA && inB) split.both++;
    if (inA) split.a[Number(pickVariant(a, userId)!.id.endsWith('v1'))]++;
    if (inB) split.b[Number(pickVariant(b, userId)!.id.endsWith('v1'))]++;
  }
  return split;
}
