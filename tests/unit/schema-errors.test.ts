/**
 * Each mutation's result union lists exactly the errors it can return: a client writing
 * `... on InvalidTransitionError` for addVariant would otherwise handle a case that never happens, and
 * miss the one that does.
 */
import { describe, expect, it } from '@jest/globals';
import { getNamedType, isObjectType, isUnionType } from 'graphql';
import { schema } from '../../src/graphql/schema';

const errorsOf = (mutation: string): string[] => {
  const type = getNamedType(schema.getMutationType()!.getFields()[mutation].type);
  if (!isUnionType(type)) throw new Error(`${mutation} returns no union`);
  return type
    .getTypes()
    .filter((t) => t.getInterfaces().some((i) => i.name === 'Error'))
    .map((t) => t.name)
    .sort();
};

describe('mutation result unions', () => {
  it.each([
    ['createExperiment', ['ConflictError', 'ValidationError']],
    ['updateExperiment', ['NotFoundError', 'RuleViolationError', 'ValidationError']],
    ['deleteExperiment', ['InvalidTransitionError', 'NotFoundError', 'ValidationError']],
    ['startExperiment', ['InvalidTransitionError', 'NotFoundError', 'ValidationError']],
    ['pauseExperiment', ['InvalidTransitionError', 'NotFoundError', 'ValidationError']],
    ['completeExperiment', ['InvalidTransitionError', 'NotFoundError', 'ValidationError']],
    ['archiveExperiment', ['InvalidTransitionError', 'NotFoundError', 'ValidationError']],
    ['addVariant', ['ConflictError', 'NotFoundError', 'RuleViolationError', 'ValidationError']],
    ['updateVariant', ['ConflictError', 'NotFoundError', 'RuleViolationError', 'ValidationError']],
    ['removeVariant', ['NotFoundError', 'RuleViolationError', 'ValidationError']],
  ])('%s can return %j', (mutation, errors) => {
    expect(errorsOf(mutation)).toEqual(errors);
  });

  it('RuleViolationError implements Error and names the rule from the ExperimentRule enum', () => {
    const type = schema.getType('RuleViolationError');
    expect(isObjectType(type) && type.getInterfaces().map((i) => i.name)).toEqual(['Error']);
    const rule = isObjectType(type) ? type.getFields().rule.type.toString() : null;
    expect(rule).toBe('ExperimentRule!');
  });
});
