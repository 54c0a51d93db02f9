/**
 * 1. Assignment over HTTP: autocannon with 50 connections. New users (a distinct userId per request,
 * each one stored) and returning users (a pool assigned by the setup, answered from the stored row).
 */
import type { Context } from '../lib/context';
import { describeCpu, startCpuMeter } from '../lib/cpu';
import { assignUsers, createRunningExperiment, variantFor } from '../lib/data';
import { judgeLoad, type LoadLength, type LoadResult, runLoad } from '../lib/load';

const SCENARIO = '1 assignment';

const ASSIGN = `mutation Assign($key: String!, $userId: String!) {
  assignVariant(experimentKey: $key, userId: $userId) {
    __typename
    ... on Assignment { userId enrolled reason variant { id name isControl config } assignedAt }
    ... on Error { code message }
  }
}`;

export async function assignmentScenario(ctx: Context): Promise<void> {
  const { sizes, report, sql, server } = ctx;
  const size = sizes.assignment;
  const experiment = await createRunningExperiment(server.graphqlUrl, `bench-assign-${ctx.runId}`, 2);
  const pool = Array.from({ length: size.returningPool }, (_, i) => `returning-${ctx.runId}-${i}`);
  const stored = await assignUsers(sql, experiment, pool);
  ctx.log(`assignment: experiment ${experiment.key}, ${pool.length} returning users stored`);

  // Every request names a user id never used before (new) or one from the stored pool (returning).
  let next = 0;
  const newUser = () => `new-${ctx.runId}-${next++}`;
  let turn = 0;
  const returningUser = () => pool[turn++ % pool.length];

  // A new user is ASSIGNED to the variant the bucketing function gives it (what an SDK would compute).
  let assignedSeen = 0;
  const isAssigned = (a: any) => {
    const ok =
      a?.reason === 'ASSIGNED' &&
      a.enrolled === true &&
      a.variant?.id === variantFor(experiment, a.userId).id;
    if (ok) assignedSeen++;
    return ok;
  };
  // A returning user gets the stored row back (EXISTING, same variant), without a new row.
  const isExisting = (a: any) => a?.reason === 'EXISTING' && a.variant?.id === stored.get(a.userId);

  // The same question through both APIs: the SDK endpoint (plain JSON) and GraphQL's assignVariant.
  const apis = [
    {
      name: 'POST /v1/assignments',
      path: '/v1/assignments',
      protocol: 'json' as const,
      body: (userId: string) => JSON.stringify({ experimentKey: experiment.key, userId }),
      answer: (body: any) => body,
    },
    {
      name: 'GraphQL assignVariant',
      path: '/graphql',
      protocol: 'graphql' as const,
      body: (userId: string) => JSON.stringify({ query: ASSIGN, variables: { key: experiment.key, userId } }),
      answer: (data: any) => (data.assignVariant?.__typename === 'Assignment' ? data.assignVariant : null),
    },
  ];

  if (size.warmupSeconds > 0) {
    for (const api of apis) {
      await runLoad({
        origin: server.origin,
        connections: size.connections,
        length: { durationSeconds: size.warmupSeconds / apis.length },
        path: api.path,
        protocol: api.protocol,
        body: () => api.body(newUser()),
        accept: (data) => isAssigned(api.answer(data)) || true,
      });
    }
  }

  const users = [
    { name: 'new users', target: 2_500, user: newUser, accept: isAssigned },
    { name: 'returning users', target: 5_000, user: returningUser, accept: isExisting },
  ];
  for (const who of users) {
    const throughput: number[] = [];
    for (const api of apis) {
      const run = `${who.name}, ${api.name}`;
      const cpu = await startCpuMeter(server.pid, ctx.sql);
      const result = await runLoad({
        origin: server.origin,
        connections: size.connections,
        length: size.run,
        path: api.path,
        protocol: api.protocol,
        body: () => api.body(who.user()),
        accept: (data) => who.accept(api.answer(data)),
      });
      const share = await cpu.stop();
      ctx.log(`assignment ${run}: ${result.requestsPerSecond.toFixed(0)} req/s; CPU ${describeCpu(share)}`);
      throughput.push(result.requestsPerSecond);
      const figure = {
        scenario: SCENARIO,
        figure: `${run}: throughput (${size.connections} conn)`,
        value: result.requestsPerSecond,
        unit: 'req/s',
      };
      // The targets are for the SDK endpoint, the path SDKs and services take; GraphQL is reported.
      if (api.protocol === 'json') report.target(figure, '>=', who.target);
      else report.add(figure);
      report.add({ scenario: SCENARIO, figure: `${run}: latency p50`, value: result.p50, unit: 'ms' });
      report.add({ scenario: SCENARIO, figure: `${run}: latency p99`, value: result.p99, unit: 'ms' });
      report.cpu(SCENARIO, run, share, { count: result.responses, per: 'request', rateUnit: 'req/s' });
      checkResponses(ctx, run, result, size.run);
    }
    report.add({
      scenario: SCENARIO,
      figure: `${who.name}: ${apis[0].name} ÷ ${apis[1].name}`,
      value: throughput[0] / throughput[1],
      unit: '×',
      ratio: `${(throughput[0] / throughput[1]).toFixed(2)}× GraphQL`,
    });
  }

  // Every ASSIGNED answer stored a row; no id generated (some never sent) stored more than one.
  const [row] = await sql<{ n: number; total: number }[]>`
    SELECT count(*) FILTER (WHERE user_id LIKE ${`new-${ctx.runId}-%`})::int AS n, count(*)::int AS total
      FROM experiment_assignments WHERE experiment_id = ${experiment.id}`;
  report.check(
    SCENARIO,
    'a stored row per ASSIGNED answer, none for returning users',
    row.n >= assignedSeen && row.n <= next && row.total === row.n + pool.length,
    `${row.n} new rows, ${assignedSeen} ASSIGNED answers, ${next} ids generated, ${row.total} rows in all`,
  );
}

function checkResponses(ctx: Context, name: string, result: LoadResult, length: LoadLength): void {
  const { pass, detail } = judgeLoad(result, length);
  ctx.report.check(SCENARIO, `${name}: bad responses ≤ 0.1%`, pass, detail);
}
