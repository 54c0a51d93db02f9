/**
 * Writes schema.graphql, the reviewed public contract, and possible-types.json beside it: the concrete
 * types of every interface and union, which normalising caches need to match `... on Error` (Apollo
 * Client's `new InMemoryCache({ possibleTypes })`). A test fails when either file is stale.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAbstractType, lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from '../graphql/schema';
import { PROJECT_ROOT } from '../paths';

export const SCHEMA_FILE = path.join(PROJECT_ROOT, 'schema.graphql');
export const POSSIBLE_TYPES_FILE = path.join(PROJECT_ROOT, 'possible-types.json');

export function printedSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}

/** `{ "Error": ["ConflictError", …], "AddVariantResult": [...] }`, sorted, as Apollo's possibleTypes. */
export function possibleTypes(): Record<string, string[]> {
  const sorted = lexicographicSortSchema(schema);
  return Object.fromEntries(
    Object.values(sorted.getTypeMap())
      .filter(isAbstractType)
      .filter((type) => !type.name.startsWith('__'))
      .map((type) => [type.name, sorted.getPossibleTypes(type).map((t) => t.name)]),
  );
}

export function printedPossibleTypes(): string {
  return `${JSON.stringify(possibleTypes(), null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  writeFileSync(SCHEMA_FILE, printedSchema());
  writeFileSync(POSSIBLE_TYPES_FILE, printedPossibleTypes());
  for (const file of [SCHEMA_FILE, POSSIBLE_TYPES_FILE])
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
