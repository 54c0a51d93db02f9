/**
 * The real server in a child process (`node --import tsx src/main.ts`), as in production: its own
 * event loop and PostgreSQL pool, separate from the load generator. Never left running: stop() is
 * idempotent, and an exit hook kills it if the harness dies first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServerProcess {
  pid: number;
  port: number;
  origin: string;
  graphqlUrl: string;
  /** Log lines at level warn (40) and above the server printed, e.g. masked unexpected errors. */
  problems(): string[];
  tail(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface StartOptions {
  /** The entry point, relative to the repository: the service (default) or a peer in bench/peers/. */
  script?: string;
  readyTimeoutMs?: number;
  /** More environment for the child (e.g. `RESPONSE_CACHE_TTL_MS: '0'`). */
  env?: Record<string, string>;
}

export async function startServer(
  databaseUrl: string,
  { script = 'src/main.ts', readyTimeoutMs = 60_000, env = {} }: StartOptions = {},
): Promise<ServerProcess> {
  const port = await freePort();
  // BENCH_SERVER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the server under load.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      DB_POOL_SIZE: '20',
      // The bench measures the service, not the per-key limiter (its check still runs on every request).
      RATE_LIMIT_PER_SECOND: '1000000000',
      RATE_LIMIT_BURST: '1000000000',
      // PostGraphile's peer: production mode, and no advice printed to stderr (read as a problem).
      GRAPHILE_ENV: 'production',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const lines: string[] = [];
  const problems: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      lines.push(line);
      if (lines.length > 200) lines.shift();
      try {
        const level = (JSON.parse(line) as { level?: number }).level;
        if (typeof level === 'number' && level >= 40 && problems.length < 100) problems.push(line);
      } catch {
        if (problems.length < 100) problems.push(line); // not pino JSON: a crash trace or a warning
      }
    }
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let exited: { code: number | null; signal: string | null } | null = null;
  const exit = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      live.delete(child);
      resolve();
    }),
  );

  const origin = `http://127.0.0.1:${port}`;
  let stopped = false;
  const server: ServerProcess = {
    pid: child.pid!,
    port,
    origin,
    graphqlUrl: `${origin}/graphql`,
    problems: () => [...problems],
    tail: () => lines.slice(-30).join('\n'),
    async stop() {
      if (stopped) return exit;
      stopped = true;
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exit;
      clearTimeout(timer);
    },
  };

  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(`server exited during start-up (${JSON.stringify(exited)}):\n${server.tail()}`);
    }
    try {
      const res = await fetch(`${origin}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return server;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.stop();
  throw new Error(`server not ready after ${readyTimeoutMs} ms:\n${server.tail()}`);
}
