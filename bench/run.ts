/**
 * `npm run bench`: creates a fresh database on DATABASE_URL's server, migrates it, starts the real
 * server in a child process, runs the scenarios against it, prints one table plus JSON (also written to
 * bench/results/latest.json), and cleans up (server stopped, database dropped unless --keep) on every
 * exit path. Exit code: 1 on a correctness failure, 0 otherwise; performance targets are only reported.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DatabaseHandle } from '../src/db/client';
import { createBenchKey } from './lib/auth';
import type { Context, Scenario } from './lib/context';
import {
  benchDatabaseName,
  createDatabase,
  databaseUrl,
  dropDatabase,
  harnessClient,
  openAndMigrate,
  redact,
  type Sql,
} from './lib/database';
import { useApiKey } from './lib/graphql';
import { formatJson } from './lib/json';
import { stopLoad } from './lib/load';
import { HelpRequested, type Options, parseOptions, type ScenarioName, USAGE } from './lib/options';
import { Report } from './lib/report';
import { REPO_ROOT, type ServerProcess, startServer } from './lib/server';
import { allocationScenario } from './scenarios/allocation';
import { assignmentScenario } from './scenarios/assignment';
import { dashboardScenario } from './scenarios/dashboard';
import { ingestionScenario } from './scenarios/ingestion';
import { readsScenario } from './scenarios/reads';
import { resultsScenario } from './scenarios/results';
import { segmentsScenario } from './scenarios/segments';

/** Execution order: the dashboard first, while its experiments are the only ones in the database. */
const PLAN: [ScenarioName, string, Scenario][] = [
  ['dashboard', '4 dashboard', dashboardScenario],
  // Right after the dashboard: it reads the 100 running experiments the dashboard created.
  ['reads', '5 reads', readsScenario],
  ['assignment', '1 assignment', assignmentScenario],
  ['allocation', '6 allocation', allocationScenario],
  ['ingestion', '2 ingestion', ingestionScenario],
  ['results', '3 results', resultsScenario],
  ['segments', '7 segments', segmentsScenario],
];

const log = (message: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);

let options: Options;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  if (error instanceof HelpRequested) {
    console.log(USAGE);
    process.exit(0);
  }
  console.error(error instanceof Error ? error.message : error);
  process.exit(2);
}

const report = new Report();
const startedAt = new Date();
const dbName = benchDatabaseName(startedAt);
const benchUrl = databaseUrl(options.adminUrl, dbName);
let databaseCreated = false;
let handle: DatabaseHandle | null = null;
let sql: Sql | null = null;
let server: ServerProcess | null = null;

let aborting = false;
let cleaning: Promise<void> | null = null;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    stopLoad();
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (error) {
        log(`cleanup: ${what} failed: ${error instanceof Error ? error.message : error}`);
      }
    };
    if (server) await step('stopping the server', () => server!.stop());
    if (handle) await step('closing the database handle', () => handle!.close());
    if (sql) await step('closing the harness client', () => sql!.end({ timeout: 5 }));
    if (databaseCreated && !options.keep) {
      await step(`dropping ${dbName}`, () => dropDatabase(options.adminUrl, dbName));
    } else if (databaseCreated) log(`kept database: ${redact(benchUrl)}`);
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping`);
    aborting = true;
    const force = setTimeout(() => process.exit(130), 30_000);
    force.unref();
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<number> {
  const loadAtStart = os.loadavg().map((n) => Math.round(n * 100) / 100);
  if (loadAtStart[0] > os.cpus().length * 0.5) {
    report.note(
      `load average ${loadAtStart.join(' ')} at start on ${os.cpus().length} cores: other work shares the machine`,
    );
  }
  log(
    `mode ${options.mode}; scenarios ${options.only.join(', ')}; database ${dbName} on ${redact(options.adminUrl)}`,
  );
  await createDatabase(options.adminUrl, dbName);
  databaseCreated = true;
  handle = await openAndMigrate(benchUrl);
  sql = harnessClient(benchUrl);
  useApiKey(await createBenchKey(handle));
  const [{ version }] = await sql<{ version: string }[]>`SELECT current_setting('server_version') AS version`;
  server = await startServer(benchUrl);
  log(`server pid ${server.pid} on ${server.origin}`);

  const ctx: Context = {
    options,
    sizes: options.sizes,
    report,
    sql,
    handle,
    benchUrl,
    server,
    runId: startedAt.getTime().toString(36),
    log,
  };
  for (const [name, label, scenario] of PLAN) {
    if (!options.only.includes(name) || aborting) continue;
    log(`— ${label}`);
    const t0 = Date.now();
    try {
      await scenario(ctx);
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      report.check(label, 'scenario completed', false, message.split('\n').slice(0, 4).join(' | '));
    }
    log(`${label} took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const problems = server.problems();
  report.check(
    '9 server',
    'no warning or error logged by the server',
    problems.length === 0,
    problems.slice(0, 3).join(' | ').slice(0, 600),
  );
  await cleanup();

  const summary = {
    mode: options.mode,
    scenarios: options.only,
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      postgres: version,
      loadAverageAtStart: loadAtStart.join(' '),
    },
    database: options.keep ? redact(benchUrl) : `${dbName} (dropped)`,
    rows: report
      .tableRows()
      .map((r) => ({ ...r, value: typeof r.value === 'number' ? round(r.value) : r.value })),
    checks: report.checks,
    notes: report.notes,
    failures: report.failures.length,
  };
  const json = formatJson(summary);
  console.log(report.table());
  for (const note of report.notes) console.log(`note: ${note}`);
  console.log();
  process.stdout.write(json);
  const dir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'latest.json'), json);
  log(
    report.failures.length
      ? `${report.failures.length} correctness check(s) FAILED`
      : `all ${report.checks.length} checks passed; targets: ${report.rows.filter((r) => r.status === 'PASS').length} PASS, ${report.rows.filter((r) => r.status === 'MISS').length} MISS`,
  );
  return report.failures.length ? 1 : 0;
}

function round(n: number): number {
  return Math.abs(n) >= 100 ? Math.round(n) : Math.round(n * 1000) / 1000;
}

main()
  .then((code) => process.exit(code))
  .catch(async (error) => {
    console.error(error);
    await cleanup();
    process.exit(1);
  });
