import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';

/**
 * The committed migrations must describe src/db/schema.ts exactly: drizzle-kit generates against a copy
 * of drizzle/ and must find nothing to do. It fails when someone edits the schema and forgets
 * `npm run db:generate` (or edits a generated migration by hand).
 */
const root = process.cwd();
const work = mkdtempSync(path.join(os.tmpdir(), 'sona-drift-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function generate(schemaFile: string, out: string): string {
  // drizzle-kit resolves --out relative to the working directory.
  return execFileSync(
    path.join(root, 'node_modules/.bin/drizzle-kit'),
    ['generate', '--dialect', 'postgresql', '--schema', schemaFile, '--out', path.relative(root, out)],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

describe('migrations match the schema module', () => {
  it('drizzle-kit finds no change between src/db/schema.ts and drizzle/', () => {
    const out = path.join(work, 'current');
    cpSync(path.join(root, 'drizzle'), out, { recursive: true });
    const before = readdirSync(out).sort();
    const output = generate('./src/db/schema.ts', out);
    expect(readdirSync(out).sort()).toEqual(before);
    expect(output).toMatch(/No schema changes/);
  });

  it('would notice a schema edit that has no migration', () => {
    const out = path.join(work, 'edited');
    cpSync(path.join(root, 'drizzle'), out, { recursive: true });
    const before = readdirSync(out).length;
    // A copy of the schema module with one more column, importing what the real one imports.
    const edited = path.join(root, 'src/db/.drift-probe-schema.ts');
    const source = readFileSync(path.join(root, 'src/db/schema.ts'), 'utf8');
    writeFileSync(
      edited,
      source.replace(
        "name: text('name').notNull(),",
        "name: text('name').notNull(),\n    probe: text('probe'),",
      ),
    );
    try {
      generate('./src/db/.drift-probe-schema.ts', out);
    } finally {
      rmSync(edited, { force: true });
    }
    expect(readdirSync(out).length).toBe(before + 1);
  });
});
