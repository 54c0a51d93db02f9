import { describe, expect, it } from '@jest/globals';
import chisquare from '@stdlib/stats-base-dists-chisquare';
import { inLayerRanges, inNamespace } from '../../src/assignments/bucketing';
import { type ExperimentConfig, isInLayer, pickVariant } from '../../src/assignments/service';
import type { ExperimentRow, VariantRow } from '../../src/experiments/repository';
import { readFixture } from '../support/fixtures';

const cases = readFixture<{ inNamespace: [string, string, [string, number, number], boolean][] }>(
  'growthbook-sdk-cases.json',
);

describe('GrowthBook inNamespace conformance', () => {
  it.each(cases.inNamespace)('%s', (_name, id, namespace, expected) => {
    expect(inNamespace(id, namespace)).toBe(expected);
  });
});

function layered(key: string, ranges: [number, number][], weights = [0.5, 0.5]): ExperimentConfig {
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

/** Pearson's χ² p-value of observed counts against expected shares. */
function chiSquareP(observed: number[], shares: number[]): number {
  const n = observed.reduce((a, b) => a + b, 0);
  const statistic = observed.reduce((s, o, i) => s + (o - n * shares[i]) ** 2 / (n * shares[i]), 0);
  return 1 - chisquare.cdf(statistic, observed.length - 1);
}

describe('layers: mutual exclusion over 1,000,000 units', () => {
  it('puts no unit in both halves, about half in each, each split uniform (χ² p > 0.001)', () => {
    const N = 1_000_000;
    const a = layered('exp-a', [[0, 0.5]]);
    const b = layered('exp-b', [[0.5, 1]]);
    let both = 0;
    const counts = { a: [0, 0], b: [0, 0] };
    for (let i = 0; i < N; i++) {
      const userId = `unit-${i}`;
      const inA = isInLayer(a, userId);
      const inB = isInLayer(b, userId);
      if (inA && inB) both++;
      if (inA) counts.a[Number(pickVariant(a, userId)!.id.endsWith('v1'))]++;
      if (inB) counts.b[Number(pickVariant(b, userId)!.id.endsWith('v1'))]++;
    }
    expect(both).toBe(0);
    const shareA = (counts.a[0] + counts.a[1]) / N;
    const shareB = (counts.b[0] + counts.b[1]) / N;
    expect(Math.abs(shareA - 0.5)).toBeLessThanOrEqual(0.0015);
    expect(Math.abs(shareB - 0.5)).toBeLessThanOrEqual(0.0015);
    expect(shareA + shareB).toBe(1);
    expect(chiSquareP(counts.a, [0.5, 0.5])).toBeGreaterThan(0.001);
    expect(chiSquareP(counts.b, [0.5, 0.5])).toBeGreaterThan(0.001);
  });

  it('hashes the layer independently of the experiment: the layer half says nothing of the variant', () => {
    // Same seed for the layer and the experiment would put every unit of [0, 0.5) in variant 0.
    const a = layered('exp-a', [[0, 0.5]]);
    const variants = [0, 0];
    for (let i = 0; i < 100_000; i++) {
      const userId = `u-${i}`;
      if (isInLayer(a, userId)) variants[Number(pickVariant(a, userId)!.id.endsWith('v1'))]++;
    }
    expect(chiSquareP(variants, [0.5, 0.5])).toBeGreaterThan(0.001);
  });

  it('matches GrowthBook filters semantics: start inclusive, end exclusive, several ranges', () => {
    expect(inLayerRanges('s', 'x', [[0, 1]])).toBe(true);
    expect(inLayerRanges('s', 'x', [[0, 0]])).toBe(false);
    const ids = Array.from({ length: 10_000 }, (_, i) => `r-${i}`);
    const split = ids.filter((id) =>
      inLayerRanges('s', id, [
        [0, 0.2],
        [0.6, 0.8],
      ]),
    ).length;
    expect(Math.abs(split / ids.length - 0.4)).toBeLessThan(0.02);
  });
});
