/**
 * Seeded simulation of experiments as per-arm sufficient statistics (n, Σx, Σx²), for the A/A and power tests.
 * Binomial arms draw conversion counts directly; revenue-like arms draw their buyers' values (lognormal), so
 * Σx and Σx² come from real units. Everything is deterministic for a given seed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SufficientStats } from '../../../src/results/stats';

import type { Random } from '../../../src/results/stats/random';

export type { Random };

// Module-level bindings: under Jest's VM context every `Math.…` is a slow global lookup, which made these
// tight loops ten times slower than under plain Node.
const { exp, floor, log, log1p, min, PI, sqrt } = Math;

import { normalSource, prng } from '../../../src/results/stats/random';

export { normalSource, prng };

/** ln k!, exact summation below 30 and Stirling's series (error < 1e-15 relative) above. */
function logFactorial(k: number): number {
  if (k < 30) {
    let acc = 0;
    for (let i = 2; i <= k; i++) acc += log(i);
    return acc;
  }
  const x = k + 1;
  return (x - 0.5) * log(x) - x + 0.5 * log(2 * PI) + 1 / (12 * x) - 1 / (360 * x ** 3) + 1 / (1260 * x ** 5);
}

/** The Binomial(n, p) probabilities above `floor`, for exact enumeration of small experiments. */
export function binomialPmf(n: number, p: number, floor = 1e-12): { k: number; probability: number }[] {
  const out: { k: number; probability: number }[] = [];
  for (let k = 0; k <= n; k++) {
    const probability = exp(
      logFactorial(n) - logFactorial(k) - logFactorial(n - k) + k * log(p) + (n - k) * log1p(-p),
    );
    if (probability > floor) out.push({ k, probability });
  }
  return out;
}

/**
 * Binomial(n, p), exactly, by inversion that walks outwards from the mode (m, m+1, m−1, m+2, …): any fixed
 * order of the support gives an exact draw, and this one needs about 2σ probability evaluations.
 */
export function binomial(random: Random, n: number, p: number): number {
  if (p <= 0 || n === 0) return 0;
  if (p >= 1) return n;
  const mode = min(n, floor((n + 1) * p));
  const odds = p / (1 - p);
  const atMode = exp(
    logFactorial(n) - logFactorial(mode) - logFactorial(n - mode) + mode * log(p) + (n - mode) * log1p(-p),
  );
  let u = random() - atMode;
  if (u <= 0) return mode;
  let up = mode;
  let down = mode;
  let pUp = atMode;
  let pDown = atMode;
  for (;;) {
    if (up < n) {
      pUp *= ((n - up) / (up + 1)) * odds;
      up++;
      u -= pUp;
      if (u <= 0) return up;
    }
    if (down > 0) {
      pDown *= down / ((n - down + 1) * odds);
      down--;
      u -= pDown;
      if (u <= 0) return down;
    }
    // Rounding can leave a sliver of probability once both tails are exhausted: it belongs to the mode.
    if ((up >= n || pUp < 1e-300) && (down <= 0 || pDown < 1e-300)) return mode;
  }
}

/** Draws `units` more units of one arm and adds them to its running statistics. */
export type ArmModel = (random: Random, units: number, stats: SufficientStats) => void;

export const conversionArm =
  (rate: number): ArmModel =>
  (random, units, stats) => {
    const converted = binomial(random, units, rate);
    stats.n += units;
    stats.sum += converted;
    stats.sumSquares += converted;
  };

/** One normal stream per uniform stream, so the polar method's spare draws are not wasted. */
const normals = new WeakMap<Random, () => number>();

/**
 * Revenue-like: a share of units buy, each buyer spends exp(N(μ, σ²)); everyone else 0. `shift` adds a
 * constant to every unit (a pure shift of the mean, the planner's model for MEAN metrics).
 */
export const revenueArm =
  (buyerRate: number, mu: number, sigma: number, shift = 0): ArmModel =>
  (random, units, stats) => {
    const normal = normals.get(random) ?? normals.set(random, normalSource(random)).get(random)!;
    const buyers = binomial(random, units, buyerRate);
    let sum = 0;
    let sumSquares = 0;
    for (let i = 0; i < buyers; i++) {
      const x = exp(mu + sigma * normal());
      sum += x;
      sumSquares += x * x;
    }
    // Σ(x + s) and Σ(x + s)² over all `units`, zeros included.
    stats.n += units;
    stats.sum += sum + units * shift;
    stats.sumSquares += sumSquares + 2 * shift * sum + units * shift * shift;
  };

/** Mean and per-unit variance of the revenue-like arm, for planning. */
export function revenueMoments(buyerRate: number, mu: number, sigma: number) {
  const mean = buyerRate * exp(mu + sigma ** 2 / 2);
  const secondMoment = buyerRate * exp(2 * mu + 2 * sigma ** 2);
  return { mean, variance: secondMoment - mean ** 2 };
}

export const emptyStats = (): SufficientStats => ({ n: 0, sum: 0, sumSquares: 0 });

/** Monte-Carlo standard error of a rate estimated from `runs` independent runs. */
export const monteCarloSe = (rate: number, runs: number) => sqrt((rate * (1 - rate)) / runs);

/** Percent with one decimal, as the README prints it. */
export const percent = (rate: number) => `${(100 * rate).toFixed(1)}%`;

/**
 * The A/A table of README.md's Statistics section, as { scenario: { column: cell } }: the tests check that
 * every figure they measure is the one published there.
 */
export function readmeTable(marker: string): Record<string, Record<string, string>> {
  const readme = readFileSync(path.resolve(process.cwd(), 'README.md'), 'utf8');
  const start = readme.indexOf(`<!-- ${marker} -->`);
  if (start < 0) throw new Error(`README.md has no <!-- ${marker} --> table`);
  const lines = readme
    .slice(start)
    .split('\n')
    .slice(1)
    .filter((line, i, all) => line.startsWith('|') && all.slice(0, i).every((l) => l.startsWith('|')));
  const cells = (line: string) =>
    line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
  const header = cells(lines[0]);
  return Object.fromEntries(
    lines.slice(2).map((line) => {
      const row = cells(line);
      return [row[0], Object.fromEntries(header.map((h, i) => [h, row[i]]))];
    }),
  );
}
