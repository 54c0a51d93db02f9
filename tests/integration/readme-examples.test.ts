/**
 * The README's GraphQL examples are what client developers paste first: each must be a valid, named
 * operation against the schema, use real UUIDs where the API takes ids, select `id` wherever an object
 * has one (so a normalising cache can update it), and the queries must run as they are.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  type ASTNode,
  type DocumentNode,
  getNamedType,
  isObjectType,
  Kind,
  parse,
  TypeInfo,
  validate,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import { isUuid } from '../../src/common/validation';
import type { DatabaseHandle } from '../../src/db/client';
import { schema } from '../../src/graphql/schema';
import type { App } from '../../src/http/app';
import { createTestApp, gql } from '../support/app';
import { openTestDatabase } from '../support/db';
import { ROOT } from '../support/paths';

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const examples = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]);
const documents = examples.map((source) => ({ source, name: firstLine(source) }));

function firstLine(source: string): string {
  return source
    .trim()
    .split('\n')[0]
    .replace(/\s*\{$/, '');
}

/** ID arguments and input fields given as string literals that are not UUIDs. */
function nonUuidIds(document: DocumentNode): string[] {
  const typeInfo = new TypeInfo(schema);
  const bad: string[] = [];
  const check = (node: ASTNode) => {
    const type = typeInfo.getInputType();
    if (type && getNamedType(type).name === 'ID' && node.kind === Kind.STRING && !isUuid(node.value))
      bad.push(node.value);
  };
  visit(document, visitWithTypeInfo(typeInfo, { StringValue: check }));
  return bad;
}

/** Selection sets on object types that have an `id` field but do not select it. */
function withoutId(document: DocumentNode): string[] {
  const typeInfo = new TypeInfo(schema);
  const missing: string[] = [];
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(node) {
        const type = getNamedType(typeInfo.getType());
        if (!node.selectionSet || !isObjectType(type) || !('id' in type.getFields())) return;
        const selected = node.selectionSet.selections.some(
          (s) => s.kind === Kind.FIELD && s.name.value === 'id' && !s.alias,
        );
        if (!selected) missing.push(`${node.name.value}: ${type.name}`);
      },
    }),
  );
  return missing;
}

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => {
  await handle.close();
});

describe('README GraphQL examples', () => {
  it('are found (the client-service, dashboard and SDK examples)', () => {
    expect(documents.map((d) => d.name)).toEqual(
      expect.arrayContaining([
        'mutation AssignVariant',
        'mutation RecordEvents',
        'query Dashboard',
        'query GrowthBookExperiment',
      ]),
    );
  });

  it.each(documents)('$name: valid against the schema, every operation named', ({ source }) => {
    const document = parse(source);
    expect(validate(schema, document).map((e) => e.message)).toEqual([]);
    for (const definition of document.definitions) {
      expect(definition.kind === Kind.OPERATION_DEFINITION && definition.name?.value).toBeTruthy();
    }
  });

  it.each(documents)('$name: ids are UUIDs and every object with an id selects it', ({ source }) => {
    const document = parse(source);
    expect(nonUuidIds(document)).toEqual([]);
    expect(withoutId(document)).toEqual([]);
  });

  it.each(documents.filter((d) => d.source.trimStart().startsWith('query')))(
    '$name: runs on the seed data within the query limits',
    async ({ source }) => {
      const body = await gql(app, source);
      expect(body.errors).toBeUndefined();
      expect(body.data).toBeDefined();
    },
  );
});
