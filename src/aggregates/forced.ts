/**
 * Forced units (QA overrides) in the numbers, only when asked (`includeForced: true`). Their events live in
 * experiment_forced_events, never in the maintained aggregates, so the randomised numbers and the sample-ratio
 * check never see them. A caller that asks for them gets the same per-variant statistics as the aggregates
 * hold, with the forced units' per-unit totals added: the same attribution rule (conversion_in_window from
 * the unit's first exposure, the experiment's end and the metric's conversion window), read from the rows
 * (at most a few thousand units: overrides are capped per experiment).
 */
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { jsonParam, type Db } from '../db/client';
import { dbNumber, parseRows } from '../db/rows';
import type { VariantMetricsRow, VariantStatsRow } from './read';

/** One forced unit's total of one event name inside its attribution window (`events` counted events). */
const unitTotalRow = z.object({
  userId: z.string(),
  variantId: z.string(),
  metricName: z.string(),
  events: dbNumber,
  total: dbNumber,
});
/** Every event of a name recorded for a variant's forced units, counted or not. */
const recordedRow = z.object({ variantId: z.string(), metricName: z.string(), events: dbNumber });

export interface ForcedUnits {
  /** Exposed forced units per variant: exposure events and units. */
  exposed: Map<string, { units: number; events: number }>;
  /** Forced units with any event per variant (the assigned units of an `includeUnexposed` analysis). */
  known: Map<string, number>;
  /** Per event name: each exposed forced unit's counted total, with its variant. */
  totals: Map<string, { userId: string; variantId: string; events: number; total: number }[]>;
  /** Per event name and variant: events recorded, counted or not. */
  recorded: Map<string, Map<string, number>>;
}

/** The per-unit totals of an experiment's forced units for some event names: three statements. */
export async function getForcedUnits(
  db: Db,
  experimentId: string,
  eventNames: readonly string[],
): Promise<ForcedUnits> {
  const [exposures, totals, recorded] = await Promise.all([
    parseRows(
      db,
      sql`/* getForcedExposures */
        WITH u AS (
          -- A unit's variant is that of its earliest exposure (else its earliest event), as below.
          SELECT user_id, (array_agg(variant_id ORDER BY kind <> 'exposure', occurred_at, variant_id))[1] AS variant_id,
                 count(*) FILTER (WHERE kind = 'exposure') AS exposures
            FROM experiment_forced_events
           WHERE experiment_id = ${experimentId}
           GROUP BY user_id
        )
        SELECT variant_id::text AS "variantId", count(*) FILTER (WHERE exposures > 0) AS "units",
               sum(exposures) AS "events", count(*) AS "known"
          FROM u
         GROUP BY variant_id`,
      z.object({ variantId: z.string(), units: dbNumber, events: dbNumber, known: dbNumber }),
    ),
    parseRows(
      db,
      sql`/* getForcedUnitTotals */
        WITH x AS (
          -- A unit's variant is that of its earliest exposure (an override moved later keeps the first).
          SELECT user_id, (array_agg(variant_id ORDER BY occurred_at, variant_id))[1] AS variant_id,
                 min(event_time(occurred_at, recorded_at)) AS first_at
            FROM experiment_forced_events
           WHERE experiment_id = ${experimentId} AND kind = 'exposure'
           GROUP BY user_id
        )
        SELECT c.user_id AS "userId", x.variant_id::text AS "variantId", c.metric_name AS "metricName",
               count(*) AS "events", sum(c.value) AS "total"
          FROM experiment_forced_events c
          JOIN x ON x.user_id = c.user_id
          JOIN experiments e ON e.id = c.experiment_id
          LEFT JOIN experiment_metric_windows m
            ON m.experiment_id = c.experiment_id AND m.metric_name = c.metric_name
         WHERE c.experiment_id = ${experimentId} AND c.kind = 'conversion'
           AND c.metric_name IN (SELECT value FROM json_array_elements_text(${jsonParam(eventNames)}))
           AND conversion_in_window(event_time(c.occurred_at, c.recorded_at), x.first_at, e.end_at,
                                    m.conversion_window_hours)
         GROUP BY c.user_id, x.variant_id, c.metric_name`,
      unitTotalRow,
    ),
    parseRows(
      db,
      sql`/* getForcedRecorded */
        SELECT variant_id::text AS "variantId", metric_name AS "metricName", count(*) AS "events"
          FROM experiment_forced_events
         WHERE experiment_id = ${experimentId} AND kind = 'conversion'
           AND metric_name IN (SELECT value FROM json_array_elements_text(${jsonParam(eventNames)}))
         GROUP BY variant_id, metric_name`,
      recordedRow,
    ),
  ]);
  const forced: ForcedUnits = {
    exposed: new Map(exposures.map((r) => [r.variantId, { units: r.units, events: r.events }])),
    known: new Map(exposures.map((r) => [r.variantId, r.known])),
    totals: new Map(eventNames.map((name) => [name, []])),
    recorded: new Map(eventNames.map((name) => [name, new Map()])),
  };
  for (const { metricName, ...unit } of totals) forced.totals.get(metricName)?.push(unit);
  for (const r of recorded) forced.recorded.get(r.metricName)?.set(r.variantId, r.events);
  return forced;
}

/** A metric's per-variant rows with the forced units added (every forced unit with a total is exposed). */
export function addForcedStats(
  rows: readonly VariantStatsRow[],
  forced: ForcedUnits,
  eventName: string,
): VariantStatsRow[] {
  const units = forced.totals.get(eventName) ?? [];
  return rows.map((r) => {
    const mine = units.filter((u) => u.variantId === r.variantId);
    const sum = mine.reduce((acc, u) => acc + u.total, 0);
    const sumSquares = mine.reduce((acc, u) => acc + u.total * u.total, 0);
    const exposed = forced.exposed.get(r.variantId) ?? { units: 0, events: 0 };
    return {
      ...r,
      exposedUnits: r.exposedUnits + exposed.units,
      exposures: r.exposures + exposed.events,
      exposedMetricUnits: r.exposedMetricUnits + mine.length,
      exposedSum: r.exposedSum + sum,
      exposedSumSquares: r.exposedSumSquares + sumSquares,
      metricUnits: r.metricUnits + mine.length,
      sum: r.sum + sum,
      sumSquares: r.sumSquares + sumSquares,
      metricEvents: r.metricEvents + mine.reduce((acc, u) => acc + u.events, 0),
      convertedUnits: r.convertedUnits + mine.filter((u) => u.total > 0).length,
      recordedEvents: r.recordedEvents + (forced.recorded.get(eventName)?.get(r.variantId) ?? 0),
      assignedUnits: r.assignedUnits === null ? null : r.assignedUnits + (forced.known.get(r.variantId) ?? 0),
    };
  });
}

/** Σ numerator total × denominator total over forced units, per variant (RATIO metrics), added to `products`. */
export function addForcedProducts(
  products: ReadonlyMap<string, number>,
  forced: ForcedUnits,
  numerator: string,
  denominator: string,
): Map<string, number> {
  const out = new Map(products);
  const denominators = new Map((forced.totals.get(denominator) ?? []).map((u) => [u.userId, u.total]));
  for (const u of forced.totals.get(numerator) ?? []) {
    const d = denominators.get(u.userId);
    if (d !== undefined) out.set(u.variantId, (out.get(u.variantId) ?? 0) + u.total * d);
  }
  return out;
}

/** Winsorisation excess (Σ(total − cap), Σ(total² − cap²)) of forced units above the cap, added per variant. */
export function addForcedCapExcess(
  excess: ReadonlyMap<string, { sum: number; sumSquares: number }>,
  forced: ForcedUnits,
  eventName: string,
  cap: number,
): Map<string, { sum: number; sumSquares: number }> {
  const out = new Map(excess);
  for (const u of forced.totals.get(eventName) ?? []) {
    if (u.total <= cap) continue;
    const was = out.get(u.variantId) ?? { sum: 0, sumSquares: 0 };
    out.set(u.variantId, {
      sum: was.sum + (u.total - cap),
      sumSquares: was.sumSquares + (u.total * u.total - cap * cap),
    });
  }
  return out;
}

/**
 * The dashboard's per-variant counts (get_experiment_summary's columns) of an experiment's forced units,
 * over every conversion name: exposures, exposed units, counted conversions, converted units and their sum.
 */
export async function getForcedSummary(
  db: Db,
  experimentId: string,
): Promise<
  Map<string, { exposures: number; units: number; conversions: number; converted: number; sum: number }>
> {
  const rows = await parseRows(
    db,
    sql`/* getForcedSummary */
      WITH x AS (
        SELECT user_id, (array_agg(variant_id ORDER BY occurred_at, variant_id))[1] AS variant_id,
               count(*) AS events, min(event_time(occurred_at, recorded_at)) AS first_at
          FROM experiment_forced_events
         WHERE experiment_id = ${experimentId} AND kind = 'exposure'
         GROUP BY user_id
      ), c AS (
        SELECT c.user_id, count(*) AS events, sum(c.value) AS total
          FROM experiment_forced_events c
          JOIN x ON x.user_id = c.user_id
          JOIN experiments e ON e.id = c.experiment_id
          LEFT JOIN experiment_metric_windows m
            ON m.experiment_id = c.experiment_id AND m.metric_name = c.metric_name
         WHERE c.experiment_id = ${experimentId} AND c.kind = 'conversion'
           AND conversion_in_window(event_time(c.occurred_at, c.recorded_at), x.first_at, e.end_at,
                                    m.conversion_window_hours)
         GROUP BY c.user_id
      )
      SELECT x.variant_id::text AS "variantId", sum(x.events) AS "exposures", count(*) AS "units",
             coalesce(sum(c.events), 0) AS "conversions", count(c.user_id) AS "converted",
             coalesce(sum(c.total), 0) AS "sum"
        FROM x LEFT JOIN c ON c.user_id = x.user_id
       GROUP BY x.variant_id`,
    z.object({
      variantId: z.string(),
      exposures: dbNumber,
      units: dbNumber,
      conversions: dbNumber,
      converted: dbNumber,
      sum: dbNumber,
    }),
  );
  return new Map(rows.map(({ variantId, ...r }) => [variantId, r]));
}

/**
 * get_experiment_summary's rows with the forced units added. conversionRate = exposed units with a counted
 * conversion ÷ exposed units and avgMetricValue = Σ value ÷ conversions, as that function defines them; the
 * aggregates' converted units and sum are recovered from its rate and average.
 */
export function addForcedSummary(
  rows: readonly VariantMetricsRow[],
  forced: Awaited<ReturnType<typeof getForcedSummary>>,
): VariantMetricsRow[] {
  return rows.map((r) => {
    const f = forced.get(r.variantId);
    if (!f) return r;
    const units = r.uniqueUsers + f.units;
    const converted = Math.round(r.conversionRate * r.uniqueUsers) + f.converted;
    const conversions = r.conversions + f.conversions;
    const sum = (r.avgMetricValue ?? 0) * r.conversions + f.sum;
    return {
      ...r,
      exposures: r.exposures + f.exposures,
      uniqueUsers: units,
      conversions,
      conversionRate: units === 0 ? 0 : converted / units,
      avgMetricValue: conversions === 0 ? null : sum / conversions,
    };
  });
}
