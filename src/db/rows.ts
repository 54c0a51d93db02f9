/**
 * Rows of raw SQL, parsed at the edge. The drivers disagree on what they return for some types (bigint
 * and numeric as strings on postgres.js, timestamps as strings on both through Drizzle, json as text or
 * as an object), so a repository describes each row with a zod schema built from these column types and
 * gets typed values or a clear error, never an unchecked cast.
 */
import type { SQL } from 'drizzle-orm';
import { z } from 'zod';
import { queryRows, type Db } from './client';

/** Runs raw SQL and parses every row with `row`. */
export async function parseRows<S extends z.ZodType>(
  db: Pick<Db, 'execute'>,
  query: SQL,
  row: S,
): Promise<z.output<S>[]> {
  return z.array(row).parse(await queryRows<unknown>(db, query));
}

/** A number from any numeric type: float8 and int4 arrive as numbers, bigint and numeric as text. */
export const dbNumber = z
  .union([z.number(), z.bigint(), z.string().regex(/^-?\d+(\.\d+)?(e[-+]?\d+)?$/i)])
  .transform(Number);

/** A timestamp, as text or a Date. */
export const dbDate = z.union([z.string(), z.date()]).transform((value, ctx) => {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    ctx.addIssue({ code: 'custom', message: `not a timestamp: ${String(value)}` });
    return z.NEVER;
  }
  return date;
});

/** A json or jsonb object, as text or already decoded. */
export const dbJsonObject = z
  .union([z.string().transform((text) => JSON.parse(text) as unknown), z.record(z.string(), z.unknown())])
  .pipe(z.record(z.string(), z.unknown()));
