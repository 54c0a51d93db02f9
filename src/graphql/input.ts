/**
 * GraphQL input types and arguments whose shape is a service's zod input. The zod schema is the one
 * definition of the rules (limits, patterns, defaults, what null means); the GraphQL side names the fields
 * and describes them, and the compiler checks it against the schema's input type:
 *
 *   builder.inputRef<VariantInput, false>('VariantInput').implement({
 *     fields: (t) => ({ … }) satisfies InputFieldsOf<VariantInput>,
 *   });
 *
 * A field missing, extra, or of another type or nullability than the service accepts fails the typecheck,
 * so resolvers hand arguments to the service as they are.
 */
import type { ArgumentRef, InputFieldRef } from '@pothos/core';
import type { builder } from './builder';

/** The builder's type parameters, for helpers that take a Pothos field builder. */
export type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

/** One Pothos input field per key of Shape (optional keys included), each of exactly its type. */
export type InputFieldsOf<Shape> = { [K in keyof Shape]-?: InputFieldRef<Types, Shape[K]> };

/** One Pothos argument per key of Shape (optional keys included), each of exactly its type. */
export type ArgsOf<Shape> = { [K in keyof Shape]-?: ArgumentRef<Types, Shape[K]> };
