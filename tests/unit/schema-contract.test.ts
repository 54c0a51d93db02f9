/**
 * schema.graphql is the reviewed public contract: it must match the schema the code builds, and every
 * element of it must say what it means to a dashboard author.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import {
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isIntrospectionType,
  isObjectType,
  isSpecifiedScalarType,
  type GraphQLNamedType,
} from 'graphql';
import { SCHEMA_FILE, printedSchema } from '../../src/cli/print-schema';
import { schema } from '../../src/graphql/schema';

const described = (d: string | null | undefined) => typeof d === 'string' && d.trim().length > 0;

function ownTypes(): GraphQLNamedType[] {
  return Object.values(schema.getTypeMap()).filter(
    (t) => !isIntrospectionType(t) && !isSpecifiedScalarType(t),
  );
}

/** Every undescribed type, field, argument, input field and enum value, as `Type.field(arg)` paths. */
function undescribed(): string[] {
  const missing: string[] = [];
  for (const type of ownTypes()) {
    if (!described(type.description)) missing.push(type.name);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (!described(field.description)) missing.push(`${type.name}.${field.name}`);
        for (const arg of field.args) {
          if (!described(arg.description)) missing.push(`${type.name}.${field.name}(${arg.name})`);
        }
      }
    }
    if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (!described(field.description)) missing.push(`${type.name}.${field.name}`);
      }
    }
    if (isEnumType(type)) {
      for (const value of type.getValues()) {
        if (!described(value.description)) missing.push(`${type.name}.${value.name}`);
      }
    }
  }
  return missing;
}

describe('schema contract', () => {
  it('schema.graphql is up to date (run `npm run schema:print` and review the diff)', () => {
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    const current = printedSchema();
    if (committed !== current) {
      throw new Error(
        'schema.graphql is stale: the schema built from src/ differs from the committed contract. ' +
          'Run `npm run schema:print` and review the diff before committing.',
      );
    }
    expect(committed).toBe(current);
  });

  it('every type, field, argument and enum value has a description', () => {
    expect(undescribed()).toEqual([]);
  });

  it('keeps the names of the contract in issue 4', () => {
    const query = schema.getQueryType()!.getFields();
    expect(Object.keys(query)).toEqual(
      expect.arrayContaining(['experiment', 'experiments', 'assignment', 'user']),
    );
    const mutation = schema.getMutationType()!.getFields();
    expect(Object.keys(mutation)).toEqual(
      expect.arrayContaining([
        'createExperiment',
        'updateExperiment',
        'deleteExperiment',
        'addVariant',
        'updateVariant',
        'removeVariant',
        'startExperiment',
        'pauseExperiment',
        'completeExperiment',
        'archiveExperiment',
        'assignVariant',
        'recordExposure',
        'recordConversion',
        'recordMetric',
      ]),
    );
    for (const name of [
      'ValidationError',
      'NotFoundError',
      'ConflictError',
      'InvalidTransitionError',
      'NotAssignedError',
      'VariantMismatchError',
    ]) {
      const type = schema.getType(name);
      expect(isObjectType(type) && type.getInterfaces().map((i) => i.name)).toEqual(['Error']);
    }
    for (const scalar of ['DateTime', 'JSON']) expect(schema.getType(scalar)).toBeDefined();
  });
});
