/**
 * The service and the CLIs as child processes (tests/system only): `node --import tsx <script>` from the
 * repository root with an environment of the test's choosing, on a free port of 127.0.0.1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { ROOT } from './paths';
import { sleep } from './server';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export interface SpawnedService {
  base: string;
  url: string;
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL if still running (afterAll safety net). */
  kill(): Promise<void>;
}

// Generous: on a busy machine a first start (tsx transforms, a new embedded database) takes a while.
const START_TIMEOUT_MS = 180_000;

/** Where and how a script runs: TypeScript from the repository through tsx, or built JavaScript. */
export interface ScriptOptions {
  /** Working directory (the repository root by default). */
  cwd?: string;
  /** Load tsx first (default true); false for plain JavaScript such as the dist/ bundle. */
  tsx?: boolean;
}

/**
 * Runs a node script (a path relative to `cwd`) with the given environment on top of a clean one (no
 * inherited DATABASE_URL, NODE_ENV or NODE_OPTIONS).
 */
export function spawnScript(
  script: string,
  args: string[],
  env: Record<string, string>,
  options: ScriptOptions = {},
) {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['DATABASE_URL', 'NODE_ENV', 'NODE_OPTIONS', 'REDIS_URL', 'PGLITE_DIR'])
    delete base[name];
  const loader = options.tsx === false ? [] : ['--import', 'tsx'];
  return spawn(process.execPath, [...loader, script, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs a CLI to completion and returns its exit code and output. */
export async function runScript(
  script: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
  options: ScriptOptions = {},
) {
  const child = spawnScript(script, args, env, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Starts the service (src/main.ts by default) on a free port and waits until /readyz answers 200. */
export async function spawnService(
  env: Record<string, string>,
  script = 'src/main.ts',
  options: ScriptOptions = {},
): Promise<SpawnedService> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawnScript(script, [], { PORT: String(port), HOST: '127.0.0.1', ...env }, options);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const service: SpawnedService = {
    base,
    url: `${base}/graphql`,
    child,
    output: () => output,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited early (${child.exitCode}):\n${output}`);
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return service;
    if (Date.now() > deadline) {
      await service.kill();
      throw new Error(`server not ready after ${START_TIMEOUT_MS} ms:\n${output}`);
    }
    await sleep(200);
  }
}

/** Waits for the child to exit, at most timeoutMs; 'timeout' otherwise. */
export async function exitWithin(service: SpawnedService, timeoutMs: number) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    return await Promise.race([service.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
