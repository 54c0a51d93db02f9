/** Command line of `npm run bench` and the sizes of every scenario per mode. */
import type { LoadLength } from './load';

export const SCENARIOS = [
  'assignment',
  'ingestion',
  'results',
  'dashboard',
  'reads',
  'allocation',
  'segments',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** smoke: seconds, for CI (checks enforced, targets only reported); quick: default; large: 10M events. */
export type Mode = 'smoke' | 'quick' | 'large';

export interface Sizes {
  assignment: {
    connections: number;
    /** Each measured run (smoke: a request count, so a busy machine still gives answers to check). */
    run: LoadLength;
    warmupSeconds: number;
    /** Users assigned by the setup, asked for again in the returning-users run. */
    returningPool: number;
  };
  ingestion: {
    clients: number;
    /** Users assigned by the setup; events pick among them. */
    users: number;
    /** Events sent at each batch size (fixed count), and a wall-clock cap per run. */
    events: Record<100 | 1000, number>;
    maxSeconds: number;
  };
  results: {
    events: number;
    /** Sequential GraphQL requests per query (after warm-up). */
    requests: number;
    /** Runs of each raw-view SQL query. */
    viewRuns: number;
  };
  /** Results over time and per segment (issue 17): events generated in SQL, then rebuilt. */
  segments: {
    events: number;
    /** Sequential GraphQL requests per query (after warm-up). */
    requests: number;
    /** Alternating rounds of API batches with and without dimensions, and events per batch. */
    ingestRounds: number;
    batchSize: number;
  };
  dashboard: {
    connections: number;
    run: LoadLength;
    counts: [number, number];
    /** Events recorded per dashboard experiment (so the counts are not all zero). */
    eventsPerExperiment: number;
  };
  reads: {
    connections: number;
    /** Alternating rounds per read: each contender runs once per round. */
    rounds: number;
    run: LoadLength;
    /** Once per contender and read, before its first measured run. */
    warmup: LoadLength;
    /** Running experiments the reads see (created when the dashboard scenario did not). */
    experiments: number;
  };
}

export const SIZES: Record<Mode, Sizes> = {
  smoke: {
    assignment: { connections: 50, run: { requests: 500 }, warmupSeconds: 0, returningPool: 1_000 },
    ingestion: { clients: 4, users: 1_000, events: { 100: 2_000, 1000: 2_000 }, maxSeconds: 60 },
    results: { events: 10_000, requests: 20, viewRuns: 2 },
    segments: { events: 20_000, requests: 20, ingestRounds: 2, batchSize: 200 },
    dashboard: { connections: 10, run: { requests: 100 }, counts: [10, 100], eventsPerExperiment: 20 },
    reads: { connections: 10, rounds: 1, run: { requests: 50 }, warmup: { requests: 10 }, experiments: 100 },
  },
  quick: {
    assignment: { connections: 50, run: { durationSeconds: 10 }, warmupSeconds: 2, returningPool: 10_000 },
    ingestion: { clients: 4, users: 50_000, events: { 100: 100_000, 1000: 200_000 }, maxSeconds: 120 },
    results: { events: 1_000_000, requests: 200, viewRuns: 5 },
    segments: { events: 1_000_000, requests: 200, ingestRounds: 10, batchSize: 500 },
    dashboard: { connections: 10, run: { durationSeconds: 5 }, counts: [10, 100], eventsPerExperiment: 40 },
    reads: {
      connections: 10,
      rounds: 3,
      run: { durationSeconds: 5 },
      warmup: { durationSeconds: 2 },
      experiments: 100,
    },
  },
  large: {
    assignment: { connections: 50, run: { durationSeconds: 10 }, warmupSeconds: 2, returningPool: 10_000 },
    ingestion: { clients: 4, users: 200_000, events: { 100: 200_000, 1000: 1_000_000 }, maxSeconds: 300 },
    results: { events: 10_000_000, requests: 200, viewRuns: 5 },
    segments: { events: 10_000_000, requests: 200, ingestRounds: 20, batchSize: 500 },
    dashboard: { connections: 10, run: { durationSeconds: 5 }, counts: [10, 100], eventsPerExperiment: 40 },
    reads: {
      connections: 10,
      rounds: 3,
      run: { durationSeconds: 5 },
      warmup: { durationSeconds: 2 },
      experiments: 100,
    },
  },
};

export interface Options {
  mode: Mode;
  only: ScenarioName[];
  /** Keep the bench database (and print its URL) instead of dropping it. */
  keep: boolean;
  /** The server the bench database is created on. */
  adminUrl: string;
  sizes: Sizes;
}

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export const USAGE = `Usage: npm run bench -- [--smoke | --scale quick|large] [--only a,b] [--keep]

  --smoke          tiny sizes, counted in requests (not seconds, so a busy machine still passes);
                   exits non-zero only on correctness failures (CI)
  --scale quick    default: 10 s autocannon runs, 1M events for results
  --scale large    10M events for results, bigger ingestion runs
  --only LIST      comma-separated subset of: ${SCENARIOS.join(', ')}
  --keep           keep the sona_bench_* database instead of dropping it

Environment: DATABASE_URL (default ${DEFAULT_DATABASE_URL}) names the PostgreSQL server; the harness
creates a fresh database sona_bench_<timestamp> on it, migrates it, and drops it at the end.`;

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Options {
  let mode: Mode = 'quick';
  let only: ScenarioName[] = [...SCENARIOS];
  let keep = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--smoke') mode = 'smoke';
    else if (arg === '--keep') keep = true;
    else if (arg === '--scale' || arg.startsWith('--scale=')) {
      const v = value();
      if (v !== 'quick' && v !== 'large') throw new Error(`--scale must be quick or large, got "${v}"`);
      mode = v;
    } else if (arg === '--only' || arg.startsWith('--only=')) {
      const names = value()
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const n of names) {
        if (!(SCENARIOS as readonly string[]).includes(n)) {
          throw new Error(`unknown scenario "${n}" (known: ${SCENARIOS.join(', ')})`);
        }
      }
      only = names as ScenarioName[];
    } else if (arg === '--help' || arg === '-h') {
      throw new HelpRequested();
    } else throw new Error(`unknown argument "${arg}"\n\n${USAGE}`);
  }
  return { mode, only, keep, adminUrl: env.DATABASE_URL || DEFAULT_DATABASE_URL, sizes: SIZES[mode] };
}

export class HelpRequested extends Error {}
