/**
 * Turns an `Authorization: Bearer <key>` header into a principal (key name and scopes). Verified keys are
 * cached briefly so the assignment hot path does not read api_keys on every request; a revocation
 * NOTIFYs every instance, which drops its cache at once (and again whenever its LISTEN reconnects,
 * since a notification sent meanwhile is lost; the time to live bounds any other miss). Unknown keys
 * are remembered as briefly, and a client address that fails authentication too often is refused
 * before its keys are even hashed.
 */
import { UnauthenticatedError } from '../common/errors';
import type { DatabaseHandle, Db } from '../db/client';
import type { AuthFailureLimiter } from '../http/rate-limit';
import { findActiveKeyByHash, touchApiKey } from './repository';
import { type Scope, SCOPES, effectiveScopes } from './scopes';
import { API_KEY_CHANGED_CHANNEL, hashKey } from './service';

export interface Principal {
  keyId: string | null;
  /** Audit actor: the key's name, or "anonymous" when auth is off. */
  name: string;
  scopes: Set<Scope>;
}

export interface AuthenticatorOptions {
  /** Longest a verified (or unknown) key is trusted without reading it again; 0: always read. */
  cacheTtlMs?: number;
  /** Counts failed authentications per client address; without it nothing is counted. */
  failures?: AuthFailureLimiter | null;
}

/** Default of CACHE_TTL_MS (src/config.ts). */
export const DEFAULT_KEY_CACHE_TTL_MS = 5000;
const CACHE_MAX = 10_000;
const TOUCH_EVERY_MS = 60_000;

export function unauthenticated(message: string): UnauthenticatedError {
  return new UnauthenticatedError(message);
}

export class Authenticator {
  private cache = new Map<string, { principal: Principal; expires: number }>();
  /** Hashes of keys that are unknown or revoked, so a repeated bad key costs no lookup. */
  private refused = new Map<string, number>();
  private touched = new Map<string, number>();
  private unlisten: (() => Promise<void>) | null = null;
  private readonly ttlMs: number;
  private readonly failures: AuthFailureLimiter | null;

  constructor(
    private readonly db: Db,
    /** When false (embedded exploration), requests without a key act as "anonymous" with every scope. */
    readonly required: boolean,
    options: AuthenticatorOptions = {},
  ) {
    this.ttlMs = options.cacheTtlMs ?? DEFAULT_KEY_CACHE_TTL_MS;
    this.failures = options.failures ?? null;
  }

  async start(handle: DatabaseHandle): Promise<void> {
    this.unlisten = await handle.listen(
      API_KEY_CHANGED_CHANNEL,
      () => this.forget(),
      () => this.forget(),
    );
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
  }

  /** Drops every cached verdict: a key changed, or a change may have gone unnoticed. */
  forget(): void {
    this.cache.clear();
    this.refused.clear();
  }

  /**
   * The principal of an Authorization header. `clientAddress` is where the request came from; every
   * failure counts against it, and an address over its budget gets RATE_LIMITED instead of a lookup.
   */
  async authenticate(header: string | null, clientAddress = 'unknown'): Promise<Principal> {
    if (!header) {
      if (this.required) {
        return this.refuse(clientAddress, 'Missing API key: send "Authorization: Bearer <key>"');
      }
      return { keyId: null, name: 'anonymous', scopes: new Set(SCOPES) };
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return this.refuse(clientAddress, 'Malformed Authorization header: expected "Bearer <key>"');
    const hash = hashKey(match[1]);
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.expires > now) {
      this.touch(cached.principal.keyId!, now);
      return cached.principal;
    }
    if ((this.refused.get(hash) ?? 0) > now) return this.refuse(clientAddress, 'Invalid or revoked API key');
    await this.failures?.check(clientAddress);
    const row = await findActiveKeyByHash(this.db, hash);
    if (!row) {
      if (this.ttlMs > 0) {
        if (this.refused.size >= CACHE_MAX) this.refused.clear();
        this.refused.set(hash, now + this.ttlMs);
      }
      return this.refuse(clientAddress, 'Invalid or revoked API key', true);
    }
    const principal: Principal = { keyId: row.id, name: row.name, scopes: effectiveScopes(row.scopes) };
    if (this.ttlMs > 0) {
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(hash, { principal, expires: now + this.ttlMs });
    }
    this.touch(row.id, now);
    return principal;
  }

  /** A 401 that counts against the address, or a 429 once the address is over its budget. */
  private async refuse(clientAddress: string, message: string, checked = false): Promise<never> {
    if (this.failures) {
      if (!checked) await this.failures.check(clientAddress);
      await this.failures.fail(clientAddress);
    }
    throw unauthenticated(message);
  }

  /** Records last use at most once a minute per key, off the request path. */
  private touch(keyId: string, now: number) {
    if ((this.touched.get(keyId) ?? 0) + TOUCH_EVERY_MS > now) return;
    this.touched.set(keyId, now);
    touchApiKey(this.db, keyId).catch(() => this.touched.delete(keyId));
  }
}
