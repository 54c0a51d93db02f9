import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { ROOT } from '../support/paths';

/**
 * The committed migrations must describe src/db/schema.ts exactly: drizzle-kit generates against a copy
 * of drizzle/ and must find nothing to do. It fails when someone edits the schema and forgets
 * `npm run db:generate` (or edits a generated migration by hand). Everything it writes goes to a
 * temporary folder; the repository is only read.
 */
const work = mkdtempSync(path.join(os.tmpdir(), 'sona-drift-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `drizzle-kit generate` into `out`, a copy of drizzle/ inside the work folder. */
function generate(schemaFile: string, out: string): string {
  cpSync(path.join(ROOT, 'drizzle'), out, { recursive: true });
  // drizzle-kit resolves --out against the working directory, so it runs in the work folder; NODE_PATH
  // lets a schema module there import drizzle-orm from the repository's node_modules.
  return execFileSync(
    path.join(ROOT, 'node_modules/.bin/drizzle-kit'),
    ['generate', '--dialect', 'postgresql', '--schema', schemaFile, '--out', path.relative(work, out)],
    {
      cwd: work,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') },
    },
  );
}

describe('migrations match the schema module', () => {
  it('drizzle-kit finds no change between src/db/schema.ts and drizzle/', () => {
    const out = path.join(work, 'current');
    const output = generate(path.join(ROOT, 'src/db/schema.ts'), out);
    expect(readdirSync(out).sort()).toEqual(readdirSync(path.join(ROOT, 'drizzle')).sort());
    expect(output).toMatch(/No schema changes/);
  });

  it('would notice a schema edit that has no migration', () => {
    const out = path.join(work, 'edited');
    // The real schema module plus one table, as a module of the work folder.
    const edited = path.join(work, 'edited-schema.ts');
    writeFileSync(
      edited,
      `export * from ${JSON.stringify(path.join(ROOT, 'src/db/schema'))};
import { pgTable, text } from 'drizzle-orm/pg-core';
export const driftProbe = pgTable('drift_probe', { id: text('id').primaryKey() });
`,
    );
    generate(edited, out);
    const added = readdirSync(out).filter((f) => !readdirSync(path.join(ROOT, 'drizzle')).includes(f));
    expect(added).toHaveLength(1);
    expect(readFileSync(path.join(out, added[0]), 'utf8')).toContain('CREATE TABLE "drift_probe"');
  });
});
