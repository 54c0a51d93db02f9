/**
 * One place for configuration and limits. Everything tunable is read from the environment here and
 * nowhere else, so the README's configuration table can be checked against this file.
 */
import path from 'node:path';

export const LIMITS = {
  /** Relay connections: largest `first`. */
  maxPageSize: 100,
  defaultPageSize: 20,
  /** recordEvents: largest batch. */
  maxBatchSize: 1000,
  keyMaxLength: 128,
  nameMaxLength: 255,
  descriptionMaxLength: 10_000,
  hashSeedMaxLength: 256,
  userIdMaxLength: 256,
  metricNameMaxLength: 128,
  /** Variant config and event metadata, serialised JSON bytes. */
  configMaxBytes: 64 * 1024,
  metadataMaxBytes: 16 * 1024,
  maxVariants: 20,
  auditLogMaxPage: 100,
} as const;

/** The slug rule for experiment keys and metric names. */
export const SLUG_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,127}$/;

function int(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

export type DatabaseConfig =
  | {
      driver: 'postgres';
      url: string;
      poolSize: number;
      statementTimeoutMs: number;
      connectTimeoutSeconds: number;
    }
  | { driver: 'pglite'; dataDir: string };

export interface AppConfig {
  port: number;
  host: string;
  database: DatabaseConfig;
  /** Seed a brand-new embedded database on start (the bare-machine experience). */
  seedOnFirstStart: boolean;
  logLevel: string;
  production: boolean;
}

export function databaseConfigFromEnv(env: NodeJS.ProcessEnv = process.env): DatabaseConfig {
  if (env.DATABASE_URL) {
    return {
      driver: 'postgres',
      url: env.DATABASE_URL,
      poolSize: int('DB_POOL_SIZE', 10),
      statementTimeoutMs: int('DB_STATEMENT_TIMEOUT_MS', 10_000),
      connectTimeoutSeconds: int('DB_CONNECT_TIMEOUT_SECONDS', 10),
    };
  }
  const dir = env.PGLITE_DIR || '.data/pglite';
  return { driver: 'pglite', dataDir: dir.startsWith('memory://') ? dir : path.resolve(dir) };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  return {
    port: int('PORT', 4000),
    host: env.HOST || '0.0.0.0',
    database: databaseConfigFromEnv(env),
    seedOnFirstStart: env.SEED_ON_START !== 'false',
    logLevel: env.LOG_LEVEL || 'info',
    production: env.NODE_ENV === 'production',
  };
}
