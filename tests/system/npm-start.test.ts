/**
 * The service as people start it. The bare-machine experience: with no DATABASE_URL the service starts on
 * an embedded database, seeds it, answers GraphQL without keys (and says loudly that authentication is
 * off), and stops cleanly on SIGTERM; it runs the same command as `npm start` (without npm, so the child's
 * PID is the server's). Against DATABASE_URL it requires keys. And the one production path: what
 * `npm run build` bundles, laid out as the Docker image holds it, starts and serves the same way.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DatabaseHandle } from '../../src/db/client';
import { createScratchDatabase, openTestDatabase, testDriver } from '../support/db';
import { runDatabaseUrl } from '../support/environment';
import { ROOT } from '../support/paths';
import { exitWithin, runScript, type SpawnedService, spawnService } from '../support/processes';
import { makeKey, postGraphQL } from '../support/server';

const STOP_TIMEOUT_MS = 15_000;
const LIST = 'query List { experiments(first: 1) { totalCount } }';

/** The JSON log lines of a spawned service that contain `text`. */
const logLines = (service: SpawnedService, text: string) =>
  service
    .output()
    .split('\n')
    .filter((line) => line.includes(text))
    .map((line) => JSON.parse(line));

describe('npm start on the embedded database (node --import tsx src/main.ts)', () => {
  let service: SpawnedService;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'sona-start-'));
    service = await spawnService({ PGLITE_DIR: path.join(dataDir, 'pglite'), LOG_LEVEL: 'info' });
  });

  afterAll(async () => {
    await service?.kill();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers /healthz', async () => {
    const response = await fetch(`${service.base}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('serves the seeded experiments from the embedded database, without a key', async () => {
    const response = await fetch(service.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ experiments { totalCount } }' }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { experiments: { totalCount: 3 } } });
    expect(service.output()).toMatch(/database: pglite/);
    expect((await postGraphQL(service.url, LIST)).status).toBe(200);
  });

  it('warns loudly, once, that authentication is off', () => {
    const warning = logLines(service, 'AUTHENTICATION IS OFF');
    expect(warning).toHaveLength(1);
    expect(warning[0].level).toBe(40); // pino's warn
  });

  it(
    'exits with code 0 within 15 s of SIGTERM',
    async () => {
      service.child.kill('SIGTERM');
      const result = await exitWithin(service, STOP_TIMEOUT_MS);
      if (result === 'timeout') {
        throw new Error(`no exit ${STOP_TIMEOUT_MS} ms after SIGTERM:\n${service.output()}`);
      }
      expect(result).toEqual({ code: 0, signal: null });
    },
    STOP_TIMEOUT_MS + 5_000,
  );
});

if (testDriver() === 'postgres') {
  describe('npm start against DATABASE_URL', () => {
    let handle: DatabaseHandle;
    beforeAll(async () => {
      handle = await openTestDatabase();
    });
    afterAll(async () => handle?.close());

    it('requires keys, and says nothing about auth being off', async () => {
      const service = await spawnService({ DATABASE_URL: runDatabaseUrl(), LOG_LEVEL: 'info' });
      try {
        expect(service.output()).not.toContain('AUTHENTICATION IS OFF');
        expect(service.output()).toContain('"auth":"api-keys"');
        expect((await postGraphQL(service.url, LIST)).status).toBe(401);
        const { key } = await makeKey(handle.db, ['read']);
        expect((await postGraphQL(service.url, LIST, {}, { key })).status).toBe(200);
      } finally {
        service.child.kill('SIGTERM');
        expect(await exitWithin(service, STOP_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
        await service.kill();
      }
    });
  });
}

describe('the build, as the Docker image runs it (node dist/main.js)', () => {
  // The image holds package.json, the production node_modules, drizzle/ and dist/ and nothing else (see
  // the Dockerfile): the same layout here, in a folder of its own, with the bundle `npm run build` makes.
  let app: string;

  beforeAll(() => {
    app = mkdtempSync(path.join(os.tmpdir(), 'sona-image-'));
    const build: string = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.build;
    const bundle = build
      .split('&&')
      .map((command) => command.trim())
      .find((command) => command.startsWith('esbuild '));
    expect(bundle).toMatch(/--outdir=dist\b/);
    // The typecheck half of `npm run build` is CI's typecheck step; the bundle is what runs.
    execFileSync('sh', ['-c', bundle!.replace('--outdir=dist', `--outdir=${path.join(app, 'dist')}`)], {
      cwd: ROOT,
      env: { ...process.env, PATH: `${path.join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cpSync(path.join(ROOT, 'package.json'), path.join(app, 'package.json'));
    cpSync(path.join(ROOT, 'drizzle'), path.join(app, 'drizzle'), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(app, 'node_modules'), 'dir');
    mkdirSync(path.join(app, '.data'));
  });

  afterAll(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('migrates, serves, stops on SIGTERM, and its CLIs work', async () => {
    // On PostgreSQL, an empty database of its own (the image's usual setting); otherwise a new embedded
    // one, which the service seeds itself.
    const scratch = testDriver() === 'postgres' ? await createScratchDatabase() : null;
    const env: Record<string, string> = scratch
      ? { DATABASE_URL: scratch.url!, LOG_LEVEL: 'info' }
      : { PGLITE_DIR: path.join(app, '.data/pglite'), LOG_LEVEL: 'info' };
    const options = { cwd: app, tsx: false };
    try {
      const service = await spawnService(env, 'dist/main.js', options);
      try {
        if (scratch) {
          const seeded = await runScript('dist/cli/seed.js', [], env, 120_000, options);
          expect({ code: seeded.code, stderr: seeded.stderr }).toEqual({ code: 0, stderr: '' });
        }
        const key = scratch ? (await makeKey(scratch.handle.db, ['read'])).key : undefined;
        const response = await postGraphQL(service.url, '{ experiments { totalCount } }', {}, { key });
        expect(response.status).toBe(200);
        expect(response.body).toEqual({ data: { experiments: { totalCount: 3 } } });
      } finally {
        service.child.kill('SIGTERM');
        expect(await exitWithin(service, STOP_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
        await service.kill();
      }
      // The bundled CLIs find the same migrations: nothing left to apply.
      const migrate = await runScript('dist/cli/migrate.js', [], env, 120_000, options);
      expect({ code: migrate.code, stderr: migrate.stderr }).toEqual({ code: 0, stderr: '' });
      expect(migrate.stdout).toContain('migrations applied');
    } finally {
      await scratch?.drop();
    }
  });
});
