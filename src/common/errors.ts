/**
 * Expected failures of the domain. Services throw these; the GraphQL layer registers each as an object
 * type implementing `Error`, so clients get them as typed results instead of masked errors.
 */
import type { ExperimentRule } from '../experiments/lifecycle';

export interface FieldError {
  /** Path to the offending input field, e.g. ["input", "variants", "1", "weight"]. */
  path: string[];
  message: string;
}

export abstract class DomainError extends Error {
  abstract readonly code: string;
}

export class ValidationError extends DomainError {
  readonly code = 'VALIDATION_FAILED';
  constructor(readonly fieldErrors: FieldError[]) {
    super(
      fieldErrors.length === 1
        ? `Invalid ${fieldErrors[0].path.join('.')}: ${fieldErrors[0].message}`
        : `Invalid input: ${fieldErrors.map((e) => e.path.join('.')).join(', ')}`,
    );
    this.name = 'ValidationError';
  }
  static field(path: string | string[], message: string): ValidationError {
    return new ValidationError([{ path: Array.isArray(path) ? path : path.split('.'), message }]);
  }
}

export class NotFoundError extends DomainError {
  readonly code = 'NOT_FOUND';
  constructor(
    readonly entity: string,
    readonly ref: string,
  ) {
    super(`${entity} ${ref} not found`);
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends DomainError {
  readonly code = 'CONFLICT';
  constructor(
    message: string,
    readonly field: string | null = null,
  ) {
    super(message);
    this.name = 'ConflictError';
  }
}

export class InvalidTransitionError extends DomainError {
  readonly code = 'INVALID_TRANSITION';
  constructor(
    readonly from: string,
    readonly to: string,
    reason?: string,
  ) {
    super(reason ?? `Cannot move an experiment from ${from} to ${to}`);
    this.name = 'InvalidTransitionError';
  }
}

/** A rule of the experiment's current status refuses the change (one that is not a status transition). */
export class RuleViolationError extends DomainError {
  readonly code = 'RULE_VIOLATION';
  constructor(
    readonly rule: ExperimentRule,
    message: string,
  ) {
    super(message);
    this.name = 'RuleViolationError';
  }
}

export class NotAssignedError extends DomainError {
  readonly code = 'NOT_ASSIGNED';
  constructor(
    readonly experimentKey: string,
    readonly userId: string,
  ) {
    super(`User ${userId} has no assignment in experiment ${experimentKey}; pass variantId or assign first`);
    this.name = 'NotAssignedError';
  }
}

export class VariantMismatchError extends DomainError {
  readonly code = 'VARIANT_MISMATCH';
  constructor(
    readonly assignedVariantId: string,
    readonly givenVariantId: string,
  ) {
    super(
      `User is assigned to variant ${assignedVariantId}, not ${givenVariantId}; the event was not recorded`,
    );
    this.name = 'VariantMismatchError';
  }
}

/** Refused before any work: no API key, a malformed header, or a key that is unknown or revoked. */
export class UnauthenticatedError extends DomainError {
  readonly code = 'UNAUTHENTICATED';
  constructor(message: string) {
    super(message);
    this.name = 'UnauthenticatedError';
  }
}

/** The caller's request budget is spent; it may try again after `retryAfterSeconds`. */
export class RateLimitedError extends DomainError {
  readonly code = 'RATE_LIMITED';
  constructor(
    readonly retryAfterSeconds: number,
    reason = 'Rate limit exceeded',
  ) {
    super(`${reason}; retry in ${retryAfterSeconds} s`);
    this.name = 'RateLimitedError';
  }
}

/** An error and its causes (drivers and Drizzle wrap the server's error), outermost first. */
export function* errorChain(err: unknown, depth = 5): Generator<Record<string, unknown>> {
  let e: unknown = err;
  for (let i = 0; i < depth && typeof e === 'object' && e !== null; i++) {
    const record = e as Record<string, unknown>;
    yield record;
    e = record.cause;
  }
}

/** The SQLSTATE of a PostgreSQL error anywhere in the chain. */
export function pgErrorCode(err: unknown): string | undefined {
  for (const e of errorChain(err, 4)) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** The constraint a PostgreSQL error names, so a unique violation maps to the ConflictError a pre-check would raise. */
export function pgConstraint(err: unknown): string | undefined {
  for (const e of errorChain(err, 4)) {
    if (typeof e.constraint_name === 'string') return e.constraint_name;
    if (typeof e.constraint === 'string') return e.constraint;
  }
  return undefined;
}
