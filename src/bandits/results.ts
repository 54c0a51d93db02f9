/**
 * What `results` does differently for a BANDIT: each arm's mean is weighted by period (each phase counts by
 * its share of all units, src/bandits/engine.ts) instead of pooling every unit, so arms shown mostly on
 * busy or unusual days are not credited with those days' drift. The weighted mean and its variance are
 * handed to the statistics engine as equivalent sufficient statistics (n units with that mean and a per-unit
 * variance of n × Var(mean), as GrowthBook's bandit SQL does), analysed as a MEAN.
 */
import type { Db } from '../db/client';
import type { MetricType } from '../results/stats/types';
import { periodWeightedEstimates } from './engine';
import { readPeriods } from './service';

export interface WeightedStats {
  n: number;
  sum: number;
  sumSquares: number;
}

/**
 * Per variant id, the period-weighted equivalent statistics of a metric; null when they do not apply (RATIO
 * metrics, or every assigned unit counted: the per-phase reads cover exposed units).
 */
export async function periodWeightedStats(
  db: Db,
  experimentId: string,
  variantIds: readonly string[],
  metric: { eventName: string; type: MetricType; cap: number | null; includeUnexposed: boolean },
): Promise<Map<string, WeightedStats> | null> {
  if (metric.type === 'RATIO' || metric.includeUnexposed) return null;
  const periods = await readPeriods(db, experimentId, variantIds, {
    eventName: metric.eventName,
    kind: metric.type,
    capValue: metric.cap,
  });
  const estimates = periodWeightedEstimates(periods, variantIds.length);
  return new Map(
    variantIds.map((id, i) => {
      const { n, mean, variance } = estimates[i];
      if (n === 0 || mean === null) return [id, { n: 0, sum: 0, sumSquares: 0 }];
      // Σx = n·m and Σx² = (n − 1)·s² + n·m² with s² = n·Var(mean): the engine's mean is m, its variance of
      // the mean s²/n = Var(mean).
      const perUnit = n * (variance ?? 0);
      return [id, { n, sum: n * mean, sumSquares: (n - 1) * perUnit + n * mean * mean }];
    }),
  );
}
