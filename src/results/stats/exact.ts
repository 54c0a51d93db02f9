/**
 * Score methods for proportions, used when an arm of a BINOMIAL comparison has no spread (no unit converted,
 * or every unit did): there the Wald variance of that arm is 0, so a Welch test or a delta-method interval
 * would treat its rate as known exactly and overstate the evidence. Wilson's score interval of such an arm
 * is not degenerate, and the comparison is built from the arms' Wilson intervals (MOVER).
 */

import type { Bounds } from './difference';

/** Wilson score interval for x/n at critical value c (c = 1.96 for 95%); exact 0 and 1 at the edges. */
export function wilsonInterval(x: number, n: number, c: number): Bounds {
  const p = x / n;
  const c2n = (c * c) / n;
  const centre = (p + c2n / 2) / (1 + c2n);
  const half = (c / (1 + c2n)) * Math.sqrt((p * (1 - p)) / n + c2n / (4 * n));
  return {
    lower: x === 0 ? 0 : Math.max(0, centre - half),
    upper: x === n ? 1 : Math.min(1, centre + half),
  };
}

/**
 * Newcombe's hybrid score interval for p2 − p1 (Newcombe 1998, method 10; statsmodels
 * `confint_proportions_2indep(method="newcomb")`): the arms' Wilson intervals combined by MOVER.
 */
export function newcombeDifference(x1: number, n1: number, x2: number, n2: number, c: number): Bounds {
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const a = wilsonInterval(x1, n1, c);
  const b = wilsonInterval(x2, n2, c);
  const d = p2 - p1;
  return {
    lower: d - Math.hypot(p2 - b.lower, a.upper - p1),
    upper: d + Math.hypot(b.upper - p2, p1 - a.lower),
  };
}

/**
 * MOVER-R interval for the ratio p2/p1 (Donner & Zou 2012, with Wilson intervals as Zou & Donner 2008 use
 * for proportions). Null when the control's interval is too wide relative to its rate (a handful of
 * conversions): the ratio is then unbounded, as Fieller's interval would be.
 */
export function moverRatio(x1: number, n1: number, x2: number, n2: number, c: number): Bounds | null {
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const den = wilsonInterval(x1, n1, c);
  const num = wilsonInterval(x2, n2, c);
  const product = p1 * p2;
  const lowerDivisor = den.upper * (2 * p1 - den.upper);
  const upperDivisor = den.lower * (2 * p1 - den.lower);
  const lowerRoot = product ** 2 - num.lower * den.upper * (2 * p2 - num.lower) * (2 * p1 - den.upper);
  const upperRoot = product ** 2 - num.upper * den.lower * (2 * p2 - num.upper) * (2 * p1 - den.lower);
  if (!(lowerDivisor > 0 && upperDivisor > 0 && lowerRoot >= 0 && upperRoot >= 0)) return null;
  return {
    lower: (product - Math.sqrt(lowerRoot)) / lowerDivisor,
    upper: (product + Math.sqrt(upperRoot)) / upperDivisor,
  };
}

/**
 * The critical value at which Newcombe's interval just reaches 0: the interval at critical value c excludes
 * 0 exactly when c is below it, so it is the statistic of the test that interval inverts (its p-value is
 * the method's tail probability beyond it). 0 when the rates are equal.
 */
export function newcombeNullCritical(x1: number, n1: number, x2: number, n2: number): number {
  const d = x2 / n2 - x1 / n1;
  if (d === 0) return 0;
  // Positive while the interval at c excludes 0; it falls as c grows and the arms' intervals widen.
  const margin = (c: number) => {
    const bounds = newcombeDifference(x1, n1, x2, n2, c);
    return d > 0 ? bounds.lower : -bounds.upper;
  };
  let low = 0;
  let high = 1;
  while (margin(high) > 0 && high < 1e6) {
    low = high;
    high *= 2;
  }
  for (let i = 0; i < 200 && high - low > 1e-12 * high; i++) {
    const mid = (low + high) / 2;
    if (margin(mid) > 0) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}
