import { describe, expect, it } from '@jest/globals';
import type { GraphQLObjectType } from 'graphql';
import { SCOPES } from '../../src/auth/scopes';
import { schema } from '../../src/graphql/schema';

/** Every entry point must say which scope opens it: a new field without one fails here. */
function rootFields(type: GraphQLObjectType | null | undefined) {
  return Object.values(type?.getFields() ?? {}).map((field) => ({
    name: `${type!.name}.${field.name}`,
    scopes: (field.extensions?.pothosOptions as { authScopes?: Record<string, boolean> } | undefined)
      ?.authScopes,
  }));
}

describe('schema scopes', () => {
  const fields = [...rootFields(schema.getQueryType()), ...rootFields(schema.getMutationType())];

  it('every query and mutation declares the scopes that may call it', () => {
    const missing = fields.filter((f) => !f.scopes || Object.keys(f.scopes).length === 0).map((f) => f.name);
    expect(missing).toEqual([]);
  });

  it('declares only known scopes', () => {
    for (const f of fields) for (const scope of Object.keys(f.scopes ?? {})) expect(SCOPES).toContain(scope);
  });

  it('management needs write, assignment and events need assign, reading needs read, keys need admin', () => {
    const of = (name: string) => Object.keys(fields.find((f) => f.name === name)?.scopes ?? {});
    expect(of('Mutation.createExperiment')).toEqual(['write']);
    expect(of('Mutation.startExperiment')).toEqual(['write']);
    expect(of('Mutation.assignVariant')).toEqual(['assign']);
    expect(of('Mutation.recordEvents')).toEqual(['assign']);
    expect(of('Query.experiments')).toEqual(['read']);
    expect(of('Mutation.createApiKey')).toEqual(['admin']);
  });
});
