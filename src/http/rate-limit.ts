/**
 * Token-bucket-style rate limiting per API key (per client address without a key): a steady refill per
 * second plus a burst allowance (rate-limiter-flexible's BurstyRateLimiter). Separately, a budget of
 * failed authentications per client address, which the authenticator consults before it hashes and
 * looks up a key it does not know. In-process by default; Redis-backed when REDIS_URL is set so
 * several instances share one budget.
 */
import {
  BurstyRateLimiter,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import { RateLimitedError } from '../common/errors';
import type { SecurityConfig } from '../config';

export interface RateLimiter {
  /** Takes one request from the key's budget; RATE_LIMITED once it is spent. */
  consume(key: string): Promise<void>;
  /** Failed authentications per client address; null when AUTH_FAILURES_PER_MINUTE is 0. */
  authFailures: AuthFailureLimiter | null;
  close(): Promise<void>;
}

export interface AuthFailureLimiter {
  /** RATE_LIMITED while the address has used up its failed authentications of the current minute. */
  check(address: string): Promise<void>;
  /** Counts one failed authentication of the address. */
  fail(address: string): Promise<void>;
}

/** The 429 every limit answers with, and how long to wait (whole seconds, at least 1). */
export function rateLimited(reason: string, msBeforeNext: number): RateLimitedError {
  return new RateLimitedError(Math.max(1, Math.ceil(msBeforeNext / 1000)), reason);
}

const REDIS_READY_TIMEOUT_MS = 2000;

/** Resolves when the client is ready or after timeoutMs, whichever comes first. */
async function ready(redis: import('ioredis').Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
    redis.once('ready', () => resolve());
  });
  clearTimeout(timer);
}

/** Null when both limits are off (RATE_LIMIT_PER_SECOND and AUTH_FAILURES_PER_MINUTE both 0). */
export async function createRateLimiter(
  config: SecurityConfig,
  /** Told of every refusal (metrics), by limit. */
  onRefused?: (limit: 'requests' | 'auth_failures') => void,
): Promise<RateLimiter | null> {
  if (config.rateLimitPerSecond <= 0 && config.authFailuresPerMinute <= 0) return null;
  let redis: import('ioredis').Redis | null = null;
  const make = (keyPrefix: string, points: number, duration: number): RateLimiterAbstract =>
    redis
      ? new RateLimiterRedis({
          storeClient: redis,
          keyPrefix,
          points,
          duration,
          rejectIfRedisNotReady: false,
        })
      : new RateLimiterMemory({ keyPrefix, points, duration });
  if (config.redisUrl) {
    const { Redis } = await import('ioredis');
    redis = new Redis(config.redisUrl, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: false,
    });
    redis.on('error', () => {}); // reconnects by itself; limits fall back to allowing (see below)
    // Without the offline queue, commands fail until connected, which would let every request of the
    // first moments through: wait (briefly) for the connection.
    await ready(redis, REDIS_READY_TIMEOUT_MS);
  }
  const limiter =
    config.rateLimitPerSecond > 0
      ? new BurstyRateLimiter(
          make('sona_rl', config.rateLimitPerSecond, 1),
          make('sona_rl_burst', Math.max(0, config.rateLimitBurst - config.rateLimitPerSecond), 10),
        )
      : null;
  const failures =
    config.authFailuresPerMinute > 0 ? make('sona_auth_fail', config.authFailuresPerMinute, 60) : null;
  return {
    async consume(key: string) {
      try {
        await limiter?.consume(key);
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) return; // Redis unreachable: availability over strictness
        onRefused?.('requests');
        throw rateLimited('Rate limit exceeded', err.msBeforeNext);
      }
    },
    authFailures: failures && {
      async check(address) {
        // Redis unreachable: allow, as above.
        const used = await failures.get(address).catch(() => null);
        if (used && used.consumedPoints >= config.authFailuresPerMinute) {
          onRefused?.('auth_failures');
          throw rateLimited('Too many failed authentications from this address', used.msBeforeNext);
        }
      },
      async fail(address) {
        await failures.penalty(address, 1).catch(() => {});
      },
    },
    async close() {
      redis?.disconnect();
    },
  };
}
