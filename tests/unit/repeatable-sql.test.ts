/**
 * The repeatable SQL files share the aggregates' constants with TypeScript: they name them only as
 * `{{NAME}}` placeholders, rendered from src/aggregates/constants.ts as SQL literals.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { SQL_TEMPLATE_VALUES } from '../../src/aggregates/constants';
import { REPEATABLE_FOLDER } from '../../src/db/migrate';
import { loadRepeatableFiles, renderRepeatableSql } from '../../src/db/repeatable';

describe('repeatable SQL placeholders', () => {
  it('render as SQL literals of the TypeScript constants, quotes escaped', () => {
    expect(renderRepeatableSql("SELECT {{EXPOSURE_METRIC}}, {{ANY_CONVERSION_METRIC}} || 'x'")).toBe(
      `SELECT '${SQL_TEMPLATE_VALUES.EXPOSURE_METRIC}', '${SQL_TEMPLATE_VALUES.ANY_CONVERSION_METRIC}' || 'x'`,
    );
    expect(renderRepeatableSql('{{INGEST_LOCK_PREFIX}}')).toBe(`'${SQL_TEMPLATE_VALUES.INGEST_LOCK_PREFIX}'`);
  });

  it('an unknown placeholder fails, naming the file', () => {
    expect(() => renderRepeatableSql('SELECT {{NO_SUCH_NAME}}', 'x.sql')).toThrow(
      /x\.sql: unknown placeholder \{\{NO_SUCH_NAME\}\}/,
    );
  });

  it('the files spell no constant out: each is used through its placeholder, and every placeholder renders', () => {
    const names = readdirSync(REPEATABLE_FOLDER).filter((f) => f.endsWith('.sql'));
    expect(names.length).toBeGreaterThan(0);
    const used = new Set<string>();
    for (const name of names) {
      const text = readFileSync(path.join(REPEATABLE_FOLDER, name), 'utf8');
      // As a literal: the bare word `exposure` is also part of table names.
      for (const value of Object.values(SQL_TEMPLATE_VALUES))
        expect({ name, has: text.includes(`'${value}`) }).toEqual({ name, has: false });
      for (const m of text.matchAll(/\{\{([A-Z_]+)\}\}/g)) used.add(m[1]);
    }
    expect([...used].sort()).toEqual(Object.keys(SQL_TEMPLATE_VALUES).sort());
    for (const file of loadRepeatableFiles(REPEATABLE_FOLDER)) {
      expect(file.statements.join('\n')).not.toContain('{{');
      expect(file.hash).toMatch(/^[0-9a-f]{64}$/);
    }
  });
});
