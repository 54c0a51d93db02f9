/**
 * What a query selects below a field, read from the operation before its children resolve, so a root
 * resolver can fetch a nested selection in one statement and hand the rows to the per-request loaders.
 * Deliberately conservative: fragments are followed whatever their type condition and @skip/@include
 * are ignored, so a plan may fetch a little more than is finally needed, never less (what it misses, the
 * loaders still fetch, batched).
 */
import {
  type FieldNode,
  getArgumentValues,
  type GraphQLField,
  type GraphQLResolveInfo,
  type SelectionSetNode,
} from 'graphql';

/** Calls `each` with every field selected directly in these selection sets (through any fragment). */
function forEachChildField(
  info: GraphQLResolveInfo,
  parents: readonly FieldNode[],
  each: (field: FieldNode) => void,
): void {
  const visit = (set: SelectionSetNode | undefined, seen: Set<string>) => {
    if (!set) return;
    for (const selection of set.selections) {
      if (selection.kind === 'Field') each(selection);
      else if (selection.kind === 'InlineFragment') visit(selection.selectionSet, seen);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        visit(info.fragments[selection.name.value]?.selectionSet, seen);
      }
    }
  };
  for (const parent of parents) visit(parent.selectionSet, new Set());
}

/** The field nodes that select `name` directly in these selection sets (through any fragment). */
export function childFields(
  info: GraphQLResolveInfo,
  parents: readonly FieldNode[],
  name: string,
): FieldNode[] {
  const found: FieldNode[] = [];
  forEachChildField(info, parents, (field) => {
    if (field.name.value === name) found.push(field);
  });
  return found;
}

/** The names of the fields selected directly in these selection sets (through any fragment). */
export function childFieldNames(info: GraphQLResolveInfo, parents: readonly FieldNode[]): Set<string> {
  const names = new Set<string>();
  forEachChildField(info, parents, (field) => names.add(field.name.value));
  return names;
}

/** The field nodes at the end of a path of field names below these nodes. */
export function fieldsAt(
  info: GraphQLResolveInfo,
  parents: readonly FieldNode[],
  ...path: string[]
): FieldNode[] {
  let nodes: readonly FieldNode[] = parents;
  for (const name of path) nodes = childFields(info, nodes, name);
  return [...nodes];
}

/** A field node's arguments with variables and defaults applied, as graphql-js would hand its resolver. */
export function argumentsOf(
  info: GraphQLResolveInfo,
  field: GraphQLField<unknown, unknown>,
  node: FieldNode,
): Record<string, unknown> {
  return getArgumentValues(field, node, info.variableValues);
}
