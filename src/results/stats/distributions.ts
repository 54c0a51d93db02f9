import gammainc from '@stdlib/math-base-special-gammainc';
import chisquare from '@stdlib/stats-base-dists-chisquare';
import normal from '@stdlib/stats-base-dists-normal';
import studentT from '@stdlib/stats-base-dists-t';

export const normalCdf = (x: number, mean = 0, sd = 1): number => normal.cdf(x, mean, sd);
export const normalPdf = (x: number, mean = 0, sd = 1): number => normal.pdf(x, mean, sd);
export const normalQuantile = (p: number, mean = 0, sd = 1): number => normal.quantile(p, mean, sd);

export const tCdf = (x: number, df: number): number => studentT.cdf(x, df);
export const tQuantile = (p: number, df: number): number => studentT.quantile(p, df);

/**
 * Upper tail P(X ≥ x), as the regularised upper incomplete gamma Q(k/2, x/2): 1 − cdf would round SRM
 * p-values below ~1e-15 to 0 and lose relative precision well before that.
 */
export const chiSquareSf = (x: number, df: number): number =>
  x <= 0 ? 1 : gammainc(x / 2, df / 2, true, true);
export const chiSquareQuantile = (p: number, df: number): number => chisquare.quantile(p, df);

/** Two-sided p-value of a t statistic; uses the lower tail so tiny p-values keep their precision. */
export const tTwoSidedPValue = (statistic: number, df: number): number =>
  Math.min(1, 2 * tCdf(-Math.abs(statistic), df));

export const normalTwoSidedPValue = (statistic: number): number =>
  Math.min(1, 2 * normalCdf(-Math.abs(statistic)));
