/**
 * 1. Assignment over HTTP: autocannon with 50 connections. New users (a distinct userId per request,
 * each one stored) and returning users (a pool assigned by the setup, answered from the stored row).
 */
import type { Context } from '../lib/context';
import { describeCpu, startCpuMeter } from '../lib/cpu';
import { assignUsers, createRunningExperiment, variantFor } from '../lib/data';
import { type LoadResult, runLoad } from '../lib/load';

const SCENARIO = '1 assignment';
const MAX_BAD_SHARE = 0.001;

const ASSIGN = `mutation Assign($key: String!, $userId: String!) {
  assignVariant(experimentKey: $key, userId: $userId) {
    __typename
    ... on Assignment { userId enrolled reason variant { id name config } }
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

  let next = 0;
  const newUserBody = () =>
    JSON.stringify({
      query: ASSIGN,
      variables: { key: experiment.key, userId: `new-${ctx.runId}-${next++}` },
    });
  // A new user is ASSIGNED to the variant the bucketing function gives it (what an SDK would compute).
  let assignedSeen = 0;
  const isAssigned = (data: any) => {
    const a = data.assignVariant;
    const ok =
      a?.__typename === 'Assignment' &&
      a.reason === 'ASSIGNED' &&
      a.enrolled === true &&
      a.variant?.id === variantFor(experiment, a.userId).id;
    if (ok) assignedSeen++;
    return ok;
  };
  let turn = 0;
  const returningBody = () =>
    JSON.stringify({ query: ASSIGN, variables: { key: experiment.key, userId: pool[turn++ % pool.length] } });
  // A returning user gets the stored row back (EXISTING, same variant), without a new row.
  const isExisting = (data: any) => {
    const a = data.assignVariant;
    return (
      a?.__typename === 'Assignment' && a.reason === 'EXISTING' && a.variant?.id === stored.get(a.userId)
    );
  };

  if (size.warmupSeconds > 0) {
    await runLoad({
      origin: server.origin,
      connections: size.connections,
      durationSeconds: size.warmupSeconds,
      body: newUserBody,
      accept: (data) => isAssigned(data) || true,
    });
  }

  const runs: { name: string; target: number; body: () => string; accept: (d: any) => boolean }[] = [
    { name: 'new users', target: 2_500, body: newUserBody, accept: isAssigned },
    { name: 'returning users', target: 5_000, body: returningBody, accept: isExisting },
  ];
  for (const run of runs) {
    const cpu = await startCpuMeter(server.pid, ctx.sql);
    const result = await runLoad({
      origin: server.origin,
      connections: size.connections,
      durationSeconds: size.durationSeconds,
      body: run.body,
      accept: run.accept,
    });
    const share = await cpu.stop();
    ctx.log(
      `assignment ${run.name}: ${result.requestsPerSecond.toFixed(0)} req/s; CPU ${describeCpu(share)}`,
    );
    report.target(
      {
        scenario: SCENARIO,
        figure: `${run.name}: throughput (${size.connections} conn)`,
        value: result.requestsPerSecond,
        unit: 'req/s',
      },
      '>=',
      run.target,
    );
    report.add({ scenario: SCENARIO, figure: `${run.name}: latency p50`, value: result.p50, unit: 'ms' });
    report.add({ scenario: SCENARIO, figure: `${run.name}: latency p99`, value: result.p99, unit: 'ms' });
    report.cpu(SCENARIO, run.name, share, { count: result.responses, per: 'request', rateUnit: 'req/s' });
    checkResponses(ctx, run.name, result);
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

function checkResponses(ctx: Context, name: string, result: LoadResult): void {
  const share = result.responses ? result.bad / result.responses : 1;
  ctx.report.check(
    SCENARIO,
    `${name}: bad responses ≤ 0.1%`,
    result.responses > 0 && share <= MAX_BAD_SHARE,
    `${result.bad} bad (non-2xx ${result.non2xx}, GraphQL/unexpected ${result.bad - result.errors}, socket errors ${result.errors}, timeouts ${result.timeouts}) of ${result.responses}${result.firstBad ? `; first: ${result.firstBad}` : ''}`,
  );
}
