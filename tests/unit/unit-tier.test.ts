/**
 * CI runs tests/unit once (on the PostgreSQL run) and only tests/integration again on PGlite (.ci/run): that
 * is sound only while no unit test reaches a database. This keeps it so: no file under tests/unit imports
 * a database client or the test helpers that open one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ROOT } from '../support/paths';

const UNIT = path.join(ROOT, 'tests/unit');
/** Modules that open or hand out a database connection. */
const DATABASE_MODULES = [
  /\/support\/(db|server|app|factories|rows|processes|global-setup)$/,
  /\/src\/db\/client$/,
  /^postgres$/,
  /^@electric-sql\/pglite/,
  /^drizzle-orm\/(postgres-js|pglite)/,
];

const files = readdirSync(UNIT, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts'))
  .sort();

/** What a file imports at run time (`import type` is erased by the compiler): absolute paths or packages. */
function importsOf(file: string): string[] {
  const source = readFileSync(path.join(UNIT, file), 'utf8').replace(
    /\bimport\s+type\s[^;]*?\bfrom\s+'[^']+'/g,
    '',
  );
  return [...source.matchAll(/\bfrom\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => {
    const spec = m[1] ?? m[2];
    return spec.startsWith('.') ? path.resolve(path.dirname(path.join(UNIT, file)), spec) : spec;
  });
}

describe('the unit tier', () => {
  it('has files to check', () => {
    expect(files.length).toBeGreaterThan(20);
    expect(importsOf('bucketing.test.ts')).toContain(path.join(ROOT, 'src/assignments/service'));
  });

  it('imports nothing that opens a database', () => {
    const offending = files.flatMap((file) =>
      importsOf(file)
        .filter((spec) => DATABASE_MODULES.some((re) => re.test(spec)))
        .map((spec) => `${file}: ${path.isAbsolute(spec) ? path.relative(ROOT, spec) : spec}`),
    );
    expect(offending).toEqual([]);
  });
});
