/**
 * Independent views of what an experiment holds: row counts (to prove a call wrote, or deleted, exactly
 * what it should), a unit's stored assignment, and per-variant metrics recomputed in JavaScript from the raw event rows, to check the
 * SQL summary and the maintained aggregates against.
 */
import { expect } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { queryRows, type Db } from '../../src/db/client';
import type { VariantMetricsRow } from '../../src/aggregates/read';
import { type AssignmentRow, getAssignmentsByPairs } from '../../src/assignments/repository';
import { getVariants } from '../../src/experiments/repository';

export interface ExperimentRowCounts {
  experiments: number;
  variants: number;
  assignments: number;
  exposures: number;
  conversions: number;
  audit: number;
}

export async function rowCounts(db: Db, experimentId: string): Promise<ExperimentRowCounts> {
  const [row] = await queryRows<ExperimentRowCounts>(
    db,
    sql`SELECT (SELECT count(*) FROM experiments WHERE id = ${experimentId})::int AS experiments,
               (SELECT count(*) FROM experiment_variants WHERE experiment_id = ${experimentId})::int AS variants,
               (SELECT count(*) FROM experiment_assignments WHERE experiment_id = ${experimentId})::int AS assignments,
               (SELECT count(*) FROM experiment_exposures WHERE experiment_id = ${experimentId})::int AS exposures,
               (SELECT count(*) FROM experiment_conversions WHERE experiment_id = ${experimentId})::int AS conversions,
               (SELECT count(*) FROM audit_log WHERE entity_id = ${experimentId})::int AS audit`,
  );
  return row;
}

/** The stored assignment of a unit, or null (through the repository's batched read). */
export async function storedAssignment(
  db: Db,
  experimentId: string,
  userId: string,
): Promise<AssignmentRow | null> {
  const [row] = await getAssignmentsByPairs(db, [{ experimentId, userId }]);
  return row ?? null;
}

export interface AttributedConversion {
  userId: string;
  variantId: string;
  metricName: string;
  value: number;
  /** Inside its unit's attribution window, so counted by the aggregates. */
  counted: boolean;
}

export interface AttributedEvents {
  exposures: { userId: string; variantId: string }[];
  conversions: AttributedConversion[];
}

/**
 * An experiment's raw events, each conversion marked counted or not by the attribution rule, computed here
 * independently of the SQL (drizzle/repeatable/attribution.sql): an event's time is its occurredAt but no
 * later than its recording; a conversion counts from its unit's first exposure until the experiment
 * completed, and at most its metric's conversion window after that first exposure (both ends included). Times
 * are read in microseconds, the database's precision.
 */
export async function attributedEvents(db: Db, experimentId: string): Promise<AttributedEvents> {
  const at = sql.raw('(extract(epoch FROM least(occurred_at, recorded_at)) * 1000000)::float8');
  const exposures = await queryRows<{ user_id: string; variant_id: string; at: number }>(
    db,
    sql`SELECT user_id, variant_id::text, ${at} AS at FROM experiment_exposures WHERE experiment_id = ${experimentId}`,
  );
  const conversions = await queryRows<{
    user_id: string;
    variant_id: string;
    metric_name: string;
    value: number;
    at: number;
  }>(
    db,
    sql`SELECT user_id, variant_id::text, metric_name, value, ${at} AS at FROM experiment_conversions
         WHERE experiment_id = ${experimentId}`,
  );
  const [experiment] = await queryRows<{ end_at: number | null }>(
    db,
    sql`SELECT (extract(epoch FROM end_at) * 1000000)::float8 AS end_at FROM experiments WHERE id = ${experimentId}`,
  );
  const windows = new Map(
    (
      await queryRows<{ metric_name: string; hours: number | null }>(
        db,
        sql`SELECT metric_name, conversion_window_hours AS hours FROM experiment_metric_settings
             WHERE experiment_id = ${experimentId}`,
      )
    ).map((r) => [r.metric_name, r.hours === null ? null : Number(r.hours)]),
  );
  const end = experiment?.end_at == null ? Infinity : Number(experiment.end_at);
  const first = new Map<string, number>();
  for (const e of exposures) first.set(e.user_id, Math.min(first.get(e.user_id) ?? Infinity, Number(e.at)));
  return {
    exposures: exposures.map((e) => ({ userId: e.user_id, variantId: e.variant_id })),
    conversions: conversions.map((c) => {
      const opened = first.get(c.user_id);
      const time = Number(c.at);
      const hours = windows.get(c.metric_name) ?? null;
      const counted =
        opened !== undefined &&
        time >= opened &&
        time <= end &&
        (hours === null || time <= opened + hours * 3600e6);
      return {
        userId: c.user_id,
        variantId: c.variant_id,
        metricName: c.metric_name,
        value: Number(c.value),
        counted,
      };
    }),
  };
}

/**
 * Per variant: exposure events, distinct exposed users, conversion events counted by attribution (every
 * metric), the share of exposed users with such a conversion in that variant, and their mean value (null
 * without any).
 */
export async function recomputeMetrics(db: Db, experimentId: string): Promise<VariantMetricsRow[]> {
  const variants = await getVariants(db, experimentId);
  const events = await attributedEvents(db, experimentId);
  const conversions = events.conversions.filter((c) => c.counted);
  return variants.map((v) => {
    const exposed = events.exposures.filter((e) => e.variantId === v.id);
    const users = new Set(exposed.map((e) => e.userId));
    const converted = conversions.filter((c) => c.variantId === v.id);
    const convertedUsers = new Set(converted.filter((c) => users.has(c.userId)).map((c) => c.userId));
    return {
      experimentId,
      variantId: v.id,
      variantName: v.name,
      exposures: exposed.length,
      uniqueUsers: users.size,
      conversions: converted.length,
      conversionRate: users.size ? convertedUsers.size / users.size : 0,
      avgMetricValue: converted.length ? converted.reduce((s, c) => s + c.value, 0) / converted.length : null,
    };
  });
}

/** Counts equal exactly; rates and means to floating-point precision. */
export function expectMetricsEqual(actual: VariantMetricsRow[], expected: VariantMetricsRow[]): void {
  expect(actual.map((r) => r.variantId)).toEqual(expected.map((r) => r.variantId));
  actual.forEach((row, i) => {
    const { conversionRate, avgMetricValue, ...counts } = row;
    const { conversionRate: rate, avgMetricValue: avg, ...expectedCounts } = expected[i];
    expect(counts).toEqual(expectedCounts);
    expect(conversionRate).toBeCloseTo(rate, 12);
    if (avg === null) expect(avgMetricValue).toBeNull();
    else expect(avgMetricValue).toBeCloseTo(avg, 9);
  });
}
