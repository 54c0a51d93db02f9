/**
 * Checked by `npm run typecheck`, never run: a GraphQL input type that drifts from its service's zod
 * schema does not compile (src/ writes each input type's fields `satisfies InputFieldsOf<…>`, each
 * argument set `satisfies ArgsOf<…>`). Every `@ts-expect-error` below is a drift the compiler must catch;
 * should one ever compile, tsc reports the unused directive and the typecheck fails.
 */
import type { ArgBuilder } from '@pothos/core';
import type { AssignmentArgs } from '../../src/assignments/service';
import type { VariantInput } from '../../src/experiments/service';
import type { ArgsOf, InputFieldsOf, Types } from '../../src/graphql/input';

export function driftsThatDoNotCompile(
  t: PothosSchemaTypes.InputFieldBuilder<Types, 'InputObject'>,
  arg: ArgBuilder<Types>,
) {
  const matching = {
    name: t.string({ required: true }),
    weight: t.float({ required: false }),
    config: t.field({ type: 'JSON', required: false }),
    isControl: t.boolean({ required: false }),
  } satisfies InputFieldsOf<VariantInput>;

  const wrongType = {
    ...matching,
    // @ts-expect-error the service reads weight as a number
    weight: t.string({ required: false }),
  } satisfies InputFieldsOf<VariantInput>;

  const optionalThatIsRequired = {
    ...matching,
    // @ts-expect-error the service requires a name: GraphQL must not make it optional
    name: t.string({ required: false }),
  } satisfies InputFieldsOf<VariantInput>;

  const { isControl: _dropped, ...withoutIsControl } = matching;
  // @ts-expect-error isControl exists in the service but not in GraphQL
  const missing = withoutIsControl satisfies InputFieldsOf<VariantInput>;

  const extra = {
    ...matching,
    // @ts-expect-error the service knows no position
    position: t.int({ required: false }),
  } satisfies InputFieldsOf<VariantInput>;

  const args = {
    experimentKey: arg.string({ required: true }),
    // @ts-expect-error the service requires userId
    userId: arg.string({ required: false }),
  } satisfies ArgsOf<AssignmentArgs>;

  return [matching, wrongType, optionalThatIsRequired, missing, extra, args];
}
