/**
 * The one Pothos builder: plugins, scalars and root types. It defines no domain type; each domain
 * registers its own in its graphql.ts, and src/graphql/schema.ts is the only file that calls toSchema().
 */
import SchemaBuilder, { type PothosOutputFieldConfig, type SchemaTypes } from '@pothos/core';
import ComplexityPlugin, { type ComplexityResult, PothosComplexityPlugin } from '@pothos/plugin-complexity';
import ErrorsPlugin from '@pothos/plugin-errors';
import ScopeAuthPlugin, { PothosScopeAuthPlugin } from '@pothos/plugin-scope-auth';
import { type GraphQLFieldResolver, GraphQLError, type OperationDefinitionNode } from 'graphql';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import { ForbiddenError, fieldRequirements, unmetRequirement } from '../auth/operation-scopes';
import type { Scope } from '../auth/scopes';
import { LIMITS } from '../config';
import type { GraphQLContext } from './context';

const ROOT_KINDS = new Set(['Query', 'Mutation', 'Subscription']);

/**
 * Pothos's scope checks while resolving, kept on the root fields (Query, Mutation, Subscription: a few
 * per request) and left off the fields below them. Every selection below a root field was already
 * checked against the same declarations before anything ran (useOperationScopes, which refuses the whole
 * operation, and reads only static declarations, so its check is complete); checking again per field of
 * every object cost a wrapper call per field (0.5-1 ms of CPU on a 50-experiment page) and stopped
 * graphql-jit from reading a plain property directly.
 */
class RootFieldScopeAuthPlugin<Types extends SchemaTypes> extends PothosScopeAuthPlugin<Types> {
  override wrapResolve(
    resolver: GraphQLFieldResolver<unknown, Types['Context'], object>,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> {
    return ROOT_KINDS.has(fieldConfig.kind) ? super.wrapResolve(resolver, fieldConfig) : resolver;
  }
}

/** Variable sets remembered per operation before they are forgotten all at once (a key per request, say). */
const COMPLEXITY_VARIABLE_SETS = 256;
/** Longer variable keys are not remembered: costed per request, as before. */
const COMPLEXITY_KEY_MAX_CHARS = 1024;

/**
 * The variables as a cache key when every one is a primitive and the key stays short; null otherwise.
 * Objects and lists (mutation inputs, possibly large or deeply nested) are never serialised for it.
 */
function variablesKey(values: Record<string, unknown>): string | null {
  let key = '';
  for (const name in values) {
    const value = values[name];
    if (value !== null && typeof value === 'object') return null;
    key += `${name}=${JSON.stringify(value)},`;
    if (key.length > COMPLEXITY_KEY_MAX_CHARS) return null;
  }
  return key;
}

/**
 * Pothos's complexity limits, with each operation's complexity kept per parsed operation and variables
 * rather than per request: it depends on nothing else (the complexity options take the arguments only,
 * checked below, and the limit is a constant), and yoga hands a repeated query the same parsed document.
 * Walking the selection again on every request cost ~1.5 % of a 50-experiment page's CPU.
 */
class DocumentComplexityPlugin<Types extends SchemaTypes> extends PothosComplexityPlugin<Types> {
  constructor(...args: ConstructorParameters<typeof PothosComplexityPlugin<Types>>) {
    super(...args);
    const perRequest = this.complexityCache;
    const byOperation = new WeakMap<OperationDefinitionNode, Map<string, ComplexityResult>>();
    this.complexityCache = Object.assign(
      (ctx: Types['Context'], info: Parameters<typeof perRequest>[1]) => {
        const variables = variablesKey(info.variableValues);
        if (variables === null) return perRequest(ctx, info);
        let known = byOperation.get(info.operation);
        if (!known) {
          known = new Map();
          byOperation.set(info.operation, known);
        }
        let result = known.get(variables);
        if (!result) {
          result = perRequest(ctx, info);
          if (known.size >= COMPLEXITY_VARIABLE_SETS) known.clear();
          known.set(variables, result);
        }
        return result;
      },
      { delete: perRequest.delete },
    );
  }

  override onOutputFieldConfig(fieldConfig: PothosOutputFieldConfig<Types>) {
    const option = (fieldConfig.pothosOptions as { complexity?: unknown }).complexity;
    // A complexity that read the context (its second parameter) could differ between two requests of
    // the same operation and variables, which the cache above would not see.
    if (typeof option === 'function' && option.length > 1)
      throw new TypeError(
        `${fieldConfig.parentType}.${fieldConfig.name}: a complexity function may read its arguments only`,
      );
    return super.onOutputFieldConfig(fieldConfig);
  }
}

SchemaBuilder.allowPluginReRegistration = true;
SchemaBuilder.registerPlugin(ScopeAuthPlugin, RootFieldScopeAuthPlugin);
SchemaBuilder.registerPlugin(ComplexityPlugin, DocumentComplexityPlugin);
SchemaBuilder.allowPluginReRegistration = false;

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: Record<Scope, boolean>;
  Scalars: {
    // graphql-js hands every ID argument over as a string (it converts Int literals), so inputs can say so.
    ID: { Input: string; Output: string | number };
    DateTime: { Input: Date; Output: Date | string };
    // Any JSON value but null (a null argument or field is GraphQL's null, not a JSON value).
    JSON: { Input: NonNullable<unknown>; Output: unknown };
  };
  DefaultFieldNullability: false;
}>({
  // Scope checks wrap root resolvers first, so a forbidden call is refused before any error handling or SQL.
  plugins: [ScopeAuthPlugin, ErrorsPlugin, ComplexityPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: (ctx) => ({
      read: ctx.auth.scopes.has('read'),
      assign: ctx.auth.scopes.has('assign'),
      write: ctx.auth.scopes.has('write'),
      admin: ctx.auth.scopes.has('admin'),
    }),
    // Only reached when an operation was not checked as a whole first (useOperationScopes refuses those).
    unauthorizedError: (_parent, ctx, info) => {
      const field = info.parentType.getFields()[info.fieldName];
      const unmet = unmetRequirement(fieldRequirements(info.parentType, field), ctx.auth.scopes);
      return new ForbiddenError(
        unmet?.declaredOn ?? `${info.parentType.name}.${info.fieldName}`,
        unmet?.scopes ?? [],
        ctx.auth.scopes,
      );
    },
  },
  errors: {
    // Success types are the object itself (`... on Experiment`), not a wrapper with a `data` field.
    directResult: true,
    defaultUnionOptions: {
      name: ({ fieldName }) => `${fieldName.charAt(0).toUpperCase()}${fieldName.slice(1)}Result`,
      description:
        'The outcome of a mutation: its success type, or one of the expected errors listed in this union (all implement `Error`; nothing was written). Select `__typename`, the success fields and `... on Error { code message }`.',
    },
  },
  complexity: {
    defaultComplexity: 1,
    defaultListMultiplier: 10,
    limit: {
      complexity: LIMITS.maxComplexity,
      depth: LIMITS.maxDepth + 2,
      breadth: LIMITS.maxBreadth,
    },
    complexityError: (kind, result) => {
      const key = kind.toLowerCase() as 'complexity' | 'depth' | 'breadth';
      const max = result[`max${kind}` as 'maxComplexity'];
      return new GraphQLError(
        `Query too ${key === 'complexity' ? 'expensive' : key === 'depth' ? 'deep' : 'wide'}: ${key} ${result[key]} exceeds the limit of ${max}`,
        {
          extensions: { code: 'QUERY_TOO_COMPLEX', http: { status: 400 } },
        },
      );
    },
  },
});

builder.addScalarType('DateTime', DateTimeResolver, {
  description: 'A date-time in ISO 8601 / RFC 3339 form with a time zone, e.g. `2026-11-24T09:30:00.000Z`.',
});
builder.addScalarType('JSON', JSONResolver, {
  description: 'Any JSON value. Variant configs and event metadata must be JSON objects.',
});

builder.queryType({
  description: 'Read-only entry points for dashboards and client services.',
});
builder.mutationType({
  description: 'Experiment management, assignment and event recording.',
});
builder.subscriptionType({
  description:
    'Live results over Server-Sent Events (graphql-sse protocol): POST or GET /graphql with `Accept: text/event-stream`.',
});
