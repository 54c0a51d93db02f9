/**
 * Targeting conditions in GrowthBook's syntax (MongoDB-style operators over unit attributes). Evaluation is
 * GrowthBook's own `evalCondition` from its JavaScript SDK, so a condition means exactly what it means to an
 * SDK evaluating the same experiment locally (its conformance suite runs against this module). Validation is
 * ours: the SDK treats an unknown operator or a malformed argument as "no match" (everybody silently
 * excluded); here it is refused on save with the path of the offending operator. Pure: no I/O.
 */
import { evalCondition } from '@growthbook/growthbook';

/** A targeting condition: attribute paths (dot paths allowed) or `$and`/`$or`/`$nor`/`$not` at its top. */
export type Condition = Record<string, unknown>;

/** Operators that combine conditions (keys of a condition object). */
export const LOGICAL_OPERATORS = ['$and', '$or', '$nor', '$not'] as const;

/** Operators applied to one attribute's value (keys of an operator object), as GrowthBook's SDKs know them. */
export const VALUE_OPERATORS = [
  '$eq',
  '$ne',
  '$lt',
  '$lte',
  '$gt',
  '$gte',
  '$in',
  '$nin',
  '$ini',
  '$nini',
  '$all',
  '$alli',
  '$regex',
  '$regexi',
  '$exists',
  '$type',
  '$size',
  '$elemMatch',
  '$not',
  '$veq',
  '$vne',
  '$vgt',
  '$vgte',
  '$vlt',
  '$vlte',
] as const;

/** `$type` names (GrowthBook's getType). */
export const VALUE_TYPES = ['string', 'number', 'boolean', 'array', 'object', 'null', 'undefined'] as const;

/**
 * Saved groups (`$inGroup`, `$notInGroup`, `$savedGroup`) are GrowthBook-server objects this service does
 * not have; a condition naming one would match nobody, so it is refused like any unknown operator.
 */
const VALUE_OPERATOR_SET = new Set<string>(VALUE_OPERATORS);
const LOGICAL_OPERATOR_SET = new Set<string>(LOGICAL_OPERATORS);

export interface ConditionProblem {
  /** Path inside the condition, e.g. ["$and", "1", "country", "$inn"]. */
  path: string[];
  message: string;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** GrowthBook's rule: an object whose keys all start with `$` is a set of operators, else a literal. */
const isOperatorObject = (v: Record<string, unknown>) => {
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => k.startsWith('$'));
};

/** The regular expression the SDK builds from a `$regex` argument (it escapes unescaped slashes). */
function regexProblem(pattern: string, insensitive: boolean): string | null {
  try {
    new RegExp(pattern.replace(/([^\\])\//g, '$1\\/'), insensitive ? 'i' : undefined);
    return null;
  } catch (err) {
    return `is not a valid regular expression (${(err as Error).message})`;
  }
}

/**
 * Every problem of a condition: unknown operators, arguments of the wrong kind, invalid regular
 * expressions. Empty when the SDK evaluates the condition as written.
 */
export function conditionProblems(condition: unknown): ConditionProblem[] {
  const problems: ConditionProblem[] = [];
  const add = (path: string[], message: string) => problems.push({ path, message });

  function conditionAt(value: unknown, path: string[]): void {
    if (!isPlainObject(value)) {
      add(path, 'must be a condition object, e.g. {"country": {"$in": ["US", "CA"]}}');
      return;
    }
    for (const [key, arg] of Object.entries(value)) {
      const at = [...path, key];
      if (!key.startsWith('$')) {
        valueAt(arg, at);
      } else if (key === '$not') {
        conditionAt(arg, at);
      } else if (LOGICAL_OPERATOR_SET.has(key)) {
        if (!Array.isArray(arg)) add(at, `${key} takes an array of conditions`);
        else
          arg.forEach((c, i) => {
            conditionAt(c, [...at, String(i)]);
          });
      } else {
        add(at, `unknown operator ${key} (at the top of a condition: ${LOGICAL_OPERATORS.join(', ')})`);
      }
    }
  }

  /** What an attribute is compared with: a literal, or an object of operators. */
  function valueAt(value: unknown, path: string[]): void {
    if (!isPlainObject(value)) return; // a literal: compared by value
    const keys = Object.keys(value);
    const operators = keys.filter((k) => k.startsWith('$'));
    if (operators.length === 0) return; // a literal object
    if (operators.length !== keys.length) {
      const plain = keys.find((k) => !k.startsWith('$'))!;
      add([...path, plain], 'operators and plain keys cannot be mixed in one object');
      return;
    }
    for (const [op, arg] of Object.entries(value)) operatorAt(op, arg, [...path, op]);
  }

  function operatorAt(op: string, arg: unknown, path: string[]): void {
    if (!VALUE_OPERATOR_SET.has(op)) {
      add(path, `unknown operator ${op} (known: ${VALUE_OPERATORS.join(', ')})`);
      return;
    }
    switch (op) {
      case '$in':
      case '$nin':
      case '$ini':
      case '$nini':
        if (!Array.isArray(arg)) add(path, `${op} takes an array of values`);
        return;
      case '$all':
      case '$alli':
        if (!Array.isArray(arg)) add(path, `${op} takes an array`);
        else
          arg.forEach((v, i) => {
            valueAt(v, [...path, String(i)]);
          });
        return;
      case '$regex':
      case '$regexi': {
        if (typeof arg !== 'string') {
          add(path, `${op} takes a string`);
          return;
        }
        const problem = regexProblem(arg, op === '$regexi');
        if (problem) add(path, problem);
        return;
      }
      case '$exists':
        if (typeof arg !== 'boolean') add(path, '$exists takes true or false');
        return;
      case '$type':
        if (typeof arg !== 'string' || !(VALUE_TYPES as readonly string[]).includes(arg)) {
          add(path, `$type takes one of ${VALUE_TYPES.join(', ')}`);
        }
        return;
      case '$veq':
      case '$vne':
      case '$vgt':
      case '$vgte':
      case '$vlt':
      case '$vlte':
        if (typeof arg !== 'string') add(path, `${op} takes a version string, e.g. "1.2.3"`);
        return;
      case '$size':
      case '$not':
        valueAt(arg, path);
        return;
      case '$elemMatch':
        // The SDK reads an operator object as a condition on each element's value, anything else as a
        // condition on each element's fields.
        if (isPlainObject(arg) && isOperatorObject(arg)) valueAt(arg, path);
        else conditionAt(arg, path);
        return;
      default:
        // $eq $ne $lt $lte $gt $gte: compare with any value.
        return;
    }
  }

  conditionAt(condition, []);
  return problems;
}

type SdkCondition = Parameters<typeof evalCondition>[1];
export type SavedGroups = Parameters<typeof evalCondition>[2];

/** The attributes a condition is evaluated against. */
export type Attributes = Record<string, unknown>;

/**
 * Whether a unit with these attributes matches. A null condition matches everybody. `savedGroups` exists only
 * so GrowthBook's conformance cases can run unchanged; the service never has any.
 */
export function matchesCondition(
  condition: Condition | null,
  attributes: Attributes,
  savedGroups?: SavedGroups,
): boolean {
  if (condition === null) return true;
  // The SDK's types are narrower than what it evaluates (any JSON); a validated condition is what it reads.
  return evalCondition(attributes, condition as SdkCondition, savedGroups);
}
