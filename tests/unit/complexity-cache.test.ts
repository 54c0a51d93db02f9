/**
 * The complexity limits keep each operation's cost per parsed operation and variables
 * (src/graphql/builder.ts), which is only right while no field's cost reads the request's context: the
 * schema refuses such a field when it is built.
 */
import { describe, expect, it } from '@jest/globals';
import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
// Registers the project's complexity plugin in place of Pothos's own.
import '../../src/graphql/builder';

type Context = { weight: number };

function schemaWithComplexity(complexity: (args: object, ctx: Context) => number) {
  // Only the complexity plugin: the other plugins' options (declared globally) are not needed here.
  const options = { plugins: [ComplexityPlugin] } as ConstructorParameters<
    typeof SchemaBuilder<{ Context: Context }>
  >[0];
  const builder = new SchemaBuilder<{ Context: Context }>(options);
  builder.queryType({
    fields: (t) => ({ items: t.stringList({ complexity, resolve: () => [] }) }),
  });
  return builder.toSchema();
}

describe('complexity options', () => {
  it('may read the field arguments', () => {
    expect(() => schemaWithComplexity((_args) => 2)).not.toThrow();
  });

  it('may not read the context (a cost kept per operation would ignore it)', () => {
    expect(() => schemaWithComplexity((_args, ctx) => ctx.weight)).toThrow(
      /Query\.items: a complexity function may read its arguments only/,
    );
  });
});
