/**
 * The one Pothos builder: plugins, scalars and root types. It defines no domain type; each domain
 * registers its own in its graphql.ts, and src/graphql/schema.ts is the only file that calls toSchema().
 */
import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type { GraphQLContext } from './context';

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
  };
  DefaultFieldNullability: false;
}>({
  plugins: [ErrorsPlugin],
  defaultFieldNullability: false,
  errors: {
    // Success types are the object itself (`... on Experiment`), not a wrapper with a `data` field.
    directResult: true,
    defaultUnionOptions: {
      name: ({ fieldName }) => `${fieldName.charAt(0).toUpperCase()}${fieldName.slice(1)}Result`,
      description:
        'The outcome of a mutation: its success type, or one of the expected errors listed in this union (all implement `Error`; nothing was written). Select `__typename`, the success fields and `... on Error { code message }`.',
    },
  },
});

builder.addScalarType('DateTime', DateTimeResolver, {
  description: 'A date-time in ISO 8601 / RFC 3339 form with a time zone, e.g. `2026-11-24T09:30:00.000Z`.',
});
builder.addScalarType('JSON', JSONResolver, {
  description: 'Any JSON value. Variant configs and event metadata must be JSON objects.',
});

builder.queryType({ description: 'Read-only entry points for dashboards and client services.' });
builder.mutationType({ description: 'Experiment management, assignment and event recording.' });
