/**
 * Independent views of what an experiment holds: row counts (to prove a call wrote, or deleted, exactly
 * what it should), a unit's stored assignment, and per-variant metrics recomputed in JavaScript from the raw event rows, to check the
 * SQL summary and the maintained aggregates against.
 */
import { expect } from '@jest/globals';
import { eq, sql } from 'drizzle-orm';
import { queryRows, type Db } from '../../src/db/client';
import { experimentConversions, experimentExposures } from '../../src/db/schema';
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

/**
 * Per variant: exposure events, distinct exposed users, conversion events (every metric), the share of
 * exposed users with a conversion in that variant, and the mean conversion value (null without any).
 */
export async function recomputeMetrics(db: Db, experimentId: string): Promise<VariantMetricsRow[]> {
  const variants = await getVariants(db, experimentId);
  const exposures = await db
    .select({ variantId: experimentExposures.variantId, userId: experimentExposures.userId })
    .from(experimentExposures)
    .where(eq(experimentExposures.experimentId, experimentId));
  const conversions = await db
    .select({
      variantId: experimentConversions.variantId,
      userId: experimentConversions.userId,
      value: experimentConversions.value,
    })
    .from(experimentConversions)
    .where(eq(experimentConversions.experimentId, experimentId));
  return variants.map((v) => {
    const exposed = exposures.filter((e) => e.variantId === v.id);
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
