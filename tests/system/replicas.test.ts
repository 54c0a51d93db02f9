/**
 * Read replicas against a real streaming replica: a primary and a standby made with pg_basebackup, in
 * clusters of the test's own (initdb on free ports, removed afterwards). Read-only GraphQL operations go
 * to the replica, mutations to the primary; with the replica's replay paused, a dashboard can read stale
 * data only while the measured lag is within REPLICA_MAX_LAG_MS, then reads fall back to the primary; a
 * replica that stops serves no reads and costs no errors. The lag is published at /metrics.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, chmodSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { type DatabaseHandle, openDatabase, queryRows } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { testDriver } from '../support/db';
import { uniqueKey } from '../support/factories';
import { freePort, type SpawnedService, spawnService } from '../support/processes';
import { makeKey, postGraphQL, sleep } from '../support/server';

const MAX_LAG_MS = 2000;
const CHECK_MS = 200;

function binDir(): string | null {
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}
const BIN = binDir();
const asRoot = process.getuid?.() === 0;

/** A PostgreSQL tool as the `postgres` OS user (the server refuses to run as root). */
function pg(tool: string, args: string[]) {
  const command = path.join(BIN!, tool);
  return asRoot
    ? execFileSync('runuser', ['-u', 'postgres', '--', command, ...args], { encoding: 'utf8', stdio: 'pipe' })
    : execFileSync(command, args, { encoding: 'utf8', stdio: 'pipe' });
}

// Needs PostgreSQL's server binaries beside the client (pg_config --bindir), as CI's machine has.
const runs = testDriver() === 'postgres' && BIN !== null && existsSync(path.join(BIN, 'initdb'));

(runs ? describe : describe.skip)('read replicas (a real streaming standby)', () => {
  let dir: string;
  let primaryUrl: string;
  let replicaUrl: string;
  let primary: DatabaseHandle;
  let replicaAdmin: postgres.Sql;
  let service: SpawnedService;
  let key: string;

  const clusterConf = (port: number) =>
    `\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\n` +
    `wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n`;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sona-replica-'));
    chmodSync(dir, 0o777);
    const [primaryPort, replicaPort] = [await freePort(), await freePort()];
    const primaryDir = path.join(dir, 'primary');
    const replicaDir = path.join(dir, 'replica');
    pg('initdb', ['-D', primaryDir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    appendFileSync(path.join(primaryDir, 'postgresql.conf'), clusterConf(primaryPort));
    appendFileSync(path.join(primaryDir, 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 trust\n');
    pg('pg_ctl', ['-D', primaryDir, '-l', path.join(dir, 'primary.log'), '-w', 'start']);
    pg('createdb', ['-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres', 'sona']);
    pg('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primaryPort),
      '-U',
      'postgres',
      '-D',
      replicaDir,
      '-R',
    ]);
    appendFileSync(path.join(replicaDir, 'postgresql.conf'), `\nport = ${replicaPort}\n`);
    pg('pg_ctl', ['-D', replicaDir, '-l', path.join(dir, 'replica.log'), '-w', 'start']);
    primaryUrl = `postgres://postgres@127.0.0.1:${primaryPort}/sona`;
    replicaUrl = `postgres://postgres@127.0.0.1:${replicaPort}/sona`;

    primary = await openDatabase({
      driver: 'postgres',
      url: primaryUrl,
      poolSize: 3,
      statementTimeoutMs: 30_000,
      connectTimeoutSeconds: 10,
    });
    await migrateDatabase(primary);
    replicaAdmin = postgres(replicaUrl, { max: 1, onnotice: () => {} });
    key = (await makeKey(primary.db, ['admin'])).key;
    service = await spawnService({
      DATABASE_URL: primaryUrl,
      DATABASE_REPLICA_URLS: replicaUrl,
      REPLICA_MAX_LAG_MS: String(MAX_LAG_MS),
      REPLICA_LAG_CHECK_MS: String(CHECK_MS),
      RATE_LIMIT_PER_SECOND: '0',
      CACHE_TTL_MS: '0',
      LOG_LEVEL: 'warn',
    });
  });

  afterAll(async () => {
    await service?.kill();
    await replicaAdmin?.end({ timeout: 5 });
    await primary?.close();
    for (const cluster of ['replica', 'primary']) {
      try {
        pg('pg_ctl', ['-D', path.join(dir, cluster), '-m', 'immediate', '-w', 'stop']);
      } catch {
        // not running
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const CREATE = `mutation Create($key: String!) {
    createExperiment(input: { key: $key, name: "Replica" }) { __typename ... on Experiment { id key } } }`;
  const READ = 'query Dashboard($key: String!) { experiment(key: $key) { key status } }';

  const read = async (experimentKey: string) => {
    const response = await postGraphQL(service.url, READ, { key: experimentKey }, { key });
    expect(response.status).toBe(200);
    expect(response.body.errors).toBeUndefined();
    return response.body.data.experiment as { key: string; status: string } | null;
  };

  /** Waits until the replica has replayed everything the primary has written so far. */
  async function caughtUp() {
    const [{ lsn }] = await queryRows<{ lsn: string }>(
      primary.db,
      sql`SELECT pg_current_wal_lsn()::text AS lsn`,
    );
    for (;;) {
      const [{ done }] = await replicaAdmin<
        { done: boolean }[]
      >`SELECT pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn AS done`;
      if (done) return;
      await sleep(20);
    }
  }

  async function replicaLag(): Promise<number | undefined> {
    const text = await (
      await fetch(`${service.base}/metrics`, { headers: { authorization: `Bearer ${key}` } })
    ).text();
    const line = text.split('\n').find((l) => l.startsWith('sona_db_replica_lag_seconds{'));
    return line ? Number(line.split(' ').at(-1)) : undefined;
  }

  it('mutations go to the primary; with the replica caught up, reads see them', async () => {
    const experimentKey = uniqueKey('replica');
    const created = await postGraphQL(service.url, CREATE, { key: experimentKey }, { key });
    expect(created.body.data.createExperiment).toMatchObject({
      __typename: 'Experiment',
      key: experimentKey,
    });
    await caughtUp();
    expect(await read(experimentKey)).toEqual({ key: experimentKey, status: 'DRAFT' });
  });

  it('with replay paused, reads are stale only while the lag is within REPLICA_MAX_LAG_MS, then come from the primary', async () => {
    // A fresh replayed transaction first, so the lag measured after the pause starts near 0.
    const before = uniqueKey('before');
    await postGraphQL(service.url, CREATE, { key: before }, { key });
    await caughtUp();
    await replicaAdmin`SELECT pg_wal_replay_pause()`;
    try {
      const experimentKey = uniqueKey('paused');
      const created = await postGraphQL(service.url, CREATE, { key: experimentKey }, { key });
      expect(created.body.data.createExperiment.__typename).toBe('Experiment');
      const since = Date.now();
      // Right after the write the replica (paused) has not replayed it: the read proves where reads go.
      expect(await read(experimentKey)).toBeNull();
      let fresh = false;
      while (!fresh && Date.now() - since < 20_000) {
        const seen = await read(experimentKey);
        if (seen) fresh = true;
        // A stale answer is allowed only within the lag bound (plus a check interval and a busy machine's
        // scheduling margin).
        else expect(Date.now() - since).toBeLessThan(MAX_LAG_MS + CHECK_MS + 3000);
        await sleep(50);
      }
      expect(fresh).toBe(true);
      expect(await replicaLag()).toBeGreaterThan(MAX_LAG_MS / 1000);
    } finally {
      await replicaAdmin`SELECT pg_wal_replay_resume()`;
    }
    await caughtUp();
    await sleep(3 * CHECK_MS);
    expect(await replicaLag()).toBeLessThan(MAX_LAG_MS / 1000);
  });

  it('a replica that stops serves no reads, and reads keep working from the primary', async () => {
    pg('pg_ctl', ['-D', path.join(dir, 'replica'), '-m', 'immediate', '-w', 'stop']);
    await sleep(3 * CHECK_MS);
    const experimentKey = uniqueKey('down');
    await postGraphQL(service.url, CREATE, { key: experimentKey }, { key });
    expect(await read(experimentKey)).toEqual({ key: experimentKey, status: 'DRAFT' });
    expect(await replicaLag()).toBe(-1);
  });
});
