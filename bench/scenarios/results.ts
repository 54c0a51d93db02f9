/**
 * 3. Results at 1M events (quick) / 10M (large): events COPYed in, aggregates built by the documented
 * rebuild path, then p50/p95 of the GraphQL `results` and `metrics` queries (sequential, over HTTP)
 * against the same numbers computed from raw events with the `experiment_metrics` view, which must agree.
 */
import { maintainedStats, viewCounts, viewMetricStats } from '../lib/aggregates';
import type { Context } from '../lib/context';
import {
  assignUsers,
  copyLines,
  createRunningExperiment,
  prng,
  sequentialUuids,
  variantFor,
} from '../lib/data';
import { graphql } from '../lib/graphql';
import { fmt } from '../lib/report';
import { closeTo, median, msSince, percentile } from '../lib/stats';

const SCENARIO = '3 results';
const MEAN_METRIC = 'watch_minutes';
const BINOMIAL_METRIC = 'conversion';

const RESULTS = `query Results($id: ID!, $metric: String!) {
  experiment(id: $id) {
    results(metric: $metric) {
      metric type reason
      srm { mismatch pValue }
      variants {
        variant { id name } isControl units conversions mean standardDeviation pValue significant
        relativeEffect { estimate lower upper }
      }
    }
  }
}`;

const METRICS = `query Metrics($id: ID!) {
  experiment(id: $id) {
    metrics {
      totalExposures totalUniqueUsers
      variantMetrics { variant { id name } exposures uniqueUsers conversions conversionRate avgMetricValue }
    }
  }
}`;

export async function resultsScenario(ctx: Context): Promise<void> {
  const { sizes, report, sql, server } = ctx;
  const size = sizes.results;
  const experiment = await createRunningExperiment(server.graphqlUrl, `bench-results-${ctx.runId}`, 2);
  const label = size.events >= 1_000_000 ? `${size.events / 1_000_000}M` : `${size.events / 1000}k`;

  // Users: one in 20 is assigned but never exposed (its conversions must not count).
  const userCount = Math.max(1000, Math.round(size.events / 10));
  const users = Array.from({ length: userCount }, (_, i) => `res-${ctx.runId}-${i}`);
  const variantOf = users.map((u) => variantFor(experiment, u).id);
  await assignUsers(sql, experiment, users);

  const exposureCount = Math.round(size.events * 0.6);
  const conversionCount = size.events - exposureCount;
  // Exposures within one hour, conversions within the next: every conversion of an exposed unit falls inside
  // its attribution window (from its first exposure; the experiment runs), so the raw view's per-unit sums
  // over exposed units are what the aggregates count.
  const hour = (h: number) =>
    Array.from({ length: 3600 }, (_, s) => new Date(Date.UTC(2026, 0, 1, h, 0, s)).toISOString());
  const exposureTimes = hour(12);
  const conversionTimes = hour(13);
  function* exposureLines() {
    const rand = prng(11);
    const ids = sequentialUuids();
    const eventIds = sequentialUuids();
    for (let i = 0; i < exposureCount; i++) {
      let u = Math.floor(rand() * userCount);
      if (u % 20 === 0) u = (u + 1) % userCount;
      const t = exposureTimes[Math.floor(rand() * exposureTimes.length)];
      yield `${ids()}\t${experiment.id}\t${variantOf[u]}\t${users[u]}\t${eventIds()}\t${t}\t${t}\t{}\n`;
    }
  }
  function* conversionLines() {
    const rand = prng(12);
    const ids = sequentialUuids();
    const eventIds = sequentialUuids();
    for (let i = 0; i < conversionCount; i++) {
      const u = Math.floor(rand() * userCount);
      const t = conversionTimes[Math.floor(rand() * conversionTimes.length)];
      const binomial = rand() < 0.4;
      const metric = binomial ? BINOMIAL_METRIC : MEAN_METRIC;
      const value = binomial ? 1 : Math.round(-Math.log(1 - rand()) * 3000) / 100;
      yield `${ids()}\t${experiment.id}\t${variantOf[u]}\t${users[u]}\t${eventIds()}\t${t}\t${t}\t{}\t${metric}\t${value}\n`;
    }
  }
  const t0 = process.hrtime.bigint();
  await Promise.all([
    copyLines(
      sql,
      'COPY experiment_exposures (id, experiment_id, variant_id, user_id, event_id, occurred_at, recorded_at, metadata) FROM STDIN',
      exposureLines(),
    ),
    copyLines(
      sql,
      'COPY experiment_conversions (id, experiment_id, variant_id, user_id, event_id, occurred_at, recorded_at, metadata, metric_name, value) FROM STDIN',
      conversionLines(),
    ),
  ]);
  const loadSeconds = msSince(t0) / 1000;
  const t1 = process.hrtime.bigint();
  await sql`SELECT rebuild_experiment_stats(ARRAY[${experiment.id}]::uuid[])`;
  const rebuildSeconds = msSince(t1) / 1000;
  await sql`ANALYZE experiment_exposures, experiment_conversions, experiment_user_metrics, experiment_variant_stats`;
  ctx.log(
    `results: ${size.events} events loaded in ${loadSeconds.toFixed(1)} s, rebuilt in ${rebuildSeconds.toFixed(1)} s`,
  );
  report.add({
    scenario: SCENARIO,
    figure: `setup: COPY ${label} events (2 streams), ${userCount} users`,
    value: size.events / loadSeconds,
    unit: 'rows/s',
  });
  report.add({
    scenario: SCENARIO,
    figure: 'setup: rebuild_experiment_stats',
    value: rebuildSeconds,
    unit: 's',
  });

  // GraphQL over HTTP, sequential.
  const timeQuery = async (query: string, variables: Record<string, unknown>) => {
    for (let i = 0; i < Math.min(10, size.requests); i++) await graphql(server.graphqlUrl, query, variables);
    const samples: number[] = [];
    for (let i = 0; i < size.requests; i++) {
      const start = process.hrtime.bigint();
      await graphql(server.graphqlUrl, query, variables);
      samples.push(msSince(start));
    }
    return { p50: median(samples), p95: percentile(samples, 95) };
  };
  // The raw path: the harness's own SQL over the experiment_metrics view, same process as the load.
  const timeSql = async <T>(fn: () => Promise<T>) => {
    const samples: number[] = [];
    let last: T | undefined;
    for (let i = 0; i < size.viewRuns; i++) {
      const start = process.hrtime.bigint();
      last = await fn();
      samples.push(msSince(start));
    }
    return { p50: median(samples), result: last as T };
  };

  const resultsTiming = await timeQuery(RESULTS, { id: experiment.id, metric: MEAN_METRIC });
  const metricsTiming = await timeQuery(METRICS, { id: experiment.id });
  const viewResults = await timeSql(() => viewMetricStats(sql, experiment.id, MEAN_METRIC));
  const viewMetrics = await timeSql(() => viewCounts(sql, experiment.id));

  const heads = [
    { name: `results(metric: "${MEAN_METRIC}")`, api: resultsTiming, view: viewResults.p50 },
    { name: 'metrics { variantMetrics }', api: metricsTiming, view: viewMetrics.p50 },
  ];
  for (const h of heads) {
    report.add({ scenario: SCENARIO, figure: `${label}: ${h.name} p50`, value: h.api.p50, unit: 'ms' });
    report.target(
      { scenario: SCENARIO, figure: `${label}: ${h.name} p95`, value: h.api.p95, unit: 'ms' },
      '<=',
      50,
      '≤ 50 ms (at 10M)',
    );
    report.add({
      scenario: SCENARIO,
      figure: `${label}: same numbers from the raw view, median of ${size.viewRuns}`,
      value: h.view,
      unit: 'ms',
    });
    const speedup = h.view / h.api.p50;
    report.target(
      {
        scenario: SCENARIO,
        figure: `${label}: ${h.name} speed-up vs raw view (p50)`,
        value: speedup,
        unit: '×',
        ratio: `${fmt(speedup)}× view`,
      },
      '>=',
      50,
      '≥ 50×',
    );
  }

  await checkResults(ctx, experiment.id, viewResults.result);
  await checkMetrics(ctx, experiment.id, viewMetrics.result);
}

/** results (MEAN and BINOMIAL) and the maintained rows equal the view-derived sufficient statistics. */
async function checkResults(
  ctx: Context,
  experimentId: string,
  viewMean: Awaited<ReturnType<typeof viewMetricStats>>,
): Promise<void> {
  const { report, sql, server } = ctx;
  const problems: string[] = [];
  const viewBinomial = await viewMetricStats(sql, experimentId, BINOMIAL_METRIC);
  for (const [metric, view] of [
    [MEAN_METRIC, viewMean],
    [BINOMIAL_METRIC, viewBinomial],
  ] as const) {
    const data = await graphql<{ experiment: { results: any } }>(server.graphqlUrl, RESULTS, {
      id: experimentId,
      metric,
    });
    const variants: any[] = data.experiment.results.variants;
    if (variants.length !== view.length)
      problems.push(`${metric}: ${variants.length} variants, view has ${view.length}`);
    for (const v of variants) {
      const w = view.find((x) => x.variantId === v.variant.id);
      if (!w) {
        problems.push(`${metric}: no view row for ${v.variant.name}`);
        continue;
      }
      const tag = `${metric}/${v.variant.name}`;
      if (v.units !== w.n) problems.push(`${tag} units ${v.units} ≠ ${w.n}`);
      if (metric === BINOMIAL_METRIC) {
        if (v.conversions !== w.unitsWithMetric)
          problems.push(`${tag} conversions ${v.conversions} ≠ ${w.unitsWithMetric}`);
        if (!closeTo(v.mean, w.unitsWithMetric / w.n))
          problems.push(`${tag} mean ${v.mean} ≠ ${w.unitsWithMetric / w.n}`);
      } else {
        const mean = w.sum / w.n;
        const sd = Math.sqrt((w.sumSquares - (w.sum * w.sum) / w.n) / (w.n - 1));
        if (!closeTo(v.mean, mean)) problems.push(`${tag} mean ${v.mean} ≠ ${mean}`);
        if (!closeTo(v.standardDeviation, sd))
          problems.push(`${tag} standardDeviation ${v.standardDeviation} ≠ ${sd}`);
      }
    }
  }
  // The maintained sufficient statistics themselves.
  const stored = await maintainedStats(sql, experimentId);
  for (const w of viewMean) {
    const exposure = stored.find((r) => r.variant_id === w.variantId && r.metric_name === 'exposure');
    const metric = stored.find((r) => r.variant_id === w.variantId && r.metric_name === MEAN_METRIC);
    if (exposure?.exposed_units !== w.n)
      problems.push(`stored exposed units ${exposure?.exposed_units} ≠ ${w.n}`);
    if (metric?.exposed_units !== w.unitsWithMetric)
      problems.push(`stored ${MEAN_METRIC} exposed_units ≠ view`);
    if (!closeTo(metric?.exposed_sum ?? Number.NaN, w.sum))
      problems.push(`stored exposed_sum ${metric?.exposed_sum} ≠ ${w.sum}`);
    if (!closeTo(metric?.exposed_sum_squares ?? Number.NaN, w.sumSquares))
      problems.push(`stored exposed_sum_squares ${metric?.exposed_sum_squares} ≠ ${w.sumSquares}`);
  }
  report.check(
    SCENARIO,
    'results = raw view (units, mean, sd; sums to 1e-9)',
    problems.length === 0,
    problems.slice(0, 5).join('; '),
  );
}

/** metrics { variantMetrics } equals the raw view: counts exactly, rate and mean to 1e-9. */
async function checkMetrics(
  ctx: Context,
  experimentId: string,
  view: Awaited<ReturnType<typeof viewCounts>>,
): Promise<void> {
  const { report, server } = ctx;
  const problems: string[] = [];
  const data = await graphql<{ experiment: { metrics: any } }>(server.graphqlUrl, METRICS, {
    id: experimentId,
  });
  const metrics = data.experiment.metrics;
  for (const m of metrics.variantMetrics as any[]) {
    const w = view.find((x) => x.variantId === m.variant.id);
    if (!w) {
      problems.push(`no view row for ${m.variant.name}`);
      continue;
    }
    const tag = m.variant.name;
    if (m.exposures !== w.exposures) problems.push(`${tag} exposures ${m.exposures} ≠ ${w.exposures}`);
    if (m.uniqueUsers !== w.uniqueUsers)
      problems.push(`${tag} uniqueUsers ${m.uniqueUsers} ≠ ${w.uniqueUsers}`);
    if (m.conversions !== w.conversions)
      problems.push(`${tag} conversions ${m.conversions} ≠ ${w.conversions}`);
    const rate = w.uniqueUsers ? w.convertedExposedUsers / w.uniqueUsers : 0;
    if (!closeTo(m.conversionRate, rate))
      problems.push(`${tag} conversionRate ${m.conversionRate} ≠ ${rate}`);
    const avg = w.conversions ? w.conversionValue / w.conversions : null;
    if (avg === null ? m.avgMetricValue !== null : !closeTo(m.avgMetricValue, avg))
      problems.push(`${tag} avgMetricValue ${m.avgMetricValue} ≠ ${avg}`);
  }
  const totalExposures = view.reduce((s, w) => s + w.exposures, 0);
  const totalUsers = view.reduce((s, w) => s + w.uniqueUsers, 0);
  if (metrics.totalExposures !== totalExposures)
    problems.push(`totalExposures ${metrics.totalExposures} ≠ ${totalExposures}`);
  if (metrics.totalUniqueUsers !== totalUsers)
    problems.push(`totalUniqueUsers ${metrics.totalUniqueUsers} ≠ ${totalUsers}`);
  report.check(
    SCENARIO,
    'metrics = raw view (counts exact, rates to 1e-9)',
    problems.length === 0,
    problems.slice(0, 5).join('; '),
  );
}
