/**
 * GraphQL gives omitted optional input fields as null; services read "absent" as "leave unchanged" and
 * null as "clear". Drops the nulls except for fields that can really be cleared.
 */
export function withoutNulls<T extends Record<string, unknown>>(
  input: T,
  clearable: readonly string[] = [],
): T {
  return Object.fromEntries(
    Object.entries(input).filter(([k, v]) => v !== null || clearable.includes(k)),
  ) as T;
}
