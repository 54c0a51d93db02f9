/**
 * `npm run bench:instances`: how throughput grows from one instance to several on one PostgreSQL. For each
 * instance count (default 1 and 3) it starts that many real servers (child processes, as in production) on
 * a fresh database, and drives them round robin from one load generator with the same number of concurrent
 * clients: ingestion (`POST /v1/events`, batches of 100 events of one of 4 running experiments: 70 %
 * exposures, 30 % conversions of assigned units) and assignment of new units (`POST /v1/assignments`, each
 * an enrolment write). Prints a markdown table
 * (with the machine, the load average before and after, and where the CPU went) for docs/scaling.md, and
 * drops the database and stops every server on every exit path.
 *
 *   npm run bench:instances                          # 1 and 3 instances, 15 s per figure (after 3 s warm-up)
 *   npm run bench:instances -- --instances 1,2,3 --seconds 30 --clients 24 --experiments 4 --batch 100
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createBenchKey } from './lib/auth';
import { describeCpu, startCpuMeter } from './lib/cpu';
import { assignUsers, createRunningExperiment, prng } from './lib/data';
import {
  benchDatabaseName,
  createDatabase,
  databaseUrl,
  dropDatabase,
  harnessClient,
  openAndMigrate,
  type Sql,
} from './lib/database';
import { requestHeaders, useApiKey } from './lib/graphql';
import { DEFAULT_DATABASE_URL } from './lib/options';
import { type ServerProcess, startServer } from './lib/server';
import { median, msSince, percentile } from './lib/stats';

const { values: args } = parseArgs({
  options: {
    instances: { type: 'string', default: '1,3' },
    seconds: { type: 'string', default: '15' },
    clients: { type: 'string', default: '24' },
    batch: { type: 'string', default: '100' },
    warmup: { type: 'string', default: '3' },
    experiments: { type: 'string', default: '4' },
  },
});
const counts = args.instances.split(',').map(Number);
const seconds = Number(args.seconds);
const clients = Number(args.clients);
const batch = Number(args.batch);
const warmup = Number(args.warmup);
const experimentCount = Number(args.experiments);
if (
  counts.some((n) => !Number.isInteger(n) || n < 1) ||
  !(experimentCount >= 1) ||
  !(seconds > 0) ||
  !(clients > 0) ||
  !(batch > 0)
) {
  console.error(
    'usage: npm run bench:instances -- [--instances 1,3] [--seconds 15] [--warmup 3] [--clients 24] [--batch 100] [--experiments 4]',
  );
  process.exit(2);
}

const log = (message: string) =>
  console.error(`[instances ${new Date().toISOString().slice(11, 19)}] ${message}`);
const load = () =>
  os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');

interface Run {
  /** Units of work done: events accepted, or units enrolled. */
  done: number;
  seconds: number;
  latencies: number[];
  failures: number;
  firstFailure: string | null;
}

/** `clients` loops for `length` seconds, each calling `step` with the next instance (round robin). */
async function timed(
  servers: ServerProcess[],
  step: (server: ServerProcess) => Promise<number>,
  length = seconds,
): Promise<Run> {
  const run: Run = { done: 0, seconds: 0, latencies: [], failures: 0, firstFailure: null };
  const start = process.hrtime.bigint();
  const deadline = Date.now() + length * 1000;
  let turn = 0;
  const client = async () => {
    while (Date.now() < deadline) {
      const server = servers[turn++ % servers.length];
      const t0 = process.hrtime.bigint();
      try {
        // Not `run.done += await …`: that reads run.done before the await and loses the other clients' work.
        const done = await step(server);
        run.done += done;
        run.latencies.push(msSince(t0));
      } catch (error) {
        run.failures++;
        run.firstFailure ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  run.seconds = msSince(start) / 1000;
  return run;
}

async function post(url: string, body: unknown): Promise<any> {
  const res = await fetch(url, {
    method: 'POST',
    headers: requestHeaders(),
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

interface Row {
  instances: number;
  eventsPerSecond: number;
  eventsLatency: string;
  eventsCpu: string;
  assignmentsPerSecond: number;
  assignmentsLatency: string;
  assignmentsCpu: string;
  failures: number;
}

const adminUrl = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
const startedAt = new Date();
const dbName = benchDatabaseName(startedAt);
const url = databaseUrl(adminUrl, dbName);
let servers: ServerProcess[] = [];
let sql: Sql | null = null;
let created = false;

async function cleanup() {
  await Promise.allSettled(servers.map((s) => s.stop()));
  servers = [];
  await sql?.end({ timeout: 5 }).catch(() => {});
  if (created) await dropDatabase(adminUrl, dbName).catch(() => {});
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => void cleanup().finally(() => process.exit(130)));
}

async function measure(n: number): Promise<Row> {
  log(`${n} instance(s): starting`);
  servers = await Promise.all(
    Array.from({ length: n }, () => startServer(url, { env: { DB_POOL_SIZE: '10' } })),
  );
  const runId = `${n}-${startedAt.getTime().toString(36)}`;
  // Several experiments: batches of one experiment fold one after the other (its ingestion lock), batches of
  // different experiments in parallel, as in a service running many experiments.
  const experiments = await Promise.all(
    Array.from({ length: experimentCount }, (_, i) =>
      createRunningExperiment(servers[0].graphqlUrl, `bench-instances-${runId}-${i}`, 2),
    ),
  );
  const users = Array.from({ length: 20_000 }, (_, i) => `inst-${runId}-${i}`);
  for (const experiment of experiments) await assignUsers(sql!, experiment, users);
  const rand = prng(n);
  const pick = () => experiments[Math.floor(rand() * experiments.length)];
  const event = (experimentKey: string) => {
    const userId = users[Math.floor(rand() * users.length)];
    return rand() < 0.7
      ? { kind: 'EXPOSURE', experimentKey, userId, eventId: randomUUID() }
      : { kind: 'CONVERSION', experimentKey, userId, eventId: randomUUID(), metricName: 'conversion' };
  };
  // Unmeasured first (JIT, pool connections, caches), then measured with the CPU meters running.
  const meter = async (step: (server: ServerProcess) => Promise<number>) => {
    if (warmup > 0) await timed(servers, step, warmup);
    const what = () => timed(servers, step);
    const meters = await Promise.all(servers.map((s) => startCpuMeter(s.pid, sql!)));
    const result = await what();
    const shares = await Promise.all(meters.map((m) => m.stop()));
    // Every server's meter sees the same PostgreSQL and machine; the servers' own CPU adds up.
    const first = shares[0];
    const serverCores = shares.reduce((acc, s) => acc + (s?.server ?? 0), 0);
    return { result, cpu: first ? describeCpu({ ...first, server: serverCores }) : 'n/a' };
  };

  const ingestion = await meter(async (server) => {
    const { key } = pick();
    const r = await post(`${server.origin}/v1/events`, {
      events: Array.from({ length: batch }, () => event(key)),
    });
    if (r.rejected?.length) throw new Error(`rejected: ${JSON.stringify(r.rejected[0])}`);
    return r.accepted as number;
  });
  log(
    `${n}: ingestion ${(ingestion.result.done / ingestion.result.seconds).toFixed(0)} events/s (${ingestion.result.latencies.length} requests in ${ingestion.result.seconds.toFixed(1)} s); CPU ${ingestion.cpu}`,
  );
  let next = 0;
  const assignment = await meter(async (server) => {
    const r = await post(`${server.origin}/v1/assignments`, {
      experimentKey: pick().key,
      userId: `new-${runId}-${next++}`,
    });
    if (!r.enrolled) throw new Error(`not enrolled: ${JSON.stringify(r).slice(0, 200)}`);
    return 1;
  });
  log(
    `${n}: assignment ${(assignment.result.done / assignment.result.seconds).toFixed(0)}/s; CPU ${assignment.cpu}`,
  );
  const problems = servers.flatMap((s) => s.problems());
  if (problems.length) log(`${n}: server problems: ${problems.slice(0, 2).join(' | ').slice(0, 400)}`);
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
  const latency = (r: Run) => `${median(r.latencies).toFixed(0)} / ${percentile(r.latencies, 95).toFixed(0)}`;
  return {
    instances: n,
    eventsPerSecond: ingestion.result.done / ingestion.result.seconds,
    eventsLatency: latency(ingestion.result),
    eventsCpu: ingestion.cpu,
    assignmentsPerSecond: assignment.result.done / assignment.result.seconds,
    assignmentsLatency: latency(assignment.result),
    assignmentsCpu: assignment.cpu,
    failures: ingestion.result.failures + assignment.result.failures + problems.length,
  };
}

async function main() {
  const loadBefore = load();
  await createDatabase(adminUrl, dbName);
  created = true;
  const handle = await openAndMigrate(url);
  useApiKey(await createBenchKey(handle));
  await handle.close();
  sql = harnessClient(url);
  const [{ version }] = await sql<{ version: string }[]>`SELECT current_setting('server_version') AS version`;
  const rows: Row[] = [];
  for (const n of counts) rows.push(await measure(n));
  const loadAfter = load();
  await cleanup();

  const base = rows[0];
  const ratio = (v: number, b: number) => `${(v / b).toFixed(2)}×`;
  const lines = [
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, PostgreSQL ${version}; ${startedAt.toISOString()}.`,
    `Load average (1/5/15 min) before: ${loadBefore}; after: ${loadAfter}. ${clients} concurrent clients round robin over the instances, ${seconds} s per figure after ${warmup} s of warm-up, batches of ${batch} events of one of ${experimentCount} running experiments, DB_POOL_SIZE=10 per instance.`,
    '',
    '| instances | events/s (POST /v1/events) | vs 1 | p50 / p95 ms | new-unit assignments/s (POST /v1/assignments) | vs 1 | p50 / p95 ms | failures |',
    '| --: | --: | --: | --: | --: | --: | --: | --: |',
    ...rows.map(
      (r) =>
        `| ${r.instances} | ${r.eventsPerSecond.toFixed(0)} | ${ratio(r.eventsPerSecond, base.eventsPerSecond)} | ${r.eventsLatency} | ${r.assignmentsPerSecond.toFixed(0)} | ${ratio(r.assignmentsPerSecond, base.assignmentsPerSecond)} | ${r.assignmentsLatency} | ${r.failures} |`,
    ),
    '',
    'Where the CPU went (cores; server = all instances together):',
    '',
    '| instances | ingestion | assignment |',
    '| --: | --- | --- |',
    ...rows.map((r) => `| ${r.instances} | ${r.eventsCpu} | ${r.assignmentsCpu} |`),
  ];
  console.log(lines.join('\n'));
  return rows.some((r) => r.failures > 0) ? 1 : 0;
}

main()
  .then((code) => process.exit(code))
  .catch(async (error) => {
    console.error(error);
    await cleanup();
    process.exit(1);
  });
