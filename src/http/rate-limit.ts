/**
 * Token-bucket-style rate limiting per API key (per client address without a key): a steady refill per
 * second plus a burst allowance (rate-limiter-flexible's BurstyRateLimiter). In-process by default;
 * Redis-backed when REDIS_URL is set so several instances share one budget.
 */
import { GraphQLError } from 'graphql';
import {
  BurstyRateLimiter,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { SecurityConfig } from '../config';

export interface RateLimiter {
  consume(key: string): Promise<void>;
  close(): Promise<void>;
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
        const retryAfter = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
        throw new GraphQLError(`Rate limit exceeded; retry in ${retryAfter} s`, {
          extensions: {
            code: 'RATE_LIMITED',
            retryAfterSeconds: retryAfter,
            http: { status: 429, headers: { 'retry-after': String(retryAfter) } },
          },
        });
      }
    },
    async close() {
      redis?.disconnect();
    },
  };
}
