/**
 * Expected failures as schema types: every domain error class is an object type implementing the
 * `Error` interface, so clients select `... on Error { code message }` and the specifics they need.
 */
import { GraphQLError } from 'graphql';
import {
  ConflictError,
  type DomainError,
  InvalidTransitionError,
  NotAssignedError,
  NotFoundError,
  RuleViolationError,
  RateLimitedError,
  UnauthenticatedError,
  ValidationError,
  VariantMismatchError,
  type FieldError,
} from '../common/errors';
import { EXPERIMENT_RULES, type ExperimentRule } from '../experiments/lifecycle';
import { builder } from './builder';
import { enumValues } from './enums';

export const ErrorInterface = builder.interfaceRef<DomainError>('Error').implement({
  description: 'An expected failure. `code` is stable and machine-readable; `message` is for people.',
  fields: (t) => ({
    message: t.exposeString('message', {
      description: 'What went wrong, in a sentence a person can act on.',
    }),
    code: t.exposeString('code', {
      description:
        'Stable error code: VALIDATION_FAILED, NOT_FOUND, CONFLICT, INVALID_TRANSITION, RULE_VIOLATION, NOT_ASSIGNED, VARIANT_MISMATCH.',
    }),
  }),
});

export const FieldErrorType = builder.objectRef<FieldError>('FieldError').implement({
  description: 'One invalid input field.',
  fields: (t) => ({
    path: t.exposeStringList('path', {
      description: 'Path from the argument to the field, e.g. ["input", "variants", "1", "weight"].',
    }),
    message: t.exposeString('message', { description: 'Why the value was rejected.' }),
  }),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  description: 'The input was rejected; nothing was written. One entry per bad field.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof ValidationError,
  fields: (t) => ({
    fieldErrors: t.field({
      type: [FieldErrorType],
      description: 'One entry per rejected input field; show each message next to the field its path names.',
      resolve: (e) => e.fieldErrors,
    }),
  }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  description: 'The experiment, variant or metric named in the input does not exist.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof NotFoundError,
  fields: (t) => ({
    entity: t.exposeString('entity', { description: 'What was looked for: Experiment, Variant or Metric.' }),
    ref: t.exposeString('ref', { description: 'The id or key that was not found.' }),
  }),
});

builder.objectType(ConflictError, {
  name: 'ConflictError',
  description:
    'The change clashes with existing data, e.g. a duplicate experiment or metric key or variant name.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof ConflictError,
  fields: (t) => ({
    field: t.exposeString('field', {
      nullable: true,
      description: 'The input field that clashes, when one does.',
    }),
  }),
});

builder.objectType(InvalidTransitionError, {
  name: 'InvalidTransitionError',
  description:
    'The lifecycle does not lead from the experiment’s status to the one asked for (start, pause, complete, archive, or delete).',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof InvalidTransitionError,
  fields: (t) => ({
    // Spelled like the ExperimentStatus enum values, so clients can compare it with `Experiment.status`.
    from: t.string({
      description: 'The current status, spelled as in `ExperimentStatus` (e.g. `DRAFT`).',
      resolve: (e) => e.from.toUpperCase(),
    }),
    to: t.string({
      description: 'The status that was refused (e.g. `PAUSED`), or `DELETED` for a refused delete.',
      resolve: (e) => e.to.toUpperCase(),
    }),
  }),
});

const ExperimentRuleEnum = builder.enumType('ExperimentRule', {
  description: 'A rule of the experiment’s status that refused a change (`RuleViolationError.rule`).',
  values: enumValues(EXPERIMENT_RULES, {
    VARIANTS_FIXED:
      'Variants can be added or removed only while the experiment is a DRAFT (later it would move users between buckets); set a weight to 0 instead.',
    VARIANT_IDENTITY_FIXED:
      'Once the experiment has started, a variant keeps its name and control flag; only weight and config can change.',
    READ_ONLY:
      'A COMPLETED or ARCHIVED experiment’s variants, and an ARCHIVED experiment, cannot be changed.',
    POPULATION_FIXED:
      'Layer membership and ranges change only while the experiment is a DRAFT: once it enrolled units, its population must not move.',
    METRICS_FIXED:
      'Once the experiment has started, its listed metrics and their roles stay; only SECONDARY and GUARDRAIL metrics can be added.',
    METRIC_IN_USE:
      'A metric’s kind and event names cannot change while a started experiment lists it; create a new metric instead.',
    BANDIT_WEIGHTS:
      'A BANDIT’s weights are set by its reweighting job only (equal while exploring, then each arm’s chance of being best); they cannot be changed by hand.',
    RAW_EVENTS_DROPPED:
      'The change needs the experiment’s numbers recounted from raw events, and retention (EVENT_RETENTION_DAYS) has dropped some of them: conversion windows and RATIO pairs stay as they are.',
  } satisfies Record<ExperimentRule, string>),
});

builder.objectType(RuleViolationError, {
  name: 'RuleViolationError',
  description:
    'The experiment’s status does not allow this change (a rule, not a lifecycle transition: e.g. adding a variant to a RUNNING experiment). Nothing was written.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof RuleViolationError,
  fields: (t) => ({
    rule: t.field({
      type: ExperimentRuleEnum,
      description: 'Which rule refused the change.',
      resolve: (e) => e.rule,
    }),
  }),
});

builder.objectType(NotAssignedError, {
  name: 'NotAssignedError',
  description: 'An event named no variant and the user has no assignment in the experiment.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof NotAssignedError,
  fields: (t) => ({
    experimentKey: t.exposeString('experimentKey', { description: 'The experiment the event named.' }),
    userId: t.exposeString('userId', {
      description: 'The unit with no assignment: call assignVariant first, or pass the variantId it saw.',
    }),
  }),
});

builder.objectType(VariantMismatchError, {
  name: 'VariantMismatchError',
  description:
    'The event named a different variant from the user’s stored assignment. It was not recorded, which keeps users who saw several variants out of the numbers.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof VariantMismatchError,
  fields: (t) => ({
    assignedVariantId: t.exposeID('assignedVariantId', {
      description: 'The variant the user is stored in; events must name this one (or none).',
    }),
    givenVariantId: t.exposeID('givenVariantId', { description: 'The variant the rejected event named.' }),
  }),
});

/** The error classes a mutation can return, per kind of mutation; a union lists only errors that can occur. */
export const CREATE_ERRORS = [ValidationError, ConflictError];
/** Lifecycle transitions and delete. */
export const TRANSITION_ERRORS = [ValidationError, NotFoundError, InvalidTransitionError];
/** Changes the status may forbid: updateExperiment, removeVariant. */
export const CHANGE_ERRORS = [ValidationError, NotFoundError, RuleViolationError];
/** Changes that may also clash with another variant: addVariant, updateVariant. */
export const VARIANT_CHANGE_ERRORS = [ValidationError, NotFoundError, ConflictError, RuleViolationError];
export const EVENT_ERRORS = [ValidationError, NotFoundError, NotAssignedError, VariantMismatchError];

/** A ValidationError outside a result union (a query's arguments): BAD_USER_INPUT naming the argument. */
function badUserInput(err: ValidationError): GraphQLError {
  return new GraphQLError(err.message, {
    extensions: {
      code: 'BAD_USER_INPUT',
      argument: err.fieldErrors[0]?.path[0],
      fieldErrors: err.fieldErrors,
    },
  });
}

/**
 * A domain error that reached GraphQL outside a result union, as the error the client gets: its code and
 * message, with the HTTP status and headers of refusals made before execution (401, 429).
 */
export function toGraphQLError(err: DomainError): GraphQLError {
  if (err instanceof ValidationError) return badUserInput(err);
  if (err instanceof UnauthenticatedError) {
    return new GraphQLError(err.message, {
      extensions: {
        code: err.code,
        http: { status: 401, headers: { 'www-authenticate': 'Bearer' } },
      },
    });
  }
  if (err instanceof RateLimitedError) {
    return new GraphQLError(err.message, {
      extensions: {
        code: err.code,
        retryAfterSeconds: err.retryAfterSeconds,
        http: { status: 429, headers: { 'retry-after': String(err.retryAfterSeconds) } },
      },
    });
  }
  return new GraphQLError(err.message, { extensions: { code: err.code } });
}

/**
 * Runs a service call from a field without a result union, turning its ValidationError into BAD_USER_INPUT
 * (error masking does the same for any field; this keeps the error's place in the field's own code).
 */
export async function orBadInput<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof ValidationError) throw badUserInput(err);
    throw err;
  }
}
