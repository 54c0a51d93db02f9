/**
 * CUPED by seeded simulation: units whose metric x and pre-period covariate c correlate with ρ = 0.7 give
 * intervals √(1 − ρ²) ≈ 0.714 as wide as unadjusted ones; A/A experiments with CUPED on keep the false-positive
 * rate at 5% ± 1; the pre-period imbalance check fires when the arms' covariate means truly differ and stays
 * quiet (≈ its 0.1% level) in A/A. The rates are printed.
 */
import { describe, expect, it } from '@jest/globals';
import {
  analyze,
  COVARIATE_IMBALANCE_P_VALUE,
  type StatsMethod,
  type VariantInput,
} from '../../../src/results/stats';
import { normalSource, prng } from './simulation';

const { sqrt } = Math;

/** One arm of n units: c ~ N(50 + shift, 10²), x = 50 + lift + 10·(ρ·z_c + √(1 − ρ²)·z). */
function arm(
  normal: () => number,
  id: string,
  n: number,
  rho: number,
  options: { lift?: number; shift?: number } = {},
): VariantInput {
  let sum = 0;
  let sumSquares = 0;
  let cSum = 0;
  let cSquares = 0;
  let products = 0;
  const k = sqrt(1 - rho * rho);
  for (let i = 0; i < n; i++) {
    const zc = normal();
    const c = 50 + (options.shift ?? 0) + 10 * zc;
    const x = 50 + (options.lift ?? 0) + 10 * (rho * zc + k * normal());
    sum += x;
    sumSquares += x * x;
    cSum += c;
    cSquares += c * c;
    products += x * c;
  }
  return {
    id,
    weight: 1,
    isControl: id === 'a',
    n,
    sum,
    sumSquares,
    covariate: { sum: cSum, sumSquares: cSquares, sumProducts: products },
  };
}

const unadjusted = (v: VariantInput): VariantInput => ({ ...v, covariate: null });
const width = (r: ReturnType<typeof analyze>) =>
  r.variants[1].absoluteEffect!.upper - r.variants[1].absoluteEffect!.lower;

const percent = (x: number) => `${(100 * x).toFixed(2)}%`;

describe('CUPED by seeded simulation', () => {
  it('ρ = 0.7: the interval shrinks to √(1 − ρ²) ≈ 0.714 of its unadjusted width', () => {
    const normal = normalSource(prng(20261201));
    const RUNS = 300;
    let ratios = 0;
    let reduction = 0;
    for (let r = 0; r < RUNS; r++) {
      const variants = [arm(normal, 'a', 1000, 0.7), arm(normal, 'b', 1000, 0.7, { lift: 1 })];
      const adjusted = analyze({ metricType: 'MEAN', method: 'FREQUENTIST', variants });
      const plain = analyze({
        metricType: 'MEAN',
        method: 'FREQUENTIST',
        variants: variants.map(unadjusted),
      });
      ratios += width(adjusted) / width(plain);
      reduction += adjusted.variants[1].varianceReduction!;
    }
    const ratio = ratios / RUNS;
    console.log(
      `CUPED ρ = 0.7: mean interval width ratio ${ratio.toFixed(4)} (√(1 − ρ²) = ${sqrt(1 - 0.49).toFixed(4)}), mean varianceReduction ${(reduction / RUNS).toFixed(4)} (ρ² = 0.49), ${RUNS} runs`,
    );
    expect(Math.abs(ratio - sqrt(1 - 0.49))).toBeLessThanOrEqual(0.02);
    expect(Math.abs(reduction / RUNS - 0.49)).toBeLessThanOrEqual(0.03);
  });

  it.each(['FREQUENTIST', 'SEQUENTIAL'] as StatsMethod[])(
    'A/A with CUPED on (%s): false positives 5% ± 1 (sequential: at most), the imbalance warning quiet',
    (method) => {
      const normal = normalSource(prng(method === 'FREQUENTIST' ? 7 : 8));
      const RUNS = 5000;
      let flagged = 0;
      let imbalanced = 0;
      for (let r = 0; r < RUNS; r++) {
        const variants = [arm(normal, 'a', 200, 0.7), arm(normal, 'b', 200, 0.7)];
        const t = analyze({ metricType: 'MEAN', method, variants, sequentialTuning: 400 }).variants[1];
        expect(t.cupedTheta).not.toBeNull();
        if (t.significant) flagged++;
        if (t.covariateBalancePValue! < COVARIATE_IMBALANCE_P_VALUE) imbalanced++;
      }
      const rate = flagged / RUNS;
      console.log(
        `CUPED A/A (${method}, ${RUNS} runs): false-positive rate ${percent(rate)}; imbalance warning ${percent(imbalanced / RUNS)}`,
      );
      // Always-valid intervals are conservative at a single look: at most 5% + 1.
      if (method === 'FREQUENTIST') expect(Math.abs(rate - 0.05)).toBeLessThanOrEqual(0.01);
      else expect(rate).toBeLessThanOrEqual(0.06);
      expect(imbalanced / RUNS).toBeLessThanOrEqual(0.004);
    },
  );

  it('the imbalance warning fires when the arms’ pre-period means truly differ', () => {
    const normal = normalSource(prng(99));
    const RUNS = 500;
    let fired = 0;
    for (let r = 0; r < RUNS; r++) {
      // Covariates shifted by 0.3 standard deviations in the treatment (e.g. measured after exposure).
      const variants = [arm(normal, 'a', 1000, 0.7), arm(normal, 'b', 1000, 0.7, { shift: 3 })];
      const t = analyze({ metricType: 'MEAN', method: 'FREQUENTIST', variants }).variants[1];
      if (t.covariateBalancePValue! < COVARIATE_IMBALANCE_P_VALUE) fired++;
    }
    console.log(
      `CUPED imbalance (0.3 sd shift, 1000 units per arm, ${RUNS} runs): warning ${percent(fired / RUNS)}`,
    );
    expect(fired / RUNS).toBeGreaterThanOrEqual(0.99);
  });
});
