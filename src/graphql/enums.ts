/**
 * GraphQL enum values from one of our const tuples, each with its description. The tuple stays the one
 * source of the names; GraphQL spells them in upper case (`draft` → `DRAFT`), the value stays ours.
 */
export function enumValues<T extends string>(names: readonly T[], descriptions: Record<T, string>) {
  return Object.fromEntries(
    names.map((n) => [n.toUpperCase(), { value: n, description: descriptions[n] }]),
  ) as Record<Uppercase<T>, { value: T; description: string }>;
}
