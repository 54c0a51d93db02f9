/**
 * Input validation shared by the services. Zod schemas describe every field once; failures become
 * one ValidationError with an entry per bad field, its path starting at the argument name.
 */
import { z } from 'zod';
import { LIMITS, SLUG_PATTERN } from '../config';
import { ValidationError } from './errors';

export const slug = (what: string) =>
  z
    .string()
    .max(LIMITS.keyMaxLength, `${what} must be at most ${LIMITS.keyMaxLength} characters`)
    .regex(
      SLUG_PATTERN,
      `${what} must start with a lowercase letter or digit and contain only a-z, 0-9, "_", "." and "-"`,
    );

// Zod 4's z.number() itself rejects NaN and ±Infinity (as invalid_type): name those "not finite" rather
// than "not a number", which would be a confusing answer to Infinity.
export const finiteNumber = (what: string) =>
  z
    .number({
      error: (issue) =>
        typeof issue.input === 'number' ? `${what} must be a finite number` : `${what} must be a number`,
    })
    .refine(Number.isFinite, `${what} must be a finite number`);

/** A JSON object (not array, not scalar) whose serialised size stays under a limit. */
export const jsonObject = (what: string, maxBytes: number) =>
  z
    .custom<Record<string, unknown>>(
      (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
      `${what} must be a JSON object`,
    )
    .refine(
      (v) => Buffer.byteLength(JSON.stringify(v), 'utf8') <= maxBytes,
      `${what} must be at most ${Math.round(maxBytes / 1024)} KB when serialised`,
    );

export const userId = z
  .string()
  .min(1, 'userId must not be empty')
  .max(LIMITS.userIdMaxLength, `userId must be at most ${LIMITS.userIdMaxLength} characters`);

/** Any RFC 4122 UUID (what PostgreSQL's uuid type accepts in canonical form). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: string) => UUID_PATTERN.test(value);

// The same rule as isUuid (any version), so GraphQL arguments and service inputs agree on what a UUID is.
export const uuid = (what: string) => z.string().regex(UUID_PATTERN, `${what} must be a UUID`);

/** Parses or throws a ValidationError whose paths start with `root` (the GraphQL argument name). */
export function parse<S extends z.ZodType>(schema: S, value: unknown, root: string[] = []): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError(
    result.error.issues.map((issue) => ({
      path: [...root, ...issue.path.map(String)],
      message: issue.message,
    })),
  );
}
