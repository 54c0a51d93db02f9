/** SQL for API keys. */
import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { apiKeys } from '../db/schema';

export type ApiKeyRow = typeof apiKeys.$inferSelect;
/** What may leave the database layer: never the hash. */
export type ApiKeyInfo = Omit<ApiKeyRow, 'keyHash'>;

const info = {
  id: apiKeys.id,
  name: apiKeys.name,
  prefix: apiKeys.prefix,
  scopes: apiKeys.scopes,
  createdAt: apiKeys.createdAt,
  lastUsedAt: apiKeys.lastUsedAt,
  revokedAt: apiKeys.revokedAt,
};

export async function insertApiKey(
  db: Db,
  params: { name: string; prefix: string; keyHash: string; scopes: string[] },
): Promise<ApiKeyInfo> {
  const [row] = await db.insert(apiKeys).values(params).returning(info);
  return row;
}

/** The active key with this hash, or null (unknown or revoked). */
export async function findActiveKeyByHash(db: Db, keyHash: string): Promise<ApiKeyInfo | null> {
  const [row] = await db
    .select(info)
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt)));
  return row ?? null;
}

export async function listApiKeys(db: Db, includeRevoked: boolean): Promise<ApiKeyInfo[]> {
  return db
    .select(info)
    .from(apiKeys)
    .where(includeRevoked ? undefined : isNull(apiKeys.revokedAt))
    .orderBy(asc(apiKeys.createdAt), asc(apiKeys.id));
}

export async function revokeApiKey(
  db: Db,
  ref: { id: string } | { name: string },
): Promise<ApiKeyInfo | null> {
  const [row] = await db
    .update(apiKeys)
    .set({ revokedAt: new Date() })
    .where(and('id' in ref ? eq(apiKeys.id, ref.id) : eq(apiKeys.name, ref.name), isNull(apiKeys.revokedAt)))
    .returning(info);
  return row ?? null;
}

export async function touchApiKey(db: Db, id: string): Promise<void> {
  await db.execute(sql`/* touchApiKey */ UPDATE api_keys SET last_used_at = now() WHERE id = ${id}`);
}
