/**
 * API keys: created with ≥ 256 bits of randomness, shown once, stored as a SHA-256 hash; listed and
 * revoked by name or id. Every change is audited with the acting key's name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { ConflictError, NotFoundError, pgErrorCode } from '../common/errors';
import { parse, text, uuid } from '../common/validation';
import { LIMITS } from '../config';
import type { Database } from '../db/client';
import { insertAudit } from '../experiments/repository';
import * as repo from './repository';
import type { ApiKeyInfo } from './repository';
import { SCOPES } from './scopes';

export const KEY_PREFIX = 'sona_';
export const API_KEY_CHANGED_CHANNEL = 'sona_api_key_changed';

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const keyName = text('name', { min: 1, max: LIMITS.apiKeyNameMaxLength, trim: true }).regex(
  /^[\w.@ -]+$/,
  'name may contain letters, digits, spaces and _ . @ -',
);

/** createApiKey's input; GraphQL's CreateApiKeyInput is checked against it by the compiler. */
export const createApiKeyInput = z.object({
  name: keyName,
  // Any strings in (the CLI passes what it was given), scopes out.
  scopes: z
    .array(z.string().pipe(z.enum(SCOPES, { error: `scopes must be among ${SCOPES.join(', ')}` })))
    .min(1, 'at least one scope is needed'),
});
export type CreateApiKeyInput = z.input<typeof createApiKeyInput>;

export async function createApiKey(
  db: Database,
  actor: string,
  raw: CreateApiKeyInput,
): Promise<{ key: string; apiKey: ApiKeyInfo }> {
  const input = parse(createApiKeyInput, raw, ['input']);
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  try {
    const apiKey = await db.transaction(async (tx) => {
      const row = await repo.insertApiKey(tx, {
        name: input.name,
        prefix: key.slice(0, KEY_PREFIX.length + 6),
        keyHash: hashKey(key),
        scopes: [...new Set(input.scopes)],
      });
      await insertAudit(tx, {
        actor,
        action: 'api_key.created',
        entityType: 'api_key',
        entityId: row.id,
        details: { name: row.name, scopes: row.scopes },
      });
      return row;
    });
    return { key, apiKey };
  } catch (err) {
    if (pgErrorCode(err) === '23505')
      throw new ConflictError(`An active API key named "${input.name}" already exists`, 'name');
    throw err;
  }
}

export async function revokeApiKey(
  db: Database,
  actor: string,
  ref: { id: string } | { name: string },
): Promise<ApiKeyInfo> {
  if ('id' in ref) parse(uuid('id'), ref.id, ['id']);
  else parse(keyName, ref.name, ['name']);
  return db.transaction(async (tx) => {
    const row = await repo.revokeApiKey(tx, ref);
    if (!row) throw new NotFoundError('API key', 'id' in ref ? ref.id : ref.name);
    await insertAudit(tx, {
      actor,
      action: 'api_key.revoked',
      entityType: 'api_key',
      entityId: row.id,
      details: { name: row.name },
    });
    // Other instances drop their cached copy of this key when the revocation commits.
    await tx.execute(sqlNotify(row.id));
    return row;
  });
}

function sqlNotify(id: string) {
  return sql`/* notifyApiKeyChanged */ SELECT pg_notify(${API_KEY_CHANGED_CHANNEL}, ${id})`;
}

export { listApiKeys } from './repository';
