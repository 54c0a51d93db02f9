import { describe, expect, it } from '@jest/globals';
import chisquare from '@stdlib/stats-base-dists-chisquare';
import {
  bucket,
  bucketWeights,
  chooseVariant,
  fnv1a32,
  getBucketRanges,
  getEqualWeights,
  growthBookVariation,
  hash,
  hashV2,
  normaliseWeights,
  runExperiment,
  type RunnableExperiment,
  type BucketRange,
  type BucketingExperiment,
} from '../../src/assignments/bucketing';
import { hashSeedOf, pickVariant, type ExperimentConfig } from '../../src/assignments/service';
import { readFixture } from '../support/fixtures';

/** GrowthBook's own SDK conformance cases (see the file's `source`); each case is [name?, input…, expected]. */
const cases = readFixture<{
  hash: [string, string, number, number | null][];
  getBucketRange: [string, [number, number, number[] | null], BucketRange[]][];
  chooseVariation: [string, number, BucketRange[], number][];
  getEqualWeights: [number, number[]][];
  run: [string, Record<string, any>, Record<string, any>, unknown, boolean, boolean][];
}>('growthbook-sdk-cases.json');

const users = (n: number, prefix = 'user') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** FNV-1a computed with BigInt arithmetic: an independent check of the Math.imul / unsigned handling. */
function fnv1a32BigInt(value: string): number {
  let h = 0x811c9dc5n;
  for (let i = 0; i < value.length; i++) {
    h = ((h ^ BigInt(value.charCodeAt(i))) * 0x01000193n) % 0x1_0000_0000n;
  }
  return Number(h);
}

function config(
  weights: number[],
  trafficAllocation = 1,
  overrides: { key?: string; hashSeed?: string | null } = {},
): ExperimentConfig {
  const experiment = {
    id: '00000000-0000-4000-8000-000000000001',
    key: overrides.key ?? 'pure-experiment',
    hashSeed: overrides.hashSeed ?? null,
    trafficAllocation,
  } as ExperimentConfig['experiment'];
  const variants = weights.map((weight, position) => ({
    id: `00000000-0000-4000-8000-00000000010${position}`,
    experimentId: experiment.id,
    name: `v${position}`,
    weight,
    position,
  })) as ExperimentConfig['variants'];
  return { experiment, variants };
}

/** Upper-tail p-value of Pearson's chi-square on a 2×2 table (1 degree of freedom). */
function chiSquare2x2(table: [[number, number], [number, number]]): number {
  const total = table[0][0] + table[0][1] + table[1][0] + table[1][1];
  let statistic = 0;
  for (let r = 0; r < 2; r++) {
    for (let c = 0; c < 2; c++) {
      const expected = ((table[r][0] + table[r][1]) * (table[0][c] + table[1][c])) / total;
      statistic += (table[r][c] - expected) ** 2 / expected;
    }
  }
  return 1 - chisquare.cdf(statistic, 1);
}

describe('fnv1a32', () => {
  it('matches the published FNV-1a 32-bit vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('hashes UTF-16 code units and stays unsigned', () => {
    for (const value of ['€uro', 'naïve', '😀 emoji', '日本語のユーザー', 'device-0001']) {
      const h = fnv1a32(value);
      expect(h).toBe(fnv1a32BigInt(value));
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(2 ** 32);
    }
  });
});

describe('hashV2', () => {
  it.each(cases.hash.filter((c) => c[2] === 2))(
    'hashV2(%j, %j) (GrowthBook case, version %d) = %j',
    (seed, value, _v, expected) => {
      expect(hashV2(seed, value)).toBe(expected);
    },
  );

  it('is a 4-decimal number in [0, 1)', () => {
    const bad = users(2000)
      .map((u) => hashV2('seed', u))
      .filter((n) => !(n >= 0 && n < 1) || Math.abs(Math.round(n * 10000) - n * 10000) > 1e-6);
    expect(bad).toEqual([]);
  });
});

describe('GrowthBook conformance cases', () => {
  it.each(cases.hash)('hash(%j, %j, version %d) = %j', (seed, value, version, expected) => {
    expect(hash(seed, value, version)).toBe(expected);
  });

  it.each(cases.getBucketRange)(
    'getBucketRanges: %s',
    (_name, [numVariations, coverage, weights], expected) => {
      const ranges = getBucketRanges(numVariations, coverage, weights);
      expect(ranges).toHaveLength(expected.length);
      // The published ranges are rounded (0.9999 for 0.4 + 0.5999); GrowthBook's own test rounds too.
      ranges.forEach(([start, end], i) => {
        expect(start).toBeCloseTo(expected[i][0], 10);
        expect(end).toBeCloseTo(expected[i][1], 10);
      });
    },
  );

  it.each(cases.chooseVariation)('chooseVariant: %s', (_name, n, ranges, expected) => {
    expect(chooseVariant(n, ranges)).toBe(expected);
  });

  it.each(cases.getEqualWeights)('getEqualWeights(%d)', (n, expected) => {
    expect(getEqualWeights(n).map((w) => Math.round(w * 1e8) / 1e8)).toEqual(expected);
  });

  // `run` cases are full SDK evaluations. runExperiment models what an experiment carries (targeting,
  // layers as filters, namespaces, ranges, force, another hash attribute); cases that need the SDK's
  // context (url, forcedVariations, qaMode, enabled, prerequisite features, saved groups) test features
  // of the SDK the service has no counterpart for.
  const contextFields = new Set(['attributes']);
  const experimentFields = new Set([
    'key',
    'variations',
    'weights',
    'coverage',
    'seed',
    'hashVersion',
    'active',
    'hashAttribute',
    'condition',
    'filters',
    'namespace',
    'ranges',
    'force',
  ]);
  const applicable = cases.run.filter(
    ([, context, experiment]) =>
      Object.keys(context).every((k) => contextFields.has(k)) &&
      Object.keys(experiment).every((k) => experimentFields.has(k)),
  );

  it('applies to every run case but those that need the SDK context', () => {
    const skipped = cases.run.filter((c) => !applicable.includes(c)).map(([name]) => name);
    expect(skipped.sort()).toEqual(
      [
        'globally disabled',
        'querystring force',
        'querystring force with inactive',
        'Force variation from context',
        'Skips experiments in QA mode',
        'Works in QA mode if forced in context',
        'Works in QA mode if forced in experiment',
        'Prerequisite condition passes',
        'Prerequisite condition fails',
        'SavedGroups correctly pulled from context for experiment',
      ].sort(),
    );
  });

  it.each(applicable)('run: %s', (_name, context, experiment, value, inExperiment) => {
    const result = runExperiment(experiment as RunnableExperiment, context.attributes ?? {});
    expect(result.inExperiment).toBe(inExperiment);
    expect(experiment.variations[result.variation]).toEqual(value);
    // Without the fields only runExperiment models, growthBookVariation (what bucketing uses) agrees.
    if (
      Object.keys(experiment).every(
        (k) => !['hashAttribute', 'condition', 'filters', 'namespace', 'ranges', 'force'].includes(k),
      )
    ) {
      const index = growthBookVariation(experiment as BucketingExperiment, context.attributes?.id);
      expect(index >= 0).toBe(inExperiment);
    }
  });
});

describe('getBucketRanges', () => {
  it('replaces weights that do not sum to ~1, or do not match the variation count, by equal weights', () => {
    const equal = [
      [0, 0.5],
      [0.5, 1],
    ];
    expect(getBucketRanges(2, 1, [0.7, 0.7])).toEqual(equal);
    expect(getBucketRanges(2, 1, [0.5, 0.3, 0.2])).toEqual(equal);
    expect(getBucketRanges(2, 1, [0.6, 0.4])).toEqual([
      [0, 0.6],
      [0.6, 1],
    ]);
  });

  it('clamps coverage to [0, 1]', () => {
    expect(getBucketRanges(2, 1.5)).toEqual(getBucketRanges(2, 1));
    expect(getBucketRanges(2, -0.5)).toEqual(getBucketRanges(2, 0));
  });
});

describe('chooseVariant', () => {
  const ranges = getBucketRanges(2, 0.5);
  it('returns the range containing n, start inclusive and end exclusive', () => {
    expect(chooseVariant(0, ranges)).toBe(0);
    expect(chooseVariant(0.2499, ranges)).toBe(0);
    expect(chooseVariant(0.5, ranges)).toBe(1);
  });
  it('returns -1 between ranges (not enrolled)', () => {
    expect(chooseVariant(0.25, ranges)).toBe(-1);
    expect(chooseVariant(0.9, ranges)).toBe(-1);
  });
});

describe('bucketWeights (what bucketing uses and the API publishes for SDKs)', () => {
  it('keeps weights GrowthBook accepts (sum within [0.99, 1.01]) exactly as stored', () => {
    expect(0.6 + 0.3 + 0.1).toBe(0.9999999999999999);
    expect(bucketWeights([0.6, 0.3, 0.1])).toEqual([0.6, 0.3, 0.1]);
    expect(bucketWeights([0.495, 0.5])).toEqual([0.495, 0.5]);
    expect(bucketWeights([0.5, 0, 0.505])).toEqual([0.5, 0, 0.505]);
  });

  it('scales any other relative weights to sum 1, and gives null when none has weight', () => {
    expect(bucketWeights([2, 1, 1])).toEqual([0.5, 0.25, 0.25]);
    expect(bucketWeights([80, 20])).toEqual([0.8, 0.2]);
    expect(bucketWeights([0.3, 0.3])).toEqual([0.5, 0.5]);
    expect(bucketWeights([0, 0])).toBeNull();
  });
});

describe('bucket where GrowthBook and a rescaled range disagree', () => {
  it('puts hashes 0.6 and 0.9 in the variants GrowthBook does for weights 0.6 / 0.3 / 0.1', () => {
    // The reported users: their hashes sit exactly on the range edges that rescaling moved by one ulp.
    const weights = [0.6, 0.3, 0.1];
    expect(hashV2('interop-repro', 'repro-4996')).toBe(0.6);
    expect(hashV2('interop-repro', 'repro-4359')).toBe(0.9);
    expect(bucket({ seed: 'interop-repro', userId: 'repro-4996', trafficAllocation: 1, weights })).toBe(1);
    expect(bucket({ seed: 'interop-repro', userId: 'repro-4359', trafficAllocation: 1, weights })).toBe(2);
  });

  it('leaves hashes at or above 0.995 unenrolled for weights 0.495 / 0.5, as GrowthBook does', () => {
    const weights = [0.495, 0.5];
    const top = users(20_000).filter((u) => hashV2('sum-0.995', u) >= 0.995);
    expect(top.length).toBeGreaterThan(50);
    for (const u of top)
      expect(bucket({ seed: 'sum-0.995', userId: u, trafficAllocation: 1, weights })).toBe(-1);
  });
});

describe('normaliseWeights', () => {
  it('scales weights to sum 1 and refuses a zero or non-finite total', () => {
    expect(normaliseWeights([4, 1])).toEqual([0.8, 0.2]);
    expect(normaliseWeights([0, 0])).toBeNull();
    expect(normaliseWeights([])).toBeNull();
    expect(normaliseWeights([Number.POSITIVE_INFINITY, 1])).toBeNull();
  });
});

describe('bucket and pickVariant', () => {
  it('puts a user in the variant whose GrowthBook range holds hash_v2(seed, userId)', () => {
    // Weights 8:2 normalise to 0.8/0.2; at coverage 0.3 the ranges are [0, 0.24) and [0.8, 0.86),
    // computed with GrowthBook's float arithmetic so edge hashes land the same way.
    const outcomes = new Set<number>();
    const mismatches: string[] = [];
    for (const u of users(500)) {
      const n = hashV2('checkout-flow', u);
      const expected = n < 0.3 * 0.8 ? 0 : n >= 0.8 && n < 0.8 + 0.3 * 0.2 ? 1 : -1;
      const actual = bucket({ seed: 'checkout-flow', userId: u, trafficAllocation: 0.3, weights: [8, 2] });
      if (actual !== expected) mismatches.push(`${u}: hash ${n} gave ${actual}, expected ${expected}`);
      outcomes.add(actual);
    }
    expect(mismatches).toEqual([]);
    expect([...outcomes].sort()).toEqual([-1, 0, 1]);
  });

  it('uses the hash seed when set and the experiment key otherwise', () => {
    expect(hashSeedOf({ key: 'my-key', hashSeed: null })).toBe('my-key');
    expect(hashSeedOf({ key: 'my-key', hashSeed: 'shared-seed' })).toBe('shared-seed');
    const seeded = config([1, 1], 1, { key: 'other-key', hashSeed: 'shared-seed' });
    for (const u of users(200)) {
      const expected = hashV2('shared-seed', u) < 0.5 ? 0 : 1;
      expect(pickVariant(seeded, u)?.position).toBe(expected);
    }
  });

  it('splits 100,000 users 80/20 within one percentage point', () => {
    const cfg = config([4, 1]);
    const counts = [0, 0];
    for (const u of users(100_000)) counts[pickVariant(cfg, u)!.position]++;
    expect(Math.abs(counts[0] / 100_000 - 0.8)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(counts[1] / 100_000 - 0.2)).toBeLessThanOrEqual(0.01);
  });

  it('enrolls 30% ± 1 point at traffic allocation 0.3, split evenly among the enrolled', () => {
    const cfg = config([1, 1], 0.3);
    const counts = [0, 0];
    let outside = 0;
    for (const u of users(100_000)) {
      const v = pickVariant(cfg, u);
      if (v) counts[v.position]++;
      else outside++;
    }
    const enrolled = counts[0] + counts[1];
    expect(enrolled + outside).toBe(100_000);
    expect(Math.abs(enrolled / 100_000 - 0.3)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(counts[0] / enrolled - 0.5)).toBeLessThanOrEqual(0.02);
  });

  it('never picks a variant of weight 0, and nobody is enrolled when all weights are 0', () => {
    const cfg = config([1, 0, 1]);
    const seen = new Set<number>();
    for (const u of users(5000)) seen.add(pickVariant(cfg, u)!.position);
    expect([...seen].sort()).toEqual([0, 2]);
    expect(users(100).every((u) => pickVariant(config([0, 0]), u) === null)).toBe(true);
  });

  it('keeps a user in the same bucket every time', () => {
    const cfg = config([1, 1, 1], 0.7);
    for (const u of users(200)) expect(pickVariant(cfg, u)).toBe(pickVariant(cfg, u));
  });

  it('buckets users independently in two experiments with different keys (chi-square, 20,000 users)', () => {
    const a = config([1, 1], 1, { key: 'homepage-rail' });
    const b = config([1, 1], 1, { key: 'search-ranking' });
    const table: [[number, number], [number, number]] = [
      [0, 0],
      [0, 0],
    ];
    for (const u of users(20_000)) table[pickVariant(a, u)!.position][pickVariant(b, u)!.position]++;
    expect(chiSquare2x2(table)).toBeGreaterThan(0.001);

    // The same test catches the seed system's bug: one hash for every experiment correlates them fully.
    const sameSeed = config([1, 1], 1, { key: 'search-ranking', hashSeed: 'homepage-rail' });
    const correlated: [[number, number], [number, number]] = [
      [0, 0],
      [0, 0],
    ];
    for (const u of users(20_000))
      correlated[pickVariant(a, u)!.position][pickVariant(sameSeed, u)!.position]++;
    expect(chiSquare2x2(correlated)).toBeLessThan(1e-10);
  });
});
