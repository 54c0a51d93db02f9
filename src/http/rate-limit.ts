/**
 * Token-bucket-style rate limiting per API key (per client address without a key): a steady refill per
 * second plus a burst allowance (rate-limiter-flexible's BurstyRateLimiter). In-process by default;
 * Redis-backed when REDIS_URL is set so several instances share one budget.
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
  consume(key: string): Promise<void>;
  close(): Promise<void>;
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

export async function createRateLimiter(config: SecurityConfig): Promise<RateLimiter | null> {
  if (config.rateLimitPerSecond <= 0) return null;
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
  const limiter = new BurstyRateLimiter(
    make('sona_rl', config.rateLimitPerSecond, 1),
    make('sona_rl_burst', Math.max(0, config.rateLimitBurst - config.rateLimitPerSecond), 10),
  );
  return {
    async consume(key: string) {
      try {
        await limiter.consume(key);
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) return; // Redis unreachable: availability over strictness
        throw new RateLimitedError(Math.max(1, Math.ceil(err.msBeforeNext / 1000)));
      }
    },
    async close() {
      redis?.disconnect();
    },
  };
}
