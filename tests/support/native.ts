/**
 * Runs a CPU-bound loop over src/ code at Node's own speed. Under Jest every module runs inside a VM
 * context, where each global lookup (`Math.imul`, `String`, …) goes through the context's interceptors:
 * a million-unit hashing loop took 20 s there and 1.4 s under plain Node. The same src/ functions run,
 * in a worker thread that loads TypeScript through tsx; the test keeps every assertion and judges the
 * plain data the function returns. It pays for loops like that one (the layers' million units: 11 CPU
 * seconds less), not for the statistics simulations (the guardrail one cost the same CPU either way).
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ROOT } from './paths';

// tsx's ES module entry (its CommonJS one cannot register hooks from an evaluated worker script).
const tsxApi = pathToFileURL(
  createRequire(`${ROOT}/package.json`)
    .resolve('tsx/esm/api')
    .replace(/\.cjs$/, '.mjs'),
).href;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.tsxApi)
  .then(({ register }) => {
    register();
    return import(workerData.module);
  })
  .then((module) => module[workerData.name](...workerData.args))
  .then((value) => parentPort.postMessage({ value }), (error) => parentPort.postMessage({ error }));
`;

/** Calls `name(...args)` exported by `module` (a file URL) in a new worker thread and returns its result. */
export function runNative<T>(module: URL | string, name: string, ...args: unknown[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const worker = new Worker(WORKER, {
      eval: true,
      execArgv: [],
      workerData: { tsxApi, module: String(module), name, args },
    });
    worker.once('message', (message: { value?: T; error?: unknown }) => {
      void worker.terminate();
      if ('error' in message) reject(message.error);
      else resolve(message.value as T);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`${name} in a worker exited with code ${code}`)));
  });
}
