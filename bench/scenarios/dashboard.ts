/**
 * 4. The dashboard query at 10 and 100 experiments: requests/s (autocannon, 10 connections) and SQL
 * statements per request, counted in this process with the project's own app and statement counter.
 * Runs first, so the page holds exactly the experiments it created.
 */
import { randomUUID } from 'node:crypto';
import { securityConfigFromEnv } from '../../src/config';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/logger';
import type { Context } from '../lib/context';
import { describeCpu, startCpuMeter } from '../lib/cpu';
import { type BenchExperiment, createRunningExperiment, variantFor } from '../lib/data';
import { graphql } from '../lib/graphql';
import { judgeLoad, runLoad } from '../lib/load';

const SCENARIO = '4 dashboard';

const dashboardQuery = (first: number) => `query Dashboard {
  experiments(first: ${first}) {
    edges { node {
      variants { metrics { exposures conversions conversionRate } }
      metrics { variantMetrics { conversions } }
      assignmentCount
    } }
  }
}`;

const RECORD = `mutation Record($events: [EventInput!]!) {
  recordEvents(events: $events) { accepted duplicates rejected { index code message } }
}`;

/** A few enrolled users per experiment: an exposure naming the variant (SDK-side), then maybe a conversion. */
export async function seedEvents(ctx: Context, experiment: BenchExperiment, count: number): Promise<void> {
  const events: Record<string, unknown>[] = [];
  for (let j = 0; events.length < count; j++) {
    const userId = `dash-${experiment.key}-${j}`;
    const variantId = variantFor(experiment, userId).id;
    events.push({
      kind: 'EXPOSURE',
      experimentKey: experiment.key,
      userId,
      variantId,
      eventId: randomUUID(),
    });
    if (j % 2 === 0 && events.length < count)
      events.push({
        kind: 'CONVERSION',
        experimentKey: experiment.key,
        userId,
        metricName: 'conversion',
        eventId: randomUUID(),
      });
  }
  const data = await graphql<{ recordEvents: { accepted: number } }>(ctx.server.graphqlUrl, RECORD, {
    events,
  });
  if (data.recordEvents.accepted !== events.length) {
    throw new Error(`dashboard seed: ${JSON.stringify(data.recordEvents)}`);
  }
}

export async function dashboardScenario(ctx: Context): Promise<void> {
  const { sizes, report, server, handle } = ctx;
  const size = sizes.dashboard;
  // Same schema and resolvers as the server; no API key needed in-process (an empty environment).
  const app = createApp({ db: handle.db, logger: createLogger('warn'), security: securityConfigFromEnv({}) });
  const countStatements = async (query: string): Promise<{ statements: number; edges: number }> => {
    const before = handle.statements.count;
    const res = await app.fetch('http://127.0.0.1/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    const statements = handle.statements.count - before;
    const body = (await res.json()) as { data?: any; errors?: { message: string }[] };
    if (!res.ok || body.errors?.length)
      throw new Error(`dashboard in-process: ${JSON.stringify(body.errors)}`);
    return { statements, edges: body.data.experiments.edges.length };
  };

  const [existing] = await ctx.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM experiments`;
  if (existing.n !== 0)
    throw new Error(`dashboard must run on an empty database (found ${existing.n} experiments)`);

  let created = 0;
  const statementCounts: number[] = [];
  for (const n of size.counts) {
    for (; created < n; created++) {
      const experiment = await createRunningExperiment(
        server.graphqlUrl,
        `bench-dash-${ctx.runId}-${created}`,
        3,
      );
      await seedEvents(ctx, experiment, size.eventsPerExperiment);
    }
    const first = n <= 50 ? 50 : 100;
    const query = dashboardQuery(first);
    await countStatements(query); // warm-up
    const a = await countStatements(query);
    const b = await countStatements(query);
    statementCounts.push(a.statements);
    report.check(
      SCENARIO,
      `${n} experiments: page complete, statement count stable`,
      a.edges === n && b.edges === n && a.statements === b.statements,
      `${a.edges}/${n} edges; ${a.statements} then ${b.statements} statements`,
    );

    const cpu = await startCpuMeter(server.pid, ctx.sql);
    const load = await runLoad({
      origin: server.origin,
      connections: size.connections,
      length: size.run,
      body: () => JSON.stringify({ query }),
      accept: (data) => data.experiments?.edges?.length === n,
    });
    const share = await cpu.stop();
    ctx.log(
      `dashboard ${n}: ${load.requestsPerSecond.toFixed(0)} req/s, ${a.statements} statements; CPU ${describeCpu(share)}`,
    );
    report.add({
      scenario: SCENARIO,
      figure: `${n} experiments (first: ${first}): throughput (${size.connections} conn)`,
      value: load.requestsPerSecond,
      unit: 'req/s',
    });
    report.add({
      scenario: SCENARIO,
      figure: `${n} experiments: latency p50 / p99`,
      value: `${load.p50} / ${load.p99}`,
      unit: 'ms',
    });
    report.add({
      scenario: SCENARIO,
      figure: `${n} experiments: SQL statements per request`,
      value: a.statements,
      unit: 'statements',
    });
    report.cpu(SCENARIO, `${n} experiments`, share, {
      count: load.responses,
      per: 'request',
      rateUnit: 'req/s',
    });
    const judged = judgeLoad(load, size.run);
    report.check(SCENARIO, `${n} experiments: bad responses ≤ 0.1%`, judged.pass, judged.detail);
  }
  const constant = statementCounts.every((s) => s === statementCounts[0]);
  report.add({
    scenario: SCENARIO,
    figure: `statements per request at ${size.counts.join(' vs ')} experiments`,
    value: statementCounts.join(' vs '),
    unit: 'statements',
    target: 'constant in N',
    status: constant ? 'PASS' : 'MISS',
  });
  report.check(SCENARIO, 'statements constant in N', constant, statementCounts.join(' vs '));
}
