/**
 * Experiment results end to end: data seeded through GraphQL mutations, numbers read through
 * `Experiment.results` / `scorecard`, and every number checked against (a) values computed by hand and
 * with SciPy for a tiny experiment and (b) the pure engine run over statistics recomputed from raw rows.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { LIMITS } from '../../src/config';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import type { App } from '../../src/http/app';
import {
  analyze,
  benjaminiHochberg,
  holm,
  minimumDetectableEffect,
  power,
  sampleSize,
  type Correction,
  type MetricGoal,
  type MetricType,
  type StatsMethod,
  type VariantInput,
  type VariantResult,
} from '../../src/results/stats';
import { createTestApp, gql, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { uniqueKey } from '../support/factories';
import { attributedEvents, rowCounts } from '../support/rows';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => handle.close());

interface CreatedExperiment {
  id: string;
  key: string;
  variants: { id: string; name: string }[];
}

/** Creates and starts an experiment through the API. */
async function runningExperiment(
  variants: { name: string; weight: number; isControl?: boolean }[],
): Promise<CreatedExperiment> {
  const key = uniqueKey('results');
  const created = await gqlOk(
    app,
    `mutation ($input: CreateExperimentInput!) {
       createExperiment(input: $input) {
         __typename ... on Experiment { id key variants { id name } } ... on Error { code message }
       }
     }`,
    { input: { key, name: `Results ${key}`, variants } },
  );
  expect(created.createExperiment.__typename).toBe('Experiment');
  const started = await gqlOk(
    app,
    `mutation ($id: ID!) { startExperiment(id: $id) { __typename ... on Experiment { status } } }`,
    { id: created.createExperiment.id },
  );
  expect(started.startExperiment).toEqual({ __typename: 'Experiment', status: 'RUNNING' });
  return created.createExperiment;
}

interface EventInput {
  kind: 'EXPOSURE' | 'CONVERSION';
  experimentKey: string;
  userId: string;
  eventId: string;
  variantId?: string;
  metricName?: string;
  value?: number;
  occurredAt?: Date;
}

const exposure = (experimentKey: string, userId: string, variantId?: string): EventInput => ({
  kind: 'EXPOSURE',
  experimentKey,
  userId,
  variantId,
  eventId: randomUUID(),
});
const conversion = (
  experimentKey: string,
  userId: string,
  metricName: string,
  value: number,
  variantId?: string,
): EventInput => ({
  kind: 'CONVERSION',
  experimentKey,
  userId,
  metricName,
  value,
  variantId,
  eventId: randomUUID(),
});

/** Records a batch through the API; every event must be accepted. */
async function recordAll(events: EventInput[]): Promise<void> {
  const data = await gqlOk(
    app,
    `mutation ($events: [EventInput!]!) { recordEvents(events: $events) { accepted duplicates rejected { index code message } } }`,
    { events },
  );
  expect(data.recordEvents).toEqual({ accepted: events.length, duplicates: 0, rejected: [] });
}

const EFFECT = 'estimate lower upper standardError';
const RESULTS_FIELDS = `
  metric type method confidenceLevel correction goal minUnitsPerVariant includeUnexposed reason
  control { id name }
  srm { chiSquare pValue mismatch observed expected reason }
  variants {
    variant { id name } isControl units conversions mean standardDeviation
    absoluteEffect { ${EFFECT} } relativeEffect { ${EFFECT} }
    differenceType pValue adjustedPValue significant chanceToWin risk reason
  }`;

interface ResultsArgs {
  metric: string;
  type?: MetricType;
  method?: StatsMethod;
  confidenceLevel?: number;
  correction?: Correction;
  includeUnexposed?: boolean;
  sequentialTuning?: number;
  priorMean?: number;
  priorVariance?: number;
  minUnitsPerVariant?: number;
  goal?: MetricGoal;
}

/** GraphQL argument text: enums bare, strings quoted, numbers and booleans as they are. */
function argText(args: ResultsArgs): string {
  const enums = new Set(['type', 'method', 'correction', 'goal']);
  return Object.entries(args)
    .map(([k, v]) => `${k}: ${enums.has(k) ? v : JSON.stringify(v)}`)
    .join(', ');
}

/** Several `results` of one experiment in a single request, aliased r0, r1, … */
async function fetchResults(key: string, cases: ResultsArgs[]): Promise<any[]> {
  const fields = cases.map((c, i) => `r${i}: results(${argText(c)}) { ${RESULTS_FIELDS} }`).join('\n');
  const data = await gqlOk(app, `query ($key: String!) { experiment(key: $key) { ${fields} } }`, { key });
  return cases.map((_, i) => data.experiment[`r${i}`]);
}

/**
 * Per-variant sufficient statistics straight from the raw event tables: each unit's value is the sum of
 * its attributed conversion values for the metric (binomial: total > 0 or not), units without count 0;
 * the units are the exposed users, or every assigned user with includeUnexposed.
 */
async function rawVariantInputs(
  experimentId: string,
  metric: string,
  type: MetricType,
  includeUnexposed: boolean,
): Promise<VariantInput[]> {
  const variants = await queryRows<{ id: string; weight: number; is_control: boolean }>(
    handle.db,
    sql`SELECT id::text, weight, is_control FROM experiment_variants
         WHERE experiment_id = ${experimentId} ORDER BY position, id`,
  );
  const population = await queryRows<{ variant_id: string; user_id: string }>(
    handle.db,
    includeUnexposed
      ? sql`SELECT variant_id::text, user_id FROM experiment_assignments WHERE experiment_id = ${experimentId}`
      : sql`SELECT DISTINCT variant_id::text, user_id FROM experiment_exposures WHERE experiment_id = ${experimentId}`,
  );
  // Conversions inside their unit's attribution window only (tests/support/rows.ts decides that on its own).
  const totalOf = new Map<string, number>();
  for (const c of (await attributedEvents(handle.db, experimentId)).conversions) {
    if (!c.counted || c.metricName !== metric) continue;
    const key = `${c.variantId}/${c.userId}`;
    totalOf.set(key, (totalOf.get(key) ?? 0) + c.value);
  }
  const flagged = variants.some((v) => v.is_control);
  return variants.map((v, i) => {
    const values = population
      .filter((u) => u.variant_id === v.id)
      .map((u) => {
        const total = totalOf.get(`${v.id}/${u.user_id}`);
        // BINOMIAL: converted when the unit's counted total is > 0.
        if (type === 'BINOMIAL') return total !== undefined && total > 0 ? 1 : 0;
        return total ?? 0;
      });
    return {
      id: v.id,
      weight: Number(v.weight),
      isControl: flagged ? v.is_control : i === 0,
      n: values.length,
      sum: values.reduce((s, x) => s + x, 0),
      sumSquares: values.reduce((s, x) => s + x * x, 0),
    };
  });
}

/** `actual` (parsed JSON) equals `expected`: nulls and flags exactly, numbers to `rel` relative. */
function expectClose(actual: unknown, expected: unknown, where: string, rel = 1e-9): void {
  if (expected === null || expected === undefined) {
    expect({ where, value: actual }).toEqual({ where, value: null });
  } else if (typeof expected === 'number') {
    expect(typeof actual).toBe('number');
    const deviation = Math.abs((actual as number) - expected) / Math.max(1, Math.abs(expected));
    if (!(deviation <= rel)) {
      throw new Error(`${where}: ${actual} differs from ${expected} (deviation ${deviation} > ${rel})`);
    }
  } else if (Array.isArray(expected)) {
    expect(Array.isArray(actual)).toBe(true);
    expect({ where, length: (actual as unknown[]).length }).toEqual({ where, length: expected.length });
    for (const [i, e] of expected.entries()) expectClose((actual as unknown[])[i], e, `${where}[${i}]`, rel);
  } else if (typeof expected === 'object') {
    for (const [k, e] of Object.entries(expected)) {
      expectClose((actual as Record<string, unknown>)?.[k], e, `${where}.${k}`, rel);
    }
  } else {
    expect({ where, value: actual }).toEqual({ where, value: expected });
  }
}

const effectShape = (e: VariantResult['absoluteEffect']) =>
  e && { estimate: e.estimate, lower: e.lower, upper: e.upper, standardError: e.standardError };

/** An engine result in the API's shape. */
function apiShape(v: VariantResult) {
  return {
    variant: { id: v.id },
    isControl: v.isControl,
    units: v.units,
    conversions: v.conversions,
    mean: v.mean,
    standardDeviation: v.standardDeviation,
    absoluteEffect: effectShape(v.absoluteEffect),
    relativeEffect: effectShape(v.relativeEffect),
    differenceType: v.differenceType,
    pValue: v.pValue,
    adjustedPValue: v.adjustedPValue,
    significant: v.significant,
    chanceToWin: v.chanceToWin,
    risk: v.risk,
    reason: v.reason,
  };
}

const defaultType = (metric: string): MetricType => (metric === 'conversion' ? 'BINOMIAL' : 'MEAN');

/** The engine's answer for a results request, from raw rows. */
async function expectedResults(experimentId: string, args: ResultsArgs) {
  const type = args.type ?? defaultType(args.metric);
  const inputs = await rawVariantInputs(experimentId, args.metric, type, args.includeUnexposed ?? false);
  const analysis = analyze({
    variants: inputs,
    metricType: type,
    method: args.method ?? 'FREQUENTIST',
    confidenceLevel: args.confidenceLevel ?? 0.95,
    correction: args.correction ?? 'NONE',
    sequentialTuning: args.sequentialTuning ?? 5000,
    prior:
      args.priorMean !== undefined || args.priorVariance !== undefined
        ? { mean: args.priorMean ?? 0, variance: args.priorVariance ?? 1 }
        : null,
    minimumUnits: args.minUnitsPerVariant ?? LIMITS.minUnitsPerVariant,
    goal: args.goal,
  });
  return { inputs, analysis, type };
}

describe('a tiny experiment, computed by hand', () => {
  let exp: CreatedExperiment;
  let control: string;
  let treatment: string;

  beforeAll(async () => {
    exp = await runningExperiment([
      { name: 'control', weight: 0.5, isControl: true },
      { name: 'treatment', weight: 0.5 },
    ]);
    [control, treatment] = exp.variants.map((v) => v.id);
    const k = exp.key;
    // First batch: conversions only; the explicit variant enrolls each user.
    await recordAll([
      conversion(k, 'c1', 'conversion', 1, control),
      conversion(k, 'c1', 'revenue', 2, control),
      conversion(k, 'c1', 'revenue', 3, control),
      conversion(k, 'c2', 'conversion', 1, control),
      conversion(k, 'c2', 'conversion', 1, control),
      conversion(k, 'c2', 'revenue', 4, control),
      conversion(k, 'c5', 'conversion', 1, control),
      conversion(k, 'c5', 'revenue', 10, control),
      conversion(k, 't1', 'conversion', 1, treatment),
      conversion(k, 't1', 'revenue', 1, treatment),
      conversion(k, 't1', 'bonus', 3, treatment),
      conversion(k, 't2', 'conversion', 1, treatment),
      conversion(k, 't2', 'revenue', 6, treatment),
      conversion(k, 't3', 'conversion', 1, treatment),
      conversion(k, 't5', 'conversion', 1, treatment),
      conversion(k, 't5', 'revenue', 7, treatment),
    ]);
    // Second batch: exposures, arriving after the users' conversions but dated before them (an hour ago), so
    // every conversion of an exposed user is inside its attribution window; c5 and t5 are never exposed, so
    // nothing of theirs counts.
    const earlier = (e: EventInput): EventInput => ({ ...e, occurredAt: new Date(Date.now() - 3600_000) });
    await recordAll(
      [
        exposure(k, 'c1'),
        exposure(k, 'c1'),
        exposure(k, 'c2'),
        exposure(k, 'c3', control),
        exposure(k, 'c4', control),
        exposure(k, 't1'),
        exposure(k, 't2'),
        exposure(k, 't3'),
        exposure(k, 't4', treatment),
      ].map(earlier),
    );
  });

  it('lists the metrics with data, sorted', async () => {
    const data = await gqlOk(app, `query ($key: String!) { experiment(key: $key) { metricNames } }`, {
      key: exp.key,
    });
    expect(data.experiment.metricNames).toEqual(['bonus', 'conversion', 'revenue']);
  });

  it('shows no comparison below minUnitsPerVariant (default LIMITS.minUnitsPerVariant): TOO_FEW_UNITS', async () => {
    const [r] = await fetchResults(exp.key, [{ metric: 'conversion' }]);
    expect(r).toMatchObject({ minUnitsPerVariant: LIMITS.minUnitsPerVariant, reason: null });
    // Units and rates are still shown; effects and decisions are not.
    expect(r.variants.map((v: any) => [v.units, v.mean, v.reason])).toEqual([
      [4, 0.5, 'TOO_FEW_UNITS'],
      [4, 0.75, 'TOO_FEW_UNITS'],
    ]);
    expect(r.variants[1]).toMatchObject({
      absoluteEffect: null,
      relativeEffect: null,
      differenceType: null,
      pValue: null,
      significant: null,
    });
  });

  // Below, minUnitsPerVariant: 2 lets four units an arm be compared, so the numbers can be checked by hand.
  it('conversion defaults to BINOMIAL over exposed users: units, conversions, rates and a t-test', async () => {
    const [r] = await fetchResults(exp.key, [{ metric: 'conversion', minUnitsPerVariant: 2 }]);
    expect(r).toMatchObject({
      metric: 'conversion',
      type: 'BINOMIAL',
      method: 'FREQUENTIST',
      confidenceLevel: 0.95,
      correction: 'NONE',
      goal: 'INCREASE',
      minUnitsPerVariant: 2,
      includeUnexposed: false,
      reason: null,
      control: { id: control, name: 'control' },
      srm: { chiSquare: 0, pValue: 1, mismatch: false, observed: [4, 4], expected: [4, 4], reason: null },
    });
    const [c, t] = r.variants;
    // c1 and c2 converted (c2 twice: still one unit), c3 and c4 did not; c5 converted but was never exposed.
    expectClose(
      c,
      {
        variant: { id: control, name: 'control' },
        isControl: true,
        units: 4,
        conversions: 2,
        mean: 0.5,
        standardDeviation: 0.5,
        absoluteEffect: null,
        pValue: null,
        reason: null,
      },
      'control',
    );
    // SciPy: Welch t over p(1 − p) variances (gbstats), df = 5.88, on the difference of rates. Two
    // conversions out of four do not tell the control rate from 0 at 95% (Fieller's interval for the ratio
    // is unbounded), so there is no relative effect.
    expectClose(
      t,
      {
        isControl: false,
        units: 4,
        conversions: 3,
        mean: 0.75,
        standardDeviation: Math.sqrt(0.1875),
        absoluteEffect: {
          estimate: 0.25,
          lower: -0.5632602433763341,
          upper: 1.063260243376334,
          standardError: 0.33071891388307384,
        },
        relativeEffect: null,
        differenceType: 'ABSOLUTE',
        pValue: 0.4788698912611093,
        adjustedPValue: 0.4788698912611093,
        significant: false,
        chanceToWin: null,
        risk: null,
        reason: 'CONTROL_MEAN_UNCERTAIN',
      },
      'treatment',
      1e-6,
    );
  });

  it('revenue defaults to MEAN of per-user sums, exposed users without revenue counting 0', async () => {
    const [r] = await fetchResults(exp.key, [{ metric: 'revenue', minUnitsPerVariant: 2 }]);
    expect(r.type).toBe('MEAN');
    const [c, t] = r.variants;
    // Control per-user totals 5 (2 + 3), 4, 0, 0; treatment 1, 6, 0, 0.
    expectClose(c, { units: 4, conversions: null, mean: 2.25, standardDeviation: Math.sqrt(83 / 12) }, 'c');
    expectClose(
      t,
      {
        units: 4,
        conversions: null,
        mean: 1.75,
        standardDeviation: Math.sqrt(8.25),
        absoluteEffect: {
          estimate: -0.5,
          lower: -5.273616761992489,
          upper: 4.273616761992489,
          standardError: 1.9472202409246537,
        },
        relativeEffect: null,
        // The test of equal means on the difference: scipy.stats.ttest_ind(t, c, equal_var=False).
        pValue: 0.8059939578031696,
        reason: 'CONTROL_MEAN_UNCERTAIN',
      },
      't',
      1e-6,
    );
  });

  it('includeUnexposed counts every assigned user (c5, t5), as 0: nothing is attributed before an exposure', async () => {
    const [bin, mean] = await fetchResults(exp.key, [
      { metric: 'conversion', includeUnexposed: true, minUnitsPerVariant: 2 },
      { metric: 'revenue', includeUnexposed: true, minUnitsPerVariant: 2 },
    ]);
    expect(bin.includeUnexposed).toBe(true);
    expect(bin.srm).toMatchObject({ observed: [5, 5], expected: [5, 5] });
    // SciPy: the engine's binomial Welch test on 2/5 vs 3/5 (variance p(1 − p), Satterthwaite df).
    expectClose(bin.variants[0], { units: 5, conversions: 2, mean: 0.4 }, 'bin.c');
    expectClose(
      bin.variants[1],
      { units: 5, conversions: 3, mean: 0.6, absoluteEffect: { estimate: 0.2 }, pValue: 0.5366750618152513 },
      'bin.t',
      1e-6,
    );
    // SciPy: ttest_ind([1, 6, 0, 0, 0], [5, 4, 0, 0, 0], equal_var=False) and its confidence_interval(0.95).
    expectClose(mean.variants[0], { units: 5, mean: 1.8, standardDeviation: Math.sqrt(6.2) }, 'mean.c');
    expectClose(
      mean.variants[1],
      {
        units: 5,
        mean: 1.4,
        standardDeviation: Math.sqrt(6.8),
        absoluteEffect: { estimate: -0.4, lower: -4.119699093530246, upper: 3.3196990935302457 },
        pValue: 0.810342551035972,
      },
      'mean.t',
      1e-6,
    );
  });

  it('BAYESIAN: chance to win and risk from the normal posterior of the absolute effect', async () => {
    const [r, decrease] = await fetchResults(exp.key, [
      { metric: 'revenue', method: 'BAYESIAN', correction: 'HOLM', minUnitsPerVariant: 2 },
      { metric: 'revenue', method: 'BAYESIAN', goal: 'DECREASE', minUnitsPerVariant: 2 },
    ]);
    // A correction does not apply to a Bayesian analysis: ignored, and the result says so.
    expect(r).toMatchObject({ method: 'BAYESIAN', correction: 'NONE', goal: 'INCREASE' });
    // SciPy: N(−0.5, 1.9472²); chance to win Φ(−0.5/1.9472); risk E[max(Δ, 0)], E[max(−Δ, 0)] (truncnorm).
    expectClose(
      r.variants[1],
      {
        pValue: null,
        adjustedPValue: null,
        differenceType: 'ABSOLUTE',
        chanceToWin: 0.39867573505568216,
        risk: [0.5522984231183179, 1.052298423118318],
        relativeEffect: null,
        significant: false,
        reason: 'CONTROL_MEAN_UNCERTAIN',
      },
      'bayes.t',
      1e-6,
    );
    // Lower is better: the same posterior, the other way round.
    expect(decrease.goal).toBe('DECREASE');
    expectClose(
      decrease.variants[1],
      {
        chanceToWin: 1 - 0.39867573505568216,
        risk: [1.052298423118318, 0.5522984231183179],
        significant: false,
      },
      'bayes.decrease',
      1e-6,
    );
  });

  it('a metric with no data, and a control that never converts, give reasons and nulls', async () => {
    const [none, bonus, bonusBinomial] = await fetchResults(exp.key, [
      { metric: 'no_such_metric', minUnitsPerVariant: 2 },
      { metric: 'bonus', minUnitsPerVariant: 2 },
      { metric: 'bonus', type: 'BINOMIAL', minUnitsPerVariant: 2 },
    ]);
    // No event of the metric at all: not a measured 0 with ZERO_VARIANCE, but UNKNOWN_METRIC and nulls.
    expect(none.reason).toBe('UNKNOWN_METRIC');
    expectClose(
      none.variants,
      [
        { units: 4, mean: null, standardDeviation: null, pValue: null, reason: 'UNKNOWN_METRIC' },
        {
          units: 4,
          mean: null,
          standardDeviation: null,
          absoluteEffect: null,
          pValue: null,
          reason: 'UNKNOWN_METRIC',
        },
      ],
      'none',
    );
    // Every control unit is 0: a Welch test would treat the control mean as known exactly, so no decision.
    expectClose(
      bonus.variants[1],
      { mean: 0.75, absoluteEffect: null, relativeEffect: null, pValue: null, reason: 'ZERO_VARIANCE' },
      'bonus',
    );
    // As proportions (0/4 against 1/4), score methods handle the constant control: Newcombe's interval.
    expect(bonusBinomial.variants.map((v: any) => [v.units, v.conversions])).toEqual([
      [4, 0],
      [4, 1],
    ]);
    expect(bonusBinomial.variants[1]).toMatchObject({ reason: 'CONTROL_MEAN_ZERO', significant: false });
    expect(bonusBinomial.variants[1].absoluteEffect.lower).toBeLessThan(0);
  });
});

describe('edge cases without data', () => {
  it('an experiment nobody was exposed to: NO_UNITS and nulls, never NaN', async () => {
    const exp = await runningExperiment([
      { name: 'control', weight: 1, isControl: true },
      { name: 'treatment', weight: 1 },
    ]);
    const body = await gql(
      app,
      `query ($key: String!) { experiment(key: $key) { metricNames results(metric: "conversion") { ${RESULTS_FIELDS} } } }`,
      { key: exp.key },
    );
    expect(body.errors).toBeUndefined();
    const { metricNames, results } = body.data.experiment;
    expect(metricNames).toEqual([]);
    expect(results.srm).toMatchObject({ observed: [0, 0], mismatch: false });
    for (const v of results.variants) {
      expect(v).toMatchObject({
        units: 0,
        mean: null,
        standardDeviation: null,
        pValue: null,
        absoluteEffect: null,
        reason: 'NO_UNITS',
      });
    }
  });
});

describe('a larger experiment: every number equals the engine over raw rows', () => {
  let exp: CreatedExperiment;
  const METRICS = ['conversion', 'revenue', 'watch_minutes'];

  beforeAll(async () => {
    // The flagged control is not the first variant, so "control" cannot mean "position 0" by accident.
    exp = await runningExperiment([
      { name: 'baseline-a', weight: 0.25 },
      { name: 'control', weight: 0.5, isControl: true },
      { name: 'bold', weight: 0.25 },
    ]);
    const k = exp.key;
    const random = mulberry32(20250611);
    const pick = () => {
      const x = random();
      return exp.variants[x < 0.25 ? 0 : x < 0.75 ? 1 : 2].id;
    };
    const users = Array.from({ length: 150 }, (_, i) => `u${i}`);
    // A third of the users are bucketed by assignVariant; the rest enroll through events naming a variant.
    const bucketed = users.filter((_, i) => i % 3 === 0);
    // Ten per request: the API limits aliases per operation.
    for (let i = 0; i < bucketed.length; i += 10) {
      const aliases = bucketed
        .slice(i, i + 10)
        .map((u, j) => `a${j}: assignVariant(experimentKey: "${k}", userId: "${u}") { __typename }`);
      await gqlOk(app, `mutation { ${aliases.join('\n')} }`);
    }
    const variantOf = new Map(users.map((u, i) => [u, i % 3 === 0 ? undefined : pick()]));

    const conversions: EventInput[] = [];
    const exposures: EventInput[] = [];
    for (const [i, u] of users.entries()) {
      const v = variantOf.get(u);
      const lift = v === exp.variants[2].id ? 1.4 : 1;
      if (random() < 0.3 * lift) {
        for (let j = random() < 0.3 ? 2 : 1; j > 0; j--)
          conversions.push(conversion(k, u, 'conversion', 1, v));
      }
      for (let j = Math.floor(random() * 3 * lift); j > 0; j--) {
        const amount = Math.round(random() * 5000) / 100;
        conversions.push(conversion(k, u, 'revenue', random() < 0.05 ? -amount : amount, v));
      }
      if (random() < 0.6) conversions.push(conversion(k, u, 'watch_minutes', random() * 120 * lift, v));
      // Most users are exposed, some twice; users 7, 17, 27, … never are.
      if (i % 10 !== 7) {
        for (let j = random() < 0.2 ? 2 : 1; j > 0; j--) exposures.push(exposure(k, u, v));
      }
    }
    // Conversions of half the users before any exposure; then all exposures; then the rest.
    const half = Math.floor(conversions.length / 2);
    await recordAll(conversions.slice(0, half));
    await recordAll(exposures);
    await recordAll(conversions.slice(half));
  });

  // 150 users over three arms: below the default minimum, so the comparisons are asked for explicitly.
  const cases: ResultsArgs[] = [
    ...METRICS.flatMap((metric) =>
      (['FREQUENTIST', 'BAYESIAN', 'SEQUENTIAL'] as const).flatMap((method) =>
        [false, true].map((includeUnexposed) => ({ metric, method, includeUnexposed })),
      ),
    ),
    { metric: 'revenue', type: 'BINOMIAL' },
    { metric: 'conversion', type: 'MEAN' },
    { metric: 'revenue', confidenceLevel: 0.9, correction: 'HOLM' },
    { metric: 'conversion', confidenceLevel: 0.99, correction: 'BENJAMINI_HOCHBERG' },
    { metric: 'watch_minutes', method: 'SEQUENTIAL', confidenceLevel: 0.8, correction: 'HOLM' },
    { metric: 'watch_minutes', method: 'SEQUENTIAL', sequentialTuning: 500 },
    { metric: 'revenue', method: 'BAYESIAN', correction: 'HOLM', priorMean: 0, priorVariance: 0.04 },
    { metric: 'watch_minutes', method: 'BAYESIAN', goal: 'DECREASE' },
  ].map((c) => ({ ...c, minUnitsPerVariant: 2 }) as ResultsArgs);

  it('lists its metrics', async () => {
    const data = await gqlOk(app, `query ($key: String!) { experiment(key: $key) { metricNames } }`, {
      key: exp.key,
    });
    expect(data.experiment.metricNames).toEqual(METRICS);
  });

  it.each(cases.map((c) => [argText(c), c] as const))('results(%s)', async (_label, args) => {
    const [actual] = await fetchResults(exp.key, [args]);
    const { inputs, analysis, type } = await expectedResults(exp.id, args);
    expect(actual).toMatchObject({
      metric: args.metric,
      type,
      method: args.method ?? 'FREQUENTIST',
      confidenceLevel: args.confidenceLevel ?? 0.95,
      // Bayesian analyses have no p-values: a correction is ignored, and the result says NONE.
      correction: args.method === 'BAYESIAN' ? 'NONE' : (args.correction ?? 'NONE'),
      goal: args.goal ?? 'INCREASE',
      minUnitsPerVariant: 2,
      includeUnexposed: args.includeUnexposed ?? false,
      reason: null,
      control: { id: exp.variants[1].id, name: 'control' },
    });
    // SRM: observed units per variant against weights 1 : 2 : 1.
    const observed = inputs.map((v) => v.n);
    const total = observed.reduce((s, n) => s + n, 0);
    expect(actual.srm.observed).toEqual(observed);
    expectClose(actual.srm.expected, [total / 4, total / 2, total / 4], 'srm.expected');
    const { phases: _phases, ...srm } = analysis.srm;
    expectClose(actual.srm, srm, 'srm');
    expect(actual.variants.map((v: any) => v.variant.id)).toEqual(exp.variants.map((v) => v.id));
    for (const [i, v] of analysis.variants.entries()) {
      expectClose(actual.variants[i], apiShape(v), `variants[${i}]`);
    }
    // The data is rich enough that the comparisons are real ones.
    expect(actual.variants.filter((v: any) => !v.isControl && v.differenceType === 'ABSOLUTE')).toHaveLength(
      2,
    );
  });

  it('with the default minimum, 150 users over three arms are too few to compare', async () => {
    const [actual] = await fetchResults(exp.key, [{ metric: 'conversion' }]);
    expect(actual.variants.map((v: any) => v.reason)).toEqual(Array(3).fill('TOO_FEW_UNITS'));
    expect(actual.srm.reason).toBeNull();
  });

  it('scorecard corrects over every treatment of every metric', async () => {
    const query = `query ($key: String!) { experiment(key: $key) {
        holm: scorecard(correction: HOLM, minUnitsPerVariant: 2) { metric variants { isControl pValue adjustedPValue significant } }
        bh: scorecard(metrics: ["watch_minutes", "revenue", "nobody"], correction: BENJAMINI_HOCHBERG, confidenceLevel: 0.9, minUnitsPerVariant: 2) {
          metric variants { isControl pValue adjustedPValue significant }
        }
      } }`;
    const { experiment } = await gqlOk(app, query, { key: exp.key });
    const check = async (scorecard: any[], metrics: string[], correction: Correction, level: number) => {
      expect(scorecard.map((r) => r.metric)).toEqual(metrics);
      const raw: (number | null)[] = [];
      for (const metric of metrics) {
        const { analysis } = await expectedResults(exp.id, {
          metric,
          confidenceLevel: level,
          minUnitsPerVariant: 2,
        });
        raw.push(...analysis.variants.filter((v) => !v.isControl).map((v) => v.pValue));
      }
      const adjusted = (correction === 'HOLM' ? holm : benjaminiHochberg)(raw);
      const treatments = scorecard.flatMap((r) => r.variants.filter((v: any) => !v.isControl));
      expectClose(
        treatments.map((v: any) => v.pValue),
        raw,
        'raw p',
      );
      expectClose(
        treatments.map((v: any) => v.adjustedPValue),
        adjusted,
        `${correction} p`,
      );
      expect(treatments.map((v: any) => v.significant)).toEqual(
        adjusted.map((p) => (p === null ? null : p < 1 - level)),
      );
      return raw.filter((p) => p !== null).length;
    };
    expect(await check(experiment.holm, METRICS, 'HOLM', 0.95)).toBe(6);
    // `nobody` has no data: its null p-values are not hypotheses.
    expect(
      await check(experiment.bh, ['watch_minutes', 'revenue', 'nobody'], 'BENJAMINI_HOCHBERG', 0.9),
    ).toBe(4);
  });

  it('reads the definitions, the sufficient statistics and the phases in three SQL statements per results request', async () => {
    const count = async (fields: string) => {
      const before = handle.statements.count;
      await gqlOk(app, `query ($key: String!) { experiment(key: $key) { ${fields} } }`, { key: exp.key });
      return handle.statements.count - before;
    };
    // The experiment lookup, the metric definitions (with their roles in the experiment), then the statistics
    // and the weight history with its units per phase.
    expect(await count('results(metric: "revenue") { variants { units } }')).toBe(4);
    expect(
      await count('results(metric: "revenue", includeUnexposed: true) { variants { units mean } }'),
    ).toBe(4);
    // Variant objects come from one batched lookup, whatever the number of variants.
    expect(
      await count('results(metric: "revenue") { variants { units variant { name } } }'),
    ).toBeLessThanOrEqual(5);
    // The scorecard's default metrics: the listed ones, else the metric names (two statements at most).
    expect(await count('scorecard { metric variants { units pValue } }')).toBeLessThanOrEqual(6);
  });
});

describe('invalid arguments', () => {
  let exp: CreatedExperiment;
  beforeAll(async () => {
    exp = await runningExperiment([
      { name: 'control', weight: 1, isControl: true },
      { name: 'treatment', weight: 1 },
    ]);
    await recordAll([
      exposure(exp.key, 'x1', exp.variants[0].id),
      exposure(exp.key, 'x2', exp.variants[1].id),
    ]);
  });

  it.each([
    ['confidenceLevel 1.5', 'results(metric: "revenue", confidenceLevel: 1.5) { metric }', 'confidenceLevel'],
    ['confidenceLevel 0.5', 'results(metric: "revenue", confidenceLevel: 0.5) { metric }', 'confidenceLevel'],
    ['metric "Bad Name"', 'results(metric: "Bad Name") { metric }', 'metric'],
    ['a bad metric in a scorecard', 'scorecard(metrics: ["revenue", "Bad Name"]) { metric }', 'metrics'],
    ['sequentialTuning 0', 'results(metric: "revenue", sequentialTuning: 0) { metric }', 'sequentialTuning'],
    [
      'minUnitsPerVariant 1',
      'results(metric: "revenue", minUnitsPerVariant: 1) { metric }',
      'minUnitsPerVariant',
    ],
  ])('%s → BAD_USER_INPUT, nothing written', async (_label, field, argument) => {
    const before = await rowCounts(handle.db, exp.id);
    const body = await gql(app, `query ($key: String!) { experiment(key: $key) { ${field} } }`, {
      key: exp.key,
    });
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument });
    expect(body.data?.experiment ?? null).toBeNull();
    expect(await rowCounts(handle.db, exp.id)).toEqual(before);
  });
});

describe('sampleSize', () => {
  const PLAN = 'unitsPerVariant totalUnits powerAtUnits minimumDetectableEffectAtUnits reason';

  it('binomial: matches the formula computed with SciPy and the engine', async () => {
    const { sampleSize: plan } = await gqlOk(
      app,
      `{ sampleSize(baselineRate: 0.1, minimumDetectableEffect: 0.1, currentUnitsPerVariant: 14749) { ${PLAN} } }`,
    );
    // (z.975 + z.8)² · (0.1·0.9 + 0.11·0.89) / 0.01² = 14748.045…
    expect(plan).toMatchObject({ unitsPerVariant: 14749, totalUnits: 29498, reason: null });
    const baseline = { metricType: 'BINOMIAL', mean: 0.1 } as const;
    expect(sampleSize(baseline, 0.1).value?.unitsPerVariant).toBe(14749);
    expectClose(plan.powerAtUnits, power(baseline, 0.1, 14749).value, 'power');
    expect(plan.powerAtUnits).toBeGreaterThanOrEqual(0.8);
    expectClose(plan.minimumDetectableEffectAtUnits, minimumDetectableEffect(baseline, 14749).value, 'mde');
    expect(plan.minimumDetectableEffectAtUnits).toBeLessThanOrEqual(0.1);
  });

  it('mean metric, three variants, alpha and power given', async () => {
    const { sampleSize: plan } = await gqlOk(
      app,
      `{ sampleSize(baselineMean: 10, baselineStdDev: 4, minimumDetectableEffect: 0.05, variants: 3, alpha: 0.01, power: 0.9, currentUnitsPerVariant: 1000) { ${PLAN} } }`,
    );
    // (z.995 + z.9)² · 2 · 16 / 0.5² = 1904.56…
    expect(plan).toMatchObject({ unitsPerVariant: 1905, totalUnits: 5715, reason: null });
    const baseline = { metricType: 'MEAN', mean: 10, variance: 16 } as const;
    const options = { alpha: 0.01, power: 0.9 };
    expectClose(plan.powerAtUnits, power(baseline, 0.05, 1000, options).value, 'power');
    expect(plan.powerAtUnits).toBeLessThan(0.9);
    expectClose(
      plan.minimumDetectableEffectAtUnits,
      minimumDetectableEffect(baseline, 1000, options).value,
      'mde',
    );
  });

  it('plans for the analysis results runs: SEQUENTIAL, a correction over 4 variants, the minimum sample', async () => {
    const { sequential, holm, tiny } = await gqlOk(
      app,
      `{
        sequential: sampleSize(baselineRate: 0.1, minimumDetectableEffect: 0.2, method: SEQUENTIAL) { unitsPerVariant alphaPerComparison reason }
        holm: sampleSize(baselineRate: 0.1, minimumDetectableEffect: 0.2, variants: 4, correction: HOLM) { unitsPerVariant totalUnits alphaPerComparison reason }
        tiny: sampleSize(baselineMean: 10, baselineStdDev: 1, minimumDetectableEffect: 0.5) { unitsPerVariant reason }
      }`,
    );
    const baseline = { metricType: 'BINOMIAL', mean: 0.1 } as const;
    // The always-valid interval is wider: about twice the fixed-horizon 3,839 units.
    expect(sequential).toEqual({
      unitsPerVariant: sampleSize(baseline, 0.2, { method: 'SEQUENTIAL' }).value!.unitsPerVariant,
      alphaPerComparison: 0.05,
      reason: null,
    });
    expect(sequential.unitsPerVariant).toBeGreaterThan(1.9 * 3839);
    expect(holm).toMatchObject({ unitsPerVariant: 5120, totalUnits: 4 * 5120, reason: null });
    expectClose(holm.alphaPerComparison, 0.05 / 3, 'alpha');
    // Two units would detect +50% on a tight metric, but results shows nothing below the minimum.
    expect(tiny).toEqual({ unitsPerVariant: LIMITS.minUnitsPerVariant, reason: null });
  });

  it('an impossible baseline gives a reason: a rate of 1 cannot fall by 20% and still be a plan', async () => {
    const { one, two } = await gqlOk(
      app,
      `{
        one: sampleSize(baselineRate: 1, minimumDetectableEffect: -0.2) { unitsPerVariant reason }
        two: sampleSize(baselineRate: 0.6, minimumDetectableEffect: 0.8) { unitsPerVariant reason }
      }`,
    );
    expect(one).toEqual({ unitsPerVariant: null, reason: 'INVALID_INPUT' });
    expect(two).toEqual({ unitsPerVariant: null, reason: 'INVALID_INPUT' });
  });

  it('a zero baseline gives a reason, not a number', async () => {
    const { sampleSize: plan } = await gqlOk(
      app,
      `{ sampleSize(baselineRate: 0, minimumDetectableEffect: 0.1) { ${PLAN} } }`,
    );
    expect(plan).toEqual({
      unitsPerVariant: null,
      totalUnits: null,
      powerAtUnits: null,
      minimumDetectableEffectAtUnits: null,
      reason: 'CONTROL_MEAN_ZERO',
    });
  });
});

/** A small seeded PRNG, so the generated experiment is the same on every run. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
