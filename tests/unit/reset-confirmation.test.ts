/**
 * `npm run db:reset` asks before dropping a server's data (src/cli/reset.ts): `--yes` or the database
 * name typed at a terminal goes ahead, anything else refuses and says how to confirm; the embedded
 * database is reset without asking. The reset itself is tested in tests/integration/reset.test.ts, the
 * command end to end in tests/system/cli.test.ts.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { confirmReset } from '../../src/cli/reset';
import type { DatabaseConfig } from '../../src/config';

const server: DatabaseConfig = {
  driver: 'postgres',
  url: 'postgres://app:secret@db.internal:5432/sona',
  poolSize: 1,
  statementTimeoutMs: 1000,
  connectTimeoutSeconds: 1,
};
const embedded: DatabaseConfig = { driver: 'pglite', dataDir: '/tmp/somewhere/pglite' };

/** A terminal (or a pipe) that answers `typed`, and what the command wrote. */
function io(options: { tty: boolean; typed?: string }) {
  const stdin = Object.assign(new PassThrough(), { isTTY: options.tty });
  if (options.typed !== undefined) stdin.end(`${options.typed}\n`);
  const out = { stdout: '', stderr: '' };
  const sink = (name: 'stdout' | 'stderr') => {
    const stream = new PassThrough();
    stream.on('data', (chunk) => (out[name] += chunk));
    return stream;
  };
  return { streams: { stdin, stdout: sink('stdout'), stderr: sink('stderr') }, out };
}

describe('db:reset confirmation', () => {
  it.each([
    ['the embedded database, without asking', embedded, [], { tty: false }],
    ['a server with --yes', server, ['--yes'], { tty: false }],
    ['a server, the database name typed at a terminal', server, [], { tty: true, typed: 'sona' }],
  ] as const)('goes ahead on %s', async (_what, config, args, terminal) => {
    const { streams, out } = io(terminal);
    expect(await confirmReset(config, [...args], streams)).toBe(true);
    expect(out.stderr).toBe('');
  });

  it('refuses a server without --yes when there is no terminal to ask, and says how to confirm', async () => {
    const { streams, out } = io({ tty: false });
    expect(await confirmReset(server, [], streams)).toBe(false);
    expect(out.stderr).toContain('database "sona" on db.internal:5432');
    expect(out.stderr).toContain('npm run db:reset -- --yes');
    expect(out.stderr).not.toContain('secret');
  });

  it('refuses a server when the name typed at the terminal is not the database', async () => {
    const { streams, out } = io({ tty: true, typed: 'y' });
    expect(await confirmReset(server, [], streams)).toBe(false);
    expect(out.stdout).toContain('Type the database name to confirm');
    expect(out.stderr).toContain('nothing was dropped');
  });
});
