import { describe, expect, it } from '@jest/globals';
import chisquare from '@stdlib/stats-base-dists-chisquare';
import { inLayerRanges, inNamespace } from '../../src/assignments/bucketing';
import { isInLayer, pickVariant } from '../../src/assignments/service';
import { readFixture } from '../support/fixtures';
import { runNative } from '../support/native';
import { type LayerSplit, layered } from './layers-split';

const cases = readFixture<{ inNamespace: [string, string, [string, number, number], boolean][] }>(
  'growthbook-sdk-cases.json',
);

describe('GrowthBook inNamespace conformance', () => {
  it.each(cases.inNamespace)('%s', (_name, id, namespace, expected) => {
    expect(inNamespace(id, namespace)).toBe(expected);
  });
});

/** Pearson's χ² p-value of observed counts against expected shares. */
function chiSquareP(observed: number[], shares: number[]): number {
  const n = observed.reduce((a, b) => a + b, 0);
  const statistic = observed.reduce((s, o, i) => s + (o - n * shares[i]) ** 2 / (n * shares[i]), 0);
  return 1 - chisquare.cdf(statistic, observed.length - 1);
}

describe('layers: mutual exclusion over 1,000,000 units', () => {
  it('puts no unit in both halves, about half in each, each split uniform (χ² p > 0.001)', async () => {
    const N = 1_000_000;
    const counts = await runNative<LayerSplit>(
      new URL('./layers-split.ts', import.meta.url),
      'splitUnits',
      N,
    );
    expect(counts.both).toBe(0);
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
