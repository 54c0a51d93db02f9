/**
 * Repeatable SQL: the database's functions, triggers and views, one current definition each, in
 * drizzle/repeatable/*.sql. Every statement is idempotent (`CREATE OR REPLACE …`); a file is applied,
 * after the migrations journal, whenever its rendered text differs from what this database last applied
 * (so an edited file reaches every database, and an unchanged one costs no lock at start-up). Migrations
 * keep only what can't be repeated: tables, indexes, data changes, and dropping an object (or one whose
 * columns or return type change, which CREATE OR REPLACE refuses) before its file redefines it.
 *
 * A file may name the constants of src/aggregates/constants.ts as `{{NAME}}`; they are rendered as SQL
 * string literals, so SQL and TypeScript share one definition. Statements are separated by
 * `--> statement-breakpoint`, as in drizzle-kit's migrations.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import { SQL_TEMPLATE_VALUES } from '../aggregates/constants';
import { parseRows } from './rows';

export interface RepeatableFile {
  /** The file name, e.g. `rebuild_experiment_stats.sql`; files apply in name order. */
  name: string;
  /** The statements, placeholders rendered. */
  statements: string[];
  /** SHA-256 of the rendered text: what decides whether a database needs the file again. */
  hash: string;
}

const PLACEHOLDER = /\{\{([A-Z_]+)\}\}/g;

const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;

/** Replaces every `{{NAME}}` with its value as an SQL literal; an unknown name is an error. */
export function renderRepeatableSql(text: string, file = 'SQL'): string {
  return text.replace(PLACEHOLDER, (_, name: string) => {
    if (!Object.hasOwn(SQL_TEMPLATE_VALUES, name)) {
      throw new Error(
        `${file}: unknown placeholder {{${name}}} (known: ${Object.keys(SQL_TEMPLATE_VALUES)})`,
      );
    }
    return literal(SQL_TEMPLATE_VALUES[name as keyof typeof SQL_TEMPLATE_VALUES]);
  });
}

export function loadRepeatableFiles(folder: string): RepeatableFile[] {
  return readdirSync(folder)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((name) => {
      const text = renderRepeatableSql(readFileSync(path.join(folder, name), 'utf8'), name);
      return {
        name,
        statements: text
          .split('--> statement-breakpoint')
          .map((s) => s.trim())
          .filter(Boolean),
        hash: createHash('sha256').update(text).digest('hex'),
      };
    });
}

/** Beside drizzle's own journal (drizzle.__drizzle_migrations), which the migrator has created by now. */
const APPLIED = sql`drizzle.__repeatable_sql`;

/**
 * Applies the files whose text changed since this database last applied them, in one transaction.
 * The caller serialises concurrent runs (see migrateDatabase). Returns the names it applied.
 */
export async function applyRepeatableFiles(
  db: PgDatabase<PgQueryResultHKT, Record<string, unknown>>,
  files: readonly RepeatableFile[],
): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`CREATE SCHEMA IF NOT EXISTS drizzle`);
    await tx.execute(sql`CREATE TABLE IF NOT EXISTS ${APPLIED} (
      name text PRIMARY KEY, hash text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const applied = new Map(
      (
        await parseRows(
          tx,
          sql`/* repeatableApplied */ SELECT name, hash FROM ${APPLIED}`,
          z.object({ name: z.string(), hash: z.string() }),
        )
      ).map((r) => [r.name, r.hash]),
    );
    const pending = files.filter((f) => applied.get(f.name) !== f.hash);
    for (const file of pending) {
      for (const statement of file.statements) await tx.execute(sql.raw(statement));
      await tx.execute(sql`INSERT INTO ${APPLIED} (name, hash) VALUES (${file.name}, ${file.hash})
        ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, applied_at = now()`);
    }
    return pending.map((f) => f.name);
  });
}
