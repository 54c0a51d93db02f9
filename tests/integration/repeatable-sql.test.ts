/**
 * Functions, triggers and views have one current definition each: a repeatable SQL file applied after
 * the migrations journal. A database migrated by the journal alone (as every database was before the
 * files existed) ends up with exactly the files' objects, and a file is applied again only when it changes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { MIGRATIONS_FOLDER, migrateDatabase, REPEATABLE_FOLDER } from '../../src/db/migrate';
import { applyRepeatableFiles, loadRepeatableFiles, type RepeatableFile } from '../../src/db/repeatable';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';

let scratch: ScratchDatabase;
let handle: DatabaseHandle;

beforeAll(async () => {
  scratch = await createScratchDatabase();
  handle = scratch.handle;
});
afterAll(async () => scratch.drop());

/** Every function, view and (user) trigger in the public schema, as PostgreSQL prints its definition. */
async function definitions(): Promise<Map<string, string>> {
  const rows = await queryRows<{ name: string; def: string }>(
    handle.db,
    sql`SELECT 'function ' || p.proname AS name, pg_get_functiondef(p.oid) AS def
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
        UNION ALL
        SELECT 'view ' || c.relname, pg_get_viewdef(c.oid)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'v'
        UNION ALL
        SELECT 'trigger ' || t.tgname, pg_get_triggerdef(t.oid)
          FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND NOT t.tgisinternal`,
  );
  return new Map(rows.map((r) => [r.name, r.def]));
}

/** The objects a file defines, from its CREATE OR REPLACE statements. */
function definedBy(file: RepeatableFile): string[] {
  return file.statements.flatMap((s) => {
    const m = /^(?:--.*\n|\s)*CREATE OR REPLACE (FUNCTION|VIEW|TRIGGER) (\w+)/i.exec(s);
    return m ? [`${m[1].toLowerCase()} ${m[2]}`] : [];
  });
}

describe('repeatable SQL', () => {
  const files = loadRepeatableFiles(REPEATABLE_FOLDER);

  it('every statement of every file is a CREATE OR REPLACE, and no object is defined twice', () => {
    const objects = files.flatMap(definedBy);
    expect(objects.length).toBe(files.reduce((n, f) => n + f.statements.length, 0));
    expect(new Set(objects).size).toBe(objects.length);
    expect(objects).toEqual(
      expect.arrayContaining([
        'function rebuild_experiment_stats',
        'function lock_experiments_for_ingest',
        'function get_experiment_summary',
        'view experiment_metrics',
        'trigger experiment_exposures_variant_fk_insert',
      ]),
    );
  });

  it('a database migrated by the journal alone ends up with exactly the files’ objects', async () => {
    // What every database held before the files existed: the journal's (older) definitions.
    if (handle.driver === 'pglite') {
      const { migrate } = await import('drizzle-orm/pglite/migrator');
      await migrate(handle.db as never, { migrationsFolder: MIGRATIONS_FOLDER });
    } else {
      const { migrate } = await import('drizzle-orm/postgres-js/migrator');
      await migrate(handle.db as never, { migrationsFolder: MIGRATIONS_FOLDER });
    }
    const journalOnly = await definitions();
    expect(journalOnly.get('function rebuild_experiment_stats')).toBeDefined();
    expect(journalOnly.has('function lock_experiments_for_ingest')).toBe(false);

    await migrateDatabase(handle);
    const migrated = await definitions();
    // Exactly the objects the files define: none left over from a migration alone.
    expect([...migrated.keys()].sort()).toEqual(files.flatMap(definedBy).sort());
    // The journal's rebuild function was replaced by the file's (which takes the lock through its function).
    expect(migrated.get('function rebuild_experiment_stats')).not.toEqual(
      journalOnly.get('function rebuild_experiment_stats'),
    );
    expect(migrated.get('function rebuild_experiment_stats')).toContain('lock_experiments_for_ingest');

    // Running every file again by hand changes no definition: the database holds the files' text.
    for (const file of files) for (const s of file.statements) await handle.db.execute(sql.raw(s));
    expect(await definitions()).toEqual(migrated);
  });

  it('applies a file again only when its text changes, and all or nothing', async () => {
    await migrateDatabase(handle);
    expect(await applyRepeatableFiles(handle.db, files)).toEqual([]);

    const probe = (body: string, hash: string): RepeatableFile => ({
      name: 'zz_probe.sql',
      statements: [`CREATE OR REPLACE FUNCTION repeatable_probe() RETURNS int LANGUAGE sql AS $$ ${body} $$`],
      hash,
    });
    const probeValue = async () =>
      (await queryRows<{ v: number }>(handle.db, sql`SELECT repeatable_probe() AS v`))[0].v;
    try {
      expect(await applyRepeatableFiles(handle.db, [...files, probe('SELECT 1', 'one')])).toEqual([
        'zz_probe.sql',
      ]);
      expect(await probeValue()).toBe(1);
      expect(await applyRepeatableFiles(handle.db, [...files, probe('SELECT 2', 'one')])).toEqual([]);
      expect(await probeValue()).toBe(1);
      expect(await applyRepeatableFiles(handle.db, [...files, probe('SELECT 2', 'two')])).toEqual([
        'zz_probe.sql',
      ]);
      expect(await probeValue()).toBe(2);

      // A failing file applies nothing, and nothing is recorded as applied.
      const broken: RepeatableFile = {
        name: 'zz_broken.sql',
        statements: ['SELECT no_such_column'],
        hash: 'x',
      };
      await expect(
        applyRepeatableFiles(handle.db, [...files, probe('SELECT 3', 'three'), broken]),
      ).rejects.toThrow();
      expect(await probeValue()).toBe(2);
      expect(await applyRepeatableFiles(handle.db, [...files, probe('SELECT 2', 'two')])).toEqual([]);
    } finally {
      await handle.db.execute(sql`DROP FUNCTION IF EXISTS repeatable_probe()`);
      await handle.db.execute(sql`DELETE FROM drizzle.__repeatable_sql WHERE name LIKE 'zz_%'`);
    }
  });
});
