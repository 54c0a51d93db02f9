/**
 * Which scopes a field needs, read from the schema's own declarations (Pothos `authScopes` on object
 * types and on fields, `skipTypeScopes` on fields), and the check of a whole operation against them
 * before anything runs. Pothos enforces the same declarations on the root fields while resolving, which
 * alone would let an operation run its allowed mutations and fail only on the forbidden one; checked
 * here first, an operation is either wholly allowed or nothing of it executes. Below the root fields
 * this check is the only one (src/graphql/builder.ts): every GraphQL operation passes it.
 */
import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLField,
  type GraphQLInterfaceType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
  getOperationAST,
  isInterfaceType,
  isObjectType,
  Kind,
  TypeInfo,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphQLContext } from '../graphql/context';
import { SCOPES, type Scope } from './scopes';

/** Insufficient scope: a GraphQL error naming what was refused and the scopes that would allow it. */
export class ForbiddenError extends GraphQLError {
  constructor(what: string, needed: readonly Scope[], held: Iterable<string>, nodes?: readonly FieldNode[]) {
    const have = [...held];
    super(
      `${what} needs the ${needed.map((s) => `\`${s}\``).join(' or ')} scope; this key has ${have.length ? have.join(', ') : 'none'}`,
      {
        nodes,
        extensions: {
          code: 'FORBIDDEN',
          requiredScopes: [...needed],
          http: { status: 403 },
        },
      },
    );
    this.name = 'ForbiddenError';
  }
}

/** One declaration a field must satisfy: any one of `scopes` (Pothos's default strategy, "any"). */
export interface ScopeRequirement {
  /** Where it is declared: a type (`Experiment`) or a field (`Mutation.createApiKey`). */
  declaredOn: string;
  scopes: readonly Scope[];
}

interface PothosOptions {
  authScopes?: unknown;
  skipTypeScopes?: boolean;
}

const pothosOptions = (extensions: unknown): PothosOptions =>
  ((extensions as { pothosOptions?: PothosOptions } | null | undefined)?.pothosOptions ??
    {}) as PothosOptions;

/**
 * A declaration as a list of scopes. Only static maps (`{ read: true, assign: true }`) are used in
 * this schema; anything else (a function, `$all`) could not be checked before execution, so it is
 * refused when the schema is read rather than silently allowed.
 */
function scopeList(declaredOn: string, authScopes: unknown): ScopeRequirement | null {
  if (authScopes === undefined) return null;
  if (typeof authScopes !== 'object' || authScopes === null) {
    throw new TypeError(`${declaredOn}: authScopes must be a map of scopes to true`);
  }
  const scopes = Object.entries(authScopes).map(([scope, value]) => {
    if (value !== true || !(SCOPES as readonly string[]).includes(scope)) {
      throw new TypeError(`${declaredOn}: authScopes may only map known scopes to true, got ${scope}`);
    }
    return scope as Scope;
  });
  if (scopes.length === 0) throw new TypeError(`${declaredOn}: authScopes names no scope`);
  return { declaredOn, scopes };
}

/** The declaration on a type itself (every field of the type needs it unless the field skips it). */
export function typeRequirement(type: GraphQLNamedType): ScopeRequirement | null {
  return scopeList(type.name, pothosOptions(type.extensions).authScopes);
}

/** Every declaration selecting `field` of `parent` must satisfy: the type's (unless skipped) and the field's. */
export function fieldRequirements(
  parent: GraphQLNamedType,
  field: GraphQLField<unknown, unknown>,
): ScopeRequirement[] {
  const options = pothosOptions(field.extensions);
  const own = scopeList(`${parent.name}.${field.name}`, options.authScopes);
  const ofType = options.skipTypeScopes ? null : typeRequirement(parent);
  return [ofType, own].filter((r): r is ScopeRequirement => r !== null);
}

/**
 * What selecting `field` on `parent` needs. On an interface, also what each implementation declares for
 * it: the field resolves on the object type, and this check is the only one below the root fields
 * (src/graphql/builder.ts), so an implementation's stricter scopes must not hide behind its interface.
 */
export function selectionRequirements(
  schema: GraphQLSchema,
  parent: GraphQLObjectType | GraphQLInterfaceType,
  field: GraphQLField<unknown, unknown>,
): ScopeRequirement[] {
  const requirements = fieldRequirements(parent, field);
  if (!isInterfaceType(parent)) return requirements;
  for (const type of schema.getPossibleTypes(parent)) {
    const implemented = type.getFields()[field.name];
    if (implemented) requirements.push(...fieldRequirements(type, implemented));
  }
  return requirements;
}

/** The first requirement `held` does not satisfy, or null when the field is allowed. */
export function unmetRequirement(
  requirements: readonly ScopeRequirement[],
  held: ReadonlySet<Scope>,
): ScopeRequirement | null {
  return requirements.find((r) => !r.scopes.some((s) => held.has(s))) ?? null;
}

/** Fragments the operation spreads, directly or through other fragments. */
function usedFragments(document: DocumentNode, root: DocumentNode['definitions'][number]) {
  const byName = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) byName.set(d.name.value, d);
  const used = new Map<string, FragmentDefinitionNode>();
  const pending = [root];
  while (pending.length) {
    visit(pending.pop()!, {
      FragmentSpread(node) {
        const fragment = byName.get(node.name.value);
        if (fragment && !used.has(fragment.name.value)) {
          used.set(fragment.name.value, fragment);
          pending.push(fragment);
        }
      },
    });
  }
  return [...used.values()];
}

/**
 * One FORBIDDEN error per declaration the operation's selections fail (a type refused once, however
 * many of its fields are selected; nothing reported below a refused field), in document order; empty
 * when the operation is allowed. Every selected field counts, including those under @skip/@include
 * and in the fragments the operation spreads.
 */
export function forbiddenSelections(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  held: ReadonlySet<Scope>,
): ForbiddenError[] {
  const operation = getOperationAST(document, operationName);
  if (!operation) return [];
  const refused = new Map<string, { requirement: ScopeRequirement; nodes: FieldNode[] }>();
  const typeInfo = new TypeInfo(schema);
  const visitor = visitWithTypeInfo(typeInfo, {
    Field(node) {
      const parent = typeInfo.getParentType();
      const field = typeInfo.getFieldDef();
      // __typename names a type the schema publishes anyway; unknown fields fail validation, not here.
      if (!parent || !field || node.name.value.startsWith('__')) return;
      if (!isObjectType(parent) && !isInterfaceType(parent)) return;
      const unmet = unmetRequirement(selectionRequirements(schema, parent, field), held);
      if (!unmet) return;
      const seen = refused.get(unmet.declaredOn);
      if (seen) seen.nodes.push(node);
      else refused.set(unmet.declaredOn, { requirement: unmet, nodes: [node] });
      // What lies below a refused field is never reached: one error says enough.
      return false;
    },
  });
  for (const node of [operation, ...usedFragments(document, operation)]) visit(node, visitor);
  return [...refused.values()].map(
    ({ requirement, nodes }) => new ForbiddenError(requirement.declaredOn, requirement.scopes, held, nodes),
  );
}

/**
 * Refuses an operation with any selection the caller's scopes do not open, before it executes: HTTP
 * 403, `data: null`, nothing written. Results are cached per parsed document (yoga reuses the parsed
 * document of a repeated query) and set of scopes, so the hot path walks each query once.
 */
export function useOperationScopes(): Plugin<GraphQLContext> {
  const cache = new WeakMap<DocumentNode, Map<string, ForbiddenError[]>>();
  const refusals = (args: {
    contextValue: GraphQLContext;
    document: DocumentNode;
    operationName?: string | null;
    schema: GraphQLSchema;
  }): ForbiddenError[] => {
    const held = args.contextValue.auth.scopes;
    const key = `${args.operationName ?? ''}\u0000${[...held].sort().join(',')}`;
    let byKey = cache.get(args.document);
    if (!byKey) {
      byKey = new Map();
      cache.set(args.document, byKey);
    }
    let errors = byKey.get(key);
    if (!errors) {
      errors = forbiddenSelections(args.schema, args.document, args.operationName, held);
      byKey.set(key, errors);
    }
    return errors;
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const errors = refusals(args);
      if (errors.length) setResultAndStopExecution({ data: null, errors });
    },
    // Subscriptions are checked the same way before their first event.
    onSubscribe({ args, setResultAndStopExecution }) {
      const errors = refusals(args);
      if (errors.length) setResultAndStopExecution({ data: null, errors });
    },
  };
}
