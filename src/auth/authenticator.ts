/**
 * Turns an `Authorization: Bearer <key>` header into a principal (key name and scopes). Verified keys are
 * cached briefly so the assignment hot path does not read api_keys on every request; a revocation
 * NOTIFYs every instance, which drops its cache at once.
 */
import { UnauthenticatedError } from '../common/errors';
import type { DatabaseHandle, Db } from '../db/client';
import { findActiveKeyByHash, touchApiKey } from './repository';
import { type Scope, SCOPES, effectiveScopes } from './scopes';
import { API_KEY_CHANGED_CHANNEL, hashKey } from './service';

export interface Principal {
  keyId: string | null;
  /** Audit actor: the key's name, or "anonymous" when auth is off. */
  name: string;
  scopes: Set<Scope>;
}

const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 10_000;
const TOUCH_EVERY_MS = 60_000;

export function unauthenticated(message: string): UnauthenticatedError {
  return new UnauthenticatedError(message);
}

export class Authenticator {
  private cache = new Map<string, { principal: Principal; expires: number }>();
  private touched = new Map<string, number>();
  private unlisten: (() => Promise<void>) | null = null;

  constructor(
    private readonly db: Db,
    /** When false (embedded exploration), requests without a key act as "anonymous" with every scope. */
    readonly required: boolean,
  ) {}

  async start(handle: DatabaseHandle): Promise<void> {
    this.unlisten = await handle.listen(API_KEY_CHANGED_CHANNEL, () => this.cache.clear());
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
  }

  async authenticate(header: string | null): Promise<Principal> {
    if (!header) {
      if (this.required) throw unauthenticated('Missing API key: send "Authorization: Bearer <key>"');
      return { keyId: null, name: 'anonymous', scopes: new Set(SCOPES) };
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthenticated('Malformed Authorization header: expected "Bearer <key>"');
    const hash = hashKey(match[1]);
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.expires > now) {
      this.touch(cached.principal.keyId!, now);
      return cached.principal;
    }
    const row = await findActiveKeyByHash(this.db, hash);
    if (!row) throw unauthenticated('Invalid or revoked API key');
    const principal: Principal = { keyId: row.id, name: row.name, scopes: effectiveScopes(row.scopes) };
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(hash, { principal, expires: now + CACHE_TTL_MS });
    this.touch(row.id, now);
    return principal;
  }

  /** Records last use at most once a minute per key, off the request path. */
  private touch(keyId: string, now: number) {
    if ((this.touched.get(keyId) ?? 0) + TOUCH_EVERY_MS > now) return;
    this.touched.set(keyId, now);
    touchApiKey(this.db, keyId).catch(() => this.touched.delete(keyId));
  }
}
