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
  RateLimitedError,
  UnauthenticatedError,
  ValidationError,
  VariantMismatchError,
  type FieldError,
} from '../common/errors';
import { builder } from './builder';

export const ErrorInterface = builder.interfaceRef<DomainError>('Error').implement({
  description: 'An expected failure. `code` is stable and machine-readable; `message` is for people.',
  fields: (t) => ({
    message: t.exposeString('message', {
      description: 'What went wrong, in a sentence a person can act on.',
    }),
    code: t.exposeString('code', {
      description:
        'Stable error code: VALIDATION_FAILED, NOT_FOUND, CONFLICT, INVALID_TRANSITION, NOT_ASSIGNED, VARIANT_MISMATCH.',
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
  description: 'The experiment or variant named in the input does not exist.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof NotFoundError,
  fields: (t) => ({
    entity: t.exposeString('entity', { description: 'What was looked for: Experiment or Variant.' }),
    ref: t.exposeString('ref', { description: 'The id or key that was not found.' }),
  }),
});

builder.objectType(ConflictError, {
  name: 'ConflictError',
  description: 'The change clashes with existing data, e.g. a duplicate experiment key or variant name.',
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
  description: 'The experiment is in a status that does not allow this operation.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof InvalidTransitionError,
  fields: (t) => ({
    // Spelled like the ExperimentStatus enum values, so clients can compare it with `Experiment.status`.
    from: t.string({
      description: 'The current status, spelled as in `ExperimentStatus` (e.g. `DRAFT`).',
      resolve: (e) => e.from.toUpperCase(),
    }),
    to: t.string({
      description:
        'The status that was refused (e.g. `PAUSED`), or `DELETED` for a refused delete. Equal to `from` when the status allows no such change (e.g. adding a variant to a RUNNING experiment).',
      resolve: (e) => e.to.toUpperCase(),
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

/** The error classes a mutation can return, per kind of mutation. */
export const MANAGEMENT_ERRORS = [ValidationError, NotFoundError, ConflictError, InvalidTransitionError];
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
