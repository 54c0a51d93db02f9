/**
 * SQL for an experiment's per-metric settings: today the conversion window (hours after a unit's first
 * exposure during which its conversions of the metric count). A listed metric definition's window is the
 * default (drizzle/repeatable/metric_definitions.sql, experiment_metric_windows); a row here overrides it.
 */
import { asc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/client';
import { experimentMetricSettings } from '../db/schema';

export type MetricSettingRow = typeof experimentMetricSettings.$inferSelect;

export interface MetricSettingParams {
  metric: string;
  conversionWindowHours: number | null;
}

const t = experimentMetricSettings;

/** Replaces every setting of an experiment with these. */
export async function replaceMetricSettings(
  db: Db,
  experimentId: string,
  settings: readonly MetricSettingParams[],
): Promise<void> {
  await db.delete(t).where(eq(t.experimentId, experimentId));
  if (settings.length === 0) return;
  await db.insert(t).values(
    settings.map((s) => ({
      experimentId,
      metricName: s.metric,
      conversionWindowHours: s.conversionWindowHours,
    })),
  );
}

/** Settings of some experiments, by metric name. */
export async function getMetricSettingsByExperimentIds(
  db: Db,
  ids: readonly string[],
): Promise<MetricSettingRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(t)
    .where(inArray(t.experimentId, [...ids]))
    .orderBy(asc(t.experimentId), asc(t.metricName));
}
