/**
 * Input validation: the zod builders every input schema is made of, and `parse`. Each rule (limit,
 * pattern, message) is written once here or in the schema that uses it; failures become one
 * ValidationError with an entry per bad field, its path starting at the argument name.
 *
 * Every string goes through `text` (and every JSON value through `jsonObject`), so no string PostgreSQL
 * would refuse (NUL) or silently alter (an unpaired UTF-16 surrogate becomes U+FFFD) reaches a statement,
 * where it would fail everything that shares the statement or transaction.
 */
import { z } from 'zod';
import { LIMITS, slugPattern } from '../config';
import { ValidationError } from './errors';

// A high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** True when PostgreSQL stores the string as it is (`text` and `jsonb` alike): no NUL, no lone surrogate. */
export const isStorable = (s: string) => !s.includes('\u0000') && !LONE_SURROGATE.test(s);

const unstorableMessage = (what: string) =>
  `${what} must not contain NUL characters (\\u0000) or unpaired UTF-16 surrogates`;

interface TextOptions {
  /** Smallest length, after trimming when `trim` is set; default 0. */
  min?: number;
  max: number;
  /** Message for a string shorter than `min` (default: "… must not be empty"). */
  minMessage?: string;
  trim?: boolean;
}

/** A string of at most `max` characters that PostgreSQL stores unchanged. The base of every string input. */
export const text = (what: string, { min = 0, max, minMessage, trim = false }: TextOptions) => {
  const base = z
    .string({ error: `${what} must be a string` })
    .refine(isStorable, { message: unstorableMessage(what), abort: true });
  const trimmed = trim ? base.trim() : base;
  const bounded = min > 0 ? trimmed.min(min, minMessage ?? `${what} must not be empty`) : trimmed;
  return bounded.max(max, `${what} must be at most ${max} characters`);
};

/** Experiment keys and metric names: lowercase slugs. */
export const slug = (what: string, max: number = LIMITS.keyMaxLength) =>
  text(what, { max }).regex(
    slugPattern(max),
    `${what} must start with a lowercase letter or digit and contain only a-z, 0-9, "_", "." and "-"`,
  );

/**
 * A key that looks an experiment up (assignment, events, `experiment(key)`), which may be any non-empty
 * text up to the key length. A key that is no slug is simply not found, as any unknown key.
 */
export const experimentKeyRef = (what = 'experimentKey') => text(what, { min: 1, max: LIMITS.keyMaxLength });

// Zod 4's z.number() itself rejects NaN and ±Infinity (as invalid_type): name those "not finite" rather
// than "not a number", which would be a confusing answer to Infinity.
export const finiteNumber = (what: string) =>
  z
    .number({
      error: (issue) =>
        typeof issue.input === 'number' ? `${what} must be a finite number` : `${what} must be a number`,
    })
    .refine(Number.isFinite, `${what} must be a finite number`);

/** A limit as people write it: 1e15, 1e-100. */
export const sci = (n: number) => n.toExponential().replace('e+', 'e');

/** A number in [min, max], e.g. a share or a weight. */
export const numberBetween = (what: string, min: number, max: number) =>
  finiteNumber(what).refine((v) => v >= min && v <= max, `${what} must be between ${min} and ${max}`);

export const isJsonObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

interface JsonProblem {
  /** Path inside the JSON value. */
  path: string[];
  message: string;
}

/**
 * The first problem of a JSON value: nesting deeper than `maxDepth`, a string or key PostgreSQL would
 * refuse, or something that is no JSON (a non-finite number, undefined, a function). Iterative, so a
 * value nested 100,000 deep costs a loop, not the stack that JSON.stringify would overflow.
 */
export function jsonProblem(value: unknown, maxDepth: number): JsonProblem | null {
  const stack: { value: unknown; path: string[]; depth: number }[] = [{ value, path: [], depth: 0 }];
  while (stack.length > 0) {
    const { value: v, path, depth } = stack.pop()!;
    if (typeof v === 'string') {
      if (!isStorable(v)) return { path, message: 'must not contain NUL characters or unpaired surrogates' };
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { path, message: 'numbers must be finite' };
    } else if (typeof v === 'object' && v !== null) {
      if (depth + 1 > maxDepth) {
        return { path, message: `must not nest objects and arrays more than ${maxDepth} levels deep` };
      }
      const entries = Array.isArray(v) ? v.map((item, i) => [String(i), item] as const) : Object.entries(v);
      for (const [key, item] of entries) {
        // A bad key is reported at its object: echoing it in the path would carry the bad string along.
        if (!isStorable(key)) {
          return { path, message: 'keys must not contain NUL characters or unpaired surrogates' };
        }
        stack.push({ value: item, path: [...path, key], depth: depth + 1 });
      }
    } else if (typeof v !== 'boolean' && v !== null) {
      return { path, message: 'must hold only JSON values' };
    }
  }
  return null;
}

/**
 * A JSON object (not array, not scalar) nested at most LIMITS.jsonMaxDepth deep, whose strings and keys
 * PostgreSQL stores unchanged, and whose serialised size stays under a limit. It accepts any value but null
 * and undefined (the GraphQL JSON scalar's input type) and says what is wrong with it.
 */
export const jsonObject = (what: string, maxBytes: number) =>
  z
    .custom<NonNullable<unknown>>((v) => v != null, `${what} must be a JSON object`)
    .pipe(
      z
        .custom<Record<string, unknown>>(isJsonObject, `${what} must be a JSON object`)
        .superRefine((v, ctx) => {
          const problem = jsonProblem(v, LIMITS.jsonMaxDepth);
          if (problem) {
            const where = problem.path.length ? `${what}.${problem.path.join('.')}` : what;
            ctx.addIssue({ code: 'custom', path: problem.path, message: `${where} ${problem.message}` });
            return;
          }
          // Safe now: the depth is bounded.
          if (Buffer.byteLength(JSON.stringify(v), 'utf8') > maxBytes) {
            ctx.addIssue({
              code: 'custom',
              message: `${what} must be at most ${Math.round(maxBytes / 1024)} KB when serialised`,
            });
          }
        }),
    );

export const userId = text('userId', { min: 1, max: LIMITS.userIdMaxLength });

/** Any RFC 4122 UUID (what PostgreSQL's uuid type accepts in canonical form). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: string) => UUID_PATTERN.test(value);

// The same rule as isUuid (any version), so GraphQL arguments and service inputs agree on what a UUID is.
export const uuid = (what: string) =>
  z.string({ error: `${what} must be a UUID` }).regex(UUID_PATTERN, `${what} must be a UUID`);

/** A nullable GraphQL argument or input field the service reads as absent when null ("leave unchanged"). */
export const absentWhenNull = <S extends z.ZodType>(schema: S) =>
  schema.nullish().transform((v) => v ?? undefined);

/** Parses or throws a ValidationError whose paths start with `root` (the GraphQL argument name). */
export function parse<S extends z.ZodType>(schema: S, value: unknown, root: string[] = []): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw validationError(result.error, root);
}

/** A zod failure as a ValidationError, its paths prefixed with `root`. */
export function validationError(error: z.ZodError, root: string[] = []): ValidationError {
  return new ValidationError(
    error.issues.map((issue) => ({
      path: [...root, ...issue.path.map(String)],
      message: issue.message,
    })),
  );
}
