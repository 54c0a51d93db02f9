/**
 * API key scopes: the one source for the database values, the GraphQL enum and the schema's auth rules.
 * read: dashboards (queries). assign: client services (assignVariant, record*). write: experiment and
 * variant management. admin: API keys. A scope implies the ones listed with it, so a management UI with
 * `write` can also read, and an `admin` key can do everything.
 */
export const SCOPES = ['read', 'assign', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

const IMPLIES: Record<Scope, readonly Scope[]> = {
  read: ['read'],
  assign: ['assign'],
  write: ['write', 'read'],
  admin: ['admin', 'write', 'assign', 'read'],
};

export function effectiveScopes(granted: readonly string[]): Set<Scope> {
  const result = new Set<Scope>();
  for (const scope of granted) {
    if ((SCOPES as readonly string[]).includes(scope)) for (const s of IMPLIES[scope as Scope]) result.add(s);
  }
  return result;
}
