/**
 * 5. The dashboard's reads head to head with PostGraphile 5 (amber preset), on the same database
 * (≥ 100 running experiments × 3 variants), 10 connections, in alternating rounds:
 *   (1) list: 50 experiments with `id key name status` and their variants `id name weight`;
 *   (2) dashboard: 50 running experiments with totalCount, assignment counts, variants and per-variant
 *       metrics (PostGraphile reads the maintained statistics table; the rate is derived client-side);
 *   (3) experiment: one experiment by key (a different one per request) with variants and audit log.
 * Plus the floor: the same rows from one hand-written SQL statement behind a bare node:http handler.
 * Every contender runs in its own process; the answers must agree (a correctness check), and SQL
 * statements per request are counted for each (ours in-process with the statement counter, the peers
 * through their `/__statements`).
 */
import { securityConfigFromEnv } from '../../src/config';
import { createApp } from '../../src/http/app';
import { ResponseCache } from '../../src/http/plugins/response-cache';
import { createLogger } from '../../src/logger';
import type { Context } from '../lib/context';
import { type CpuShare, describeCpu, startCpuMeter } from '../lib/cpu';
import { createRunningExperiment } from '../lib/data';
import { requestHeaders } from '../lib/graphql';
import { judgeLoad, type LoadResult, runLoad } from '../lib/load';
import { median } from '../lib/stats';
import { type ServerProcess, startServer } from '../lib/server';
import { seedEvents } from './dashboard';

const SCENARIO = '5 reads';
const PAGE = 50;
const AUDIT = 20;

type Json = any;

interface Read {
  name: string;
  label: string;
  ours: { query: string; variables?: (key: string) => Record<string, unknown> };
  postgraphile: { query: string; variables?: (key: string) => Record<string, unknown> };
  floor: { path: string; arg: (key: string) => string | number };
  /** Each contender's `data` in one shape, so the answers can be compared. */
  normalize: { ours(data: Json): Json; postgraphile(data: Json): Json; floor(data: Json): Json };
  /** A well-formed answer (checked on every response of the load runs). */
  accept(normalized: Json): boolean;
  /** Compare PostGraphile's statements with ours (targets (1) and (3)). */
  statementTarget: boolean;
}

// PostGraphile names enum values as the database does (`running`); ours are upper case.
const upper = (status: string) => status.toUpperCase();
const iso = (value: string) => new Date(value).toISOString();
const rate = (n: number) => Math.round(n * 1e12) / 1e12;

const READS: Read[] = [
  {
    name: 'list',
    label: '(1) list: 50 experiments + variants',
    ours: {
      query: `query List { experiments(first: ${PAGE}) { edges { node {
        id key name status variants { id name weight } } } } }`,
    },
    postgraphile: {
      query: `query List { experiments(first: ${PAGE}, orderBy: [CREATED_AT_DESC, ROW_ID_DESC]) { nodes {
        id: rowId key name status
        variants: experimentVariants(orderBy: [POSITION_ASC, ROW_ID_ASC]) { nodes { id: rowId name weight } } } } }`,
    },
    floor: { path: '/list', arg: () => PAGE },
    normalize: {
      ours: (d) => d.experiments.edges.map((e: Json) => e.node),
      postgraphile: (d) =>
        d.experiments.nodes.map((n: Json) => ({ ...n, status: upper(n.status), variants: n.variants.nodes })),
      floor: (d) => d.experiments,
    },
    accept: (rows) => rows.length === PAGE && rows.every((r: Json) => r.variants.length === 3),
    statementTarget: true,
  },
  {
    name: 'dashboard',
    label: '(2) dashboard: 50 running + counts + variant metrics',
    ours: {
      query: `query Dashboard { experiments(first: ${PAGE}, status: RUNNING) { totalCount edges { node {
        id key name status assignmentCount
        variants { id name weight isControl metrics { exposures uniqueUsers conversions conversionRate } }
      } } } }`,
    },
    postgraphile: {
      query: `query Dashboard {
        experiments(first: ${PAGE}, condition: { status: running }, orderBy: [CREATED_AT_DESC, ROW_ID_DESC]) {
          totalCount
          nodes {
            id: rowId key name status
            experimentAssignments { totalCount }
            variants: experimentVariants(orderBy: [POSITION_ASC, ROW_ID_ASC]) { nodes {
              id: rowId name weight isControl
              experimentVariantStatsByVariantId { nodes { metricName events units exposedUnits } }
            } }
          }
        } }`,
    },
    floor: { path: '/dashboard', arg: () => PAGE },
    normalize: {
      ours: (d) => ({
        totalCount: d.experiments.totalCount,
        experiments: d.experiments.edges.map(({ node }: Json) => ({
          ...node,
          variants: node.variants.map((v: Json) => ({
            ...v,
            metrics: { ...v.metrics, conversionRate: rate(v.metrics.conversionRate) },
          })),
        })),
      }),
      // What a PostGraphile client does with the statistics rows: the same formulas as get_experiment_summary.
      postgraphile: (d) => ({
        totalCount: d.experiments.totalCount,
        experiments: d.experiments.nodes.map(({ experimentAssignments, variants, ...e }: Json) => ({
          ...e,
          status: upper(e.status),
          assignmentCount: Number(experimentAssignments.totalCount),
          variants: variants.nodes.map(({ experimentVariantStatsByVariantId: stats, ...v }: Json) => {
            const of = (metric: string) => stats.nodes.find((s: Json) => s.metricName === metric);
            const exposure = of('exposure');
            const any = of('$any');
            const units = Number(exposure?.units ?? 0);
            return {
              ...v,
              metrics: {
                exposures: Number(exposure?.events ?? 0),
                uniqueUsers: units,
                conversions: Number(any?.events ?? 0),
                conversionRate: units === 0 ? 0 : rate(Number(any?.exposedUnits ?? 0) / units),
              },
            };
          }),
        })),
      }),
      floor: (d) => ({
        ...d,
        experiments: d.experiments.map((e: Json) => ({
          ...e,
          variants: e.variants.map((v: Json) => ({
            ...v,
            metrics: { ...v.metrics, conversionRate: rate(v.metrics.conversionRate) },
          })),
        })),
      }),
    },
    accept: (d) => d.experiments.length === PAGE && d.totalCount >= PAGE,
    statementTarget: false,
  },
  {
    name: 'experiment',
    label: '(3) experiment by key + variants + audit log',
    ours: {
      query: `query Experiment($key: String!) { experiment(key: $key) {
        id key name status variants { id name weight isControl config }
        auditLog(first: ${AUDIT}) { id action actor createdAt details } } }`,
      variables: (key) => ({ key }),
    },
    postgraphile: {
      query: `query Experiment($key: String!) { experimentByKey(key: $key) {
        id: rowId key name status
        variants: experimentVariants(orderBy: [POSITION_ASC, ROW_ID_ASC]) { nodes {
          id: rowId name weight isControl config } }
        auditLog: auditLogsByEntityId(first: ${AUDIT}, orderBy: [CREATED_AT_DESC, ROW_ID_DESC]) { nodes {
          id: rowId action actor createdAt details } } } }`,
      variables: (key) => ({ key }),
    },
    floor: { path: '/experiment', arg: (key) => key },
    normalize: {
      ours: (d) => ({
        ...d.experiment,
        auditLog: d.experiment.auditLog.map((a: Json) => ({ ...a, createdAt: iso(a.createdAt) })),
      }),
      postgraphile: (d) => ({
        ...d.experimentByKey,
        status: upper(d.experimentByKey.status),
        variants: d.experimentByKey.variants.nodes,
        auditLog: d.experimentByKey.auditLog.nodes.map((a: Json) => ({ ...a, createdAt: iso(a.createdAt) })),
      }),
      floor: (d) => ({
        ...d.experiment,
        auditLog: d.experiment.auditLog.map((a: Json) => ({ ...a, createdAt: iso(a.createdAt) })),
      }),
    },
    accept: (e) => e !== null && e.variants.length === 3 && e.auditLog.length >= 2,
    statementTarget: true,
  },
];

type ContenderName = 'ours' | 'cold' | 'postgraphile' | 'floor';

/** Our two servers: as deployed (response cache on, warm after the warm-up) and with it off. */
const OURS: readonly ContenderName[] = ['ours', 'cold'];

interface Contender {
  name: ContenderName;
  label: string;
  server: ServerProcess;
  path(read: Read): string;
  body(read: Read, key: string): string;
  normalize(read: Read, data: Json): Json;
}

/** Runs summed over the rounds of one contender on one read. */
interface Tally {
  good: number;
  seconds: number;
  p50: number[];
  p99: number[];
  serverMs: number;
  postgresMs: number;
  shares: (CpuShare | null)[];
  loads: LoadResult[];
}

/** Object keys sorted, so two answers compare as JSON whatever order each server wrote them in. */
function canonical(value: Json): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]]),
        )
      : v,
  );
}

/** Where the canonical answers first part ways, with a little context from each. */
function difference(answers: [string, string][]): string {
  const [, first] = answers[0];
  return answers
    .map(([name, text]) => {
      let i = 0;
      while (i < text.length && text[i] === first[i]) i++;
      return `${name} (${text.length} chars): …${text.slice(Math.max(0, i - 80), i + 120)}`;
    })
    .join(' | ');
}

async function ensureExperiments(ctx: Context, count: number): Promise<string[]> {
  const keysOf = async () =>
    (
      await ctx.sql<{ key: string }[]>`
        SELECT key FROM experiments WHERE status = 'running' ORDER BY created_at DESC, id DESC`
    ).map((r) => r.key);
  let keys = await keysOf();
  for (let i = keys.length; i < count; i++) {
    const experiment = await createRunningExperiment(
      ctx.server.graphqlUrl,
      `bench-reads-${ctx.runId}-${i}`,
      3,
    );
    await seedEvents(ctx, experiment, ctx.sizes.dashboard.eventsPerExperiment);
  }
  if (keys.length < count) keys = await keysOf();
  return keys;
}

export async function readsScenario(ctx: Context): Promise<void> {
  const { report, handle, sizes } = ctx;
  const size = sizes.reads;
  const keys = await ensureExperiments(ctx, size.experiments);
  ctx.log(`reads: ${keys.length} running experiments; starting PostGraphile and the floor`);

  const peers: ServerProcess[] = [];
  try {
    const [postgraphile, floor, cold] = await Promise.all([
      startServer(ctx.benchUrl, { script: 'bench/peers/postgraphile.ts' }),
      startServer(ctx.benchUrl, { script: 'bench/peers/floor.ts' }),
      // Every request executed: what a read costs the first time, or for a document nobody repeats.
      startServer(ctx.benchUrl, { env: { RESPONSE_CACHE_TTL_MS: '0' } }),
    ]);
    peers.push(postgraphile, floor, cold);
    const graphqlBody = (spec: Read['ours']) => (key: string) =>
      JSON.stringify({ query: spec.query, variables: spec.variables?.(key) ?? {} });
    const contenders: Contender[] = [
      {
        name: 'ours',
        label: 'sona-experiments (response cache, warm)',
        server: ctx.server,
        path: () => '/graphql',
        body: (read, key) => graphqlBody(read.ours)(key),
        normalize: (read, data) => read.normalize.ours(data),
      },
      {
        name: 'cold',
        label: 'sona-experiments (no response cache)',
        server: cold,
        path: () => '/graphql',
        body: (read, key) => graphqlBody(read.ours)(key),
        normalize: (read, data) => read.normalize.ours(data),
      },
      {
        name: 'postgraphile',
        label: 'PostGraphile 5',
        server: postgraphile,
        path: () => '/graphql',
        body: (read, key) => graphqlBody(read.postgraphile)(key),
        normalize: (read, data) => read.normalize.postgraphile(data),
      },
      {
        name: 'floor',
        label: 'floor (one SQL, bare handler)',
        server: floor,
        path: (read) => read.floor.path,
        body: (read, key) => JSON.stringify({ arg: read.floor.arg(key) }),
        normalize: (read, data) => read.normalize.floor(data),
      },
    ];

    // Ours in-process (same schema and resolvers) to count statements with the project's counter, without
    // and with a response cache (primed by the first request; nothing changes during the scenario).
    const inProcess = (responseCache: ResponseCache | null) =>
      createApp({
        db: handle.db,
        logger: createLogger('warn'),
        security: securityConfigFromEnv({}),
        responseCache,
      });
    const apps = { cold: inProcess(null), ours: inProcess(new ResponseCache(60_000)) };
    const oursStatements = async (name: ContenderName, read: Read, key: string) => {
      const app = name === 'cold' ? apps.cold : apps.ours;
      const before = handle.statements.count;
      const res = await app.fetch('http://127.0.0.1/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: graphqlBody(read.ours)(key),
      });
      const statements = handle.statements.count - before;
      await res.text();
      return statements;
    };
    const peerStatements = async (contender: Contender, read: Read, key: string) => {
      const count = async () =>
        ((await (await fetch(`${contender.server.origin}/__statements`)).json()) as { statements: number })
          .statements;
      const before = await count();
      await call(contender, read, key);
      return (await count()) - before;
    };
    const call = async (contender: Contender, read: Read, key: string): Promise<Json> => {
      const res = await fetch(`${contender.server.origin}${contender.path(read)}`, {
        method: 'POST',
        headers: { ...requestHeaders(), accept: 'application/json' },
        body: contender.body(read, key),
        signal: AbortSignal.timeout(60_000),
      });
      const text = await res.text();
      const body = JSON.parse(text) as { data?: Json; errors?: unknown[] };
      if (!res.ok || body.errors?.length || !body.data)
        throw new Error(`${contender.name} ${read.name}: HTTP ${res.status} ${text.slice(0, 400)}`);
      return contender.normalize(read, body.data);
    };

    for (const read of READS) {
      // Same answers from every contender, for the same key.
      const key = keys[0];
      const answers = await Promise.all(contenders.map((c) => call(c, read, key)));
      const same = answers.every((a) => canonical(a) === canonical(answers[0]));
      report.check(
        SCENARIO,
        `${read.name}: the answers are equal`,
        same && read.accept(answers[0]),
        same ? '' : difference(answers.map((a, i) => [contenders[i].name, canonical(a)])),
      );

      const statements: Record<ContenderName, number> = { ours: 0, cold: 0, postgraphile: 0, floor: 0 };
      await oursStatements('ours', read, key); // primes the cache
      for (const c of contenders) {
        const ours = OURS.includes(c.name);
        const first = ours ? await oursStatements(c.name, read, key) : await peerStatements(c, read, key);
        const again = ours ? await oursStatements(c.name, read, key) : await peerStatements(c, read, key);
        report.check(
          SCENARIO,
          `${read.name}: ${c.name} statement count stable`,
          first === again,
          `${first} then ${again}`,
        );
        statements[c.name] = again;
      }

      const tallies = new Map<ContenderName, Tally>();
      let request = 0;
      for (let round = 0; round < size.rounds; round++) {
        // Alternate who goes first, so neither always runs on a cooler (or hotter) machine.
        const [ours, cold, peer, floor] = contenders;
        const order = round % 2 === 0 ? contenders : [peer, cold, ours, floor];
        for (const c of order) {
          const load = (length: typeof size.run) =>
            runLoad({
              origin: c.server.origin,
              path: c.path(read),
              connections: size.connections,
              length,
              body: () => c.body(read, keys[request++ % keys.length]),
              accept: (data) => read.accept(c.normalize(read, data)),
            });
          if (round === 0) await load(size.warmup);
          const cpu = await startCpuMeter(c.server.pid, ctx.sql);
          const result = await load(size.run);
          const share = await cpu.stop();
          const tally = tallies.get(c.name) ?? {
            good: 0,
            seconds: 0,
            p50: [],
            p99: [],
            serverMs: 0,
            postgresMs: 0,
            shares: [],
            loads: [],
          };
          tally.good += result.good;
          tally.seconds += result.durationSeconds;
          tally.p50.push(result.p50);
          tally.p99.push(result.p99);
          if (share) {
            tally.serverMs += share.server * share.wallSeconds * 1000;
            tally.postgresMs += share.postgres * share.wallSeconds * 1000;
          }
          tally.shares.push(share);
          tally.loads.push(result);
          tallies.set(c.name, tally);
          ctx.log(
            `reads ${read.name} round ${round + 1} ${c.name}: ${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.p50} p99 ${result.p99} ms; CPU ${describeCpu(share)}`,
          );
        }
      }

      const rps = (name: ContenderName) => {
        const t = tallies.get(name)!;
        return t.seconds ? t.good / t.seconds : 0;
      };
      for (const c of contenders) {
        const t = tallies.get(c.name)!;
        const mine = rps(c.name);
        const row = {
          scenario: SCENARIO,
          figure: `${read.label}: ${c.label}, ${size.connections} conn`,
          value: mine,
          unit: 'req/s',
        };
        if (OURS.includes(c.name)) {
          const ratio = mine / rps('postgraphile');
          report.target(
            {
              ...row,
              ratio: `${ratio.toFixed(2)}× PostGraphile, ${(mine / rps('floor')).toFixed(2)}× floor`,
            },
            '>=',
            rps('postgraphile'),
            '≥ 1.0× PostGraphile',
          );
        } else report.add(row);
        report.add({
          scenario: SCENARIO,
          figure: `${read.label}: ${c.label}, latency p50 / p99 (median of rounds)`,
          value: `${median(t.p50)} / ${median(t.p99)}`,
          unit: 'ms',
        });
        const requests = t.loads.reduce((s, l) => s + l.responses, 0);
        report.add({
          scenario: SCENARIO,
          figure: `${read.label}: ${c.label}, CPU ms per request (server / pg)`,
          value: requests
            ? `${(t.serverMs / requests).toFixed(3)} / ${(t.postgresMs / requests).toFixed(3)}`
            : 'n/a',
          unit: 'ms',
        });
        const statementRow = {
          scenario: SCENARIO,
          figure: `${read.label}: ${c.label}, SQL statements per request`,
          value: statements[c.name],
          unit: 'statements',
        };
        if (OURS.includes(c.name) && read.statementTarget)
          report.target(
            statementRow,
            '<=',
            statements.postgraphile,
            `≤ PostGraphile (${statements.postgraphile})`,
          );
        else report.add(statementRow);
        const busiest = Math.max(0, ...t.shares.map((share) => share?.other ?? 0));
        if (busiest > 0.3)
          report.note(
            `${SCENARIO} / ${read.name} / ${c.name}: other processes used up to ${busiest.toFixed(2)} cores in a round; compare the ratio (alternating rounds) and CPU per request, not req/s`,
          );
        const judged = t.loads.map((l) => judgeLoad(l, size.run));
        report.check(
          SCENARIO,
          `${read.name}: ${c.name} bad responses ≤ 0.1%`,
          judged.every((j) => j.pass),
          judged.map((j) => j.detail).join(' | '),
        );
      }
    }
  } finally {
    for (const peer of peers) {
      const problems = peer.problems();
      if (problems.length)
        report.note(`${SCENARIO}: a peer logged ${problems.slice(0, 2).join(' | ').slice(0, 400)}`);
      await peer.stop();
    }
  }
}
