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
  /** Experiment keys (and the keys that look experiments up) and metric names: slugs of this length. */
  keyMaxLength: 128,
  nameMaxLength: 255,
  descriptionMaxLength: 10_000,
  hashSeedMaxLength: 256,
  userIdMaxLength: 256,
  metricNameMaxLength: 128,
  apiKeyNameMaxLength: 100,
  /** Pagination cursors are opaque but short; a longer one is not ours. */
  cursorMaxLength: 200,
  /** Variant config and event metadata, serialised JSON bytes. */
  configMaxBytes: 64 * 1024,
  metadataMaxBytes: 16 * 1024,
  /** An experiment's targeting condition and the attributes a unit is assigned with, serialised JSON bytes. */
  targetingMaxBytes: 16 * 1024,
  attributesMaxBytes: 16 * 1024,
  /** Variant config and event metadata: deepest nesting of objects and arrays (the top object is 1). */
  jsonMaxDepth: 32,
  /** A variant's relative weight. */
  maxVariantWeight: 1_000_000,
  /** Largest |value| of a conversion: the aggregates keep sums of squares, which must stay finite. */
  maxEventValue: 1e15,
  /**
   * Smallest non-zero |value| of a conversion. PostgreSQL refuses a float8 product that underflows to 0,
   * and the aggregates square per-unit totals; totals of values this large or 0 stay multiples of a power
   * of two whose square is a normal double, whatever cancels.
   */
  minEventValue: 1e-100,
  /** CUPED: most covariates (pre-period values, keyed by metric key) one exposure may carry. */
  maxCovariates: 20,
  /** occurredAt: at most this far in the future (client clocks drift)… */
  occurredAtMaxFutureMs: 5 * 60_000,
  /** …and not earlier than the experiment's creation minus this (events cannot predate it). */
  occurredAtMaxBeforeCreationMs: 24 * 3600_000,
  maxVariants: 20,
  /**
   * Segment dimensions (exposures' `dimensions`): most keys one experiment may use (an exposure bringing
   * another is rejected), most levels per key (later levels count as `__other__`), and the length of keys
   * and levels. Each level costs variants × metrics rows; a breakdown reads them all.
   */
  maxDimensions: 5,
  maxDimensionLevels: 50,
  dimensionKeyMaxLength: 64,
  dimensionLevelMaxLength: 128,
  /** `ExperimentResults.timeSeries` without a granularity is hourly while the experiment is younger (days). */
  hourlyTimeSeriesDays: 3,
  /** QA overrides (forced variants) per experiment; all of them travel with the cached configuration. */
  maxOverridesPerExperiment: 1000,
  /** Ranges one experiment may hold in its layer. */
  maxLayerRanges: 10,
  /** Per-experiment metric settings (conversion windows): most metrics one experiment may configure… */
  maxMetricSettings: 50,
  /** …and the longest conversion window, in hours (a year). */
  maxConversionWindowHours: 24 * 366,
  /**
   * Results: units each arm needs before effects and decisions are shown (reason TOO_FEW_UNITS below), and
   * the least sampleSize recommends. GrowthBook hides results below 150 per arm; below it, rare conversions
   * and skewed values leave the normal approximations behind every test unreliable.
   */
  minUnitsPerVariant: 150,
  /**
   * Bandits (src/bandits): defaults and bounds of `createExperiment(input: {kind: BANDIT, bandit})`. Equal
   * weights for `explorationHours` after the start, then a reweighting every `updateEveryMinutes` (at least
   * 15: each update is a phase, and phases of minutes hold too few units to estimate anything), each arm
   * floored at `minWeight`, and no update while an arm has fewer than `minUnitsPerVariant` exposed units.
   */
  bandit: {
    explorationHoursDefault: 24,
    maxExplorationHours: 24 * 366,
    updateEveryMinutesDefault: 1440,
    minUpdateEveryMinutes: 15,
    maxUpdateEveryMinutes: 60 * 24 * 31,
    minWeightDefault: 0.01,
    /** The floor of every arm together must leave room: minWeight × variants < 1 (checked on create and start). */
    maxMinWeight: 0.5,
    minUnitsPerVariantDefault: 100,
    minMinUnitsPerVariant: 2,
    maxMinUnitsPerVariant: 1_000_000_000,
    /** Bandits one job run reweights at most (the rest wait for the next run). */
    updatesPerRun: 20,
    /** `banditState.history`: most updates returned (newest first). */
    maxHistory: 1000,
  },
  /** POST /v1/assignments: most experiments one request may ask about for a unit. */
  maxAssignExperiments: 50,
  /**
   * Assignment write batching: the most units one statement resolves, and how many such statements may
   * be in flight at once (the rest wait and join the next statement, which is what makes batches form).
   */
  assignmentBatchMax: 500,
  assignmentBatchesInFlight: 4,
  /** scheduleExperiment: the largest unit cap (stopAfterUnits). */
  maxStopAfterUnits: 1_000_000_000,
  /**
   * A scheduled transition that fails is tried again at most this many times (so at most 1 + this many
   * attempts), the n-th retry `scheduleRetryBaseMs × 2^(n−1)` after the previous attempt.
   */
  scheduleMaxRetries: 5,
  scheduleRetryBaseMs: 30_000,
  /** Webhooks: URL length, and how long a delivery is retried (exponential backoff from the base). */
  webhookUrlMaxLength: 2048,
  webhookRetryBaseMs: 10_000,
  webhookRetryForMs: 24 * 3600_000,
  webhookTimeoutMs: 10_000,
  /** Deliveries one job run sends at most. */
  webhookDeliveriesPerRun: 50,
  /**
   * A run claims its deliveries for one timeout each plus this margin; a process that dies while sending
   * leaves the unsent ones due again after that.
   */
  webhookLeaseMarginMs: 60_000,
  /**
   * The monitoring job (guardrails, SRM and significance alerts) looks at a running experiment's statistics
   * at most once per this interval, and decides again only when they changed since its last decision.
   */
  monitorIntervalMs: 60_000,
  /** Running experiments one run of the monitoring job looks at, those looked at longest ago first. */
  monitorExperimentsPerRun: 100,
  /** Raw event partitions (src/events/partitions.ts): months created ahead of the current one. */
  eventPartitionMonthsAhead: 3,
  /**
   * With EVENT_RETENTION_DAYS, events that happened more than the retention minus this margin ago are
   * refused: it covers occurredAtMaxFutureMs and clock differences between instances and the database.
   */
  eventRetentionMarginMs: 3600_000,
  /** How long dropping a partition waits for the ingestion in flight before the run gives up. */
  partitionDropLockTimeoutMs: 5000,
  auditLogMaxPage: 100,
  auditLogDefaultPage: 20,
  /** results: largest SEQUENTIAL tuning N*. */
  maxSequentialTuning: 1e9,
  /** sampleSize: a plan's unit counts are GraphQL Ints; larger plans are null with a reason. */
  maxPlannedUnits: 2_147_483_647,
  /** Hostile-query limits, enforced before execution (no SQL runs for a rejected query). */
  maxDepth: 10,
  maxAliases: 15,
  maxTokens: 2000,
  maxDirectives: 20,
  /** Pothos complexity: 1 per field, list sub-selections ×10, connections × `first`. */
  maxComplexity: 15_000,
  maxBreadth: 500,
  /** GET /metrics: distinct GraphQL operation names labelled; later new names are counted as `other`. */
  maxMetricOperations: 200,
} as const;

/** The slug rule: a lowercase letter or digit, then letters, digits, `_`, `.`, `-`, at most maxLength in all. */
export const slugPattern = (maxLength: number) => new RegExp(`^[a-z0-9][a-z0-9_.-]{0,${maxLength - 1}}$`);

/** Experiment keys (also the database's CHECK on experiments.key). */
export const SLUG_PATTERN = slugPattern(LIMITS.keyMaxLength);

function int(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
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
  | {
      driver: 'pglite';
      dataDir: string;
      /**
       * In memory only: start from this dump (PGlite's dumpDataDir) instead of an empty database. Tests
       * migrate and seed once and give every file a copy, skipping initdb and migrations each time.
       */
      snapshot?: Blob;
    };

export interface SecurityConfig {
  /** API keys required: always against DATABASE_URL or in production; off only on the embedded default. */
  authRequired: boolean;
  graphiql: boolean;
  introspection: boolean;
  /** Field suggestions ("Did you mean …?") leak the schema when introspection is off. */
  fieldSuggestions: boolean;
  maxBodyBytes: number;
  /** A request (including waiting for a free database connection) that takes longer fails with TIMEOUT. */
  requestTimeoutMs: number;
  /** Token bucket per API key (or per client address without a key): refill per second and burst size. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  /**
   * Failed authentications (HTTP 401) one client address may make per minute; past that its requests
   * without a verified key get 429 until the minute is over. 0 disables.
   */
  authFailuresPerMinute: number;
  /** Shared rate-limit state for several instances; in-process when unset. */
  redisUrl: string | null;
  /**
   * Longest an instance uses a cached experiment configuration or API key verification without reading
   * it again. Changes reach every instance at once through LISTEN/NOTIFY; this bounds staleness when a
   * notification is missed anyway. 0 disables both caches.
   */
  cacheTtlMs: number;
  shutdownTimeoutMs: number;
  /** Absent: webhooks disabled (WEBHOOKS_DISABLED). */
  webhooks?: WebhookConfig;
}

export const WEBHOOKS_DISABLED: WebhookConfig = { secretKey: null, allowPrivate: false, allowHosts: [] };

export interface WebhookConfig {
  /**
   * Encrypts webhook signing secrets at rest (AES-256-GCM with the SHA-256 of this value as key; give 32+
   * random bytes). Unset: webhooks cannot be created.
   */
  secretKey: string | null;
  /** Allow webhook URLs that resolve to private, loopback or link-local addresses (off: no SSRF). */
  allowPrivate: boolean;
  /** Host names allowed whatever they resolve to (an allow-list for internal receivers). */
  allowHosts: string[];
}

export interface AppConfig {
  port: number;
  host: string;
  database: DatabaseConfig;
  /** Read replicas for read-only GraphQL operations (PostgreSQL only); none when `urls` is empty. */
  replicas: { urls: string[]; maxLagMs: number; checkEveryMs: number };
  /** Seed a brand-new embedded database on start (the bare-machine experience). */
  seedOnFirstStart: boolean;
  logLevel: string;
  production: boolean;
  /** Time between rounds of the job runner (schedules); 0 disables it on this instance. */
  jobsIntervalMs: number;
  /**
   * Shifts the clock the job runner judges due work by (scheduled starts and stops, retries, monitors),
   * in milliseconds; 0 (default) in production. For rehearsing schedules on a copy of the data, and for
   * tests of spawned instances.
   */
  jobsClockOffsetMs: number;
  /**
   * Raw events are dropped, a monthly partition at a time, once recorded more than this many days ago (and
   * events older than that are refused); null keeps them forever. The same on every instance.
   */
  eventRetentionDays: number | null;
  security: SecurityConfig;
  /**
   * Longest a stored answer of a read query is served (README "Response cache"); changes drop every
   * answer at once through LISTEN/NOTIFY, this bounds a missed notification. Default CACHE_TTL_MS; 0: off.
   */
  responseCacheTtlMs: number;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

export function securityConfigFromEnv(env: NodeJS.ProcessEnv = process.env): SecurityConfig {
  const production = env.NODE_ENV === 'production';
  return {
    authRequired: Boolean(env.DATABASE_URL) || production,
    graphiql: bool(env, 'GRAPHIQL_ENABLED', !production),
    introspection: bool(env, 'INTROSPECTION_ENABLED', !production),
    fieldSuggestions: bool(env, 'FIELD_SUGGESTIONS_ENABLED', !production),
    maxBodyBytes: int('MAX_BODY_BYTES', 1024 * 1024, env),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 15_000, env),
    rateLimitPerSecond: int('RATE_LIMIT_PER_SECOND', 1000, env),
    rateLimitBurst: int('RATE_LIMIT_BURST', 2000, env),
    authFailuresPerMinute: int('AUTH_FAILURES_PER_MINUTE', 60, env),
    redisUrl: env.REDIS_URL || null,
    cacheTtlMs: int('CACHE_TTL_MS', 5000, env),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 10_000, env),
    webhooks: {
      secretKey: env.WEBHOOK_SECRET_KEY || null,
      allowPrivate: bool(env, 'WEBHOOK_ALLOW_PRIVATE', false),
      allowHosts: (env.WEBHOOK_ALLOW_HOSTS ?? '')
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    },
  };
}

export function databaseConfigFromEnv(env: NodeJS.ProcessEnv = process.env): DatabaseConfig {
  if (env.DATABASE_URL) {
    return {
      driver: 'postgres',
      url: env.DATABASE_URL,
      poolSize: int('DB_POOL_SIZE', 10, env),
      statementTimeoutMs: int('DB_STATEMENT_TIMEOUT_MS', 10_000, env),
      connectTimeoutSeconds: int('DB_CONNECT_TIMEOUT_SECONDS', 10, env),
    };
  }
  const dir = env.PGLITE_DIR || '.data/pglite';
  return { driver: 'pglite', dataDir: dir.startsWith('memory://') ? dir : path.resolve(dir) };
}

function retentionDays(env: NodeJS.ProcessEnv): number | null {
  const days = int('EVENT_RETENTION_DAYS', 0, env);
  if (env.EVENT_RETENTION_DAYS && days < 1)
    throw new Error('EVENT_RETENTION_DAYS must be at least 1 (unset keeps events forever)');
  return days === 0 ? null : days;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const security = securityConfigFromEnv(env);
  return {
    port: int('PORT', 4000, env),
    host: env.HOST || '0.0.0.0',
    database: databaseConfigFromEnv(env),
    replicas: {
      urls: (env.DATABASE_REPLICA_URLS ?? '')
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean),
      maxLagMs: int('REPLICA_MAX_LAG_MS', 5000, env),
      checkEveryMs: Math.max(100, int('REPLICA_LAG_CHECK_MS', 1000, env)),
    },
    seedOnFirstStart: env.SEED_ON_START !== 'false',
    logLevel: env.LOG_LEVEL || 'info',
    jobsIntervalMs: int('JOBS_INTERVAL_MS', 10_000, env),
    jobsClockOffsetMs: int('JOBS_CLOCK_OFFSET_MS', 0, env),
    eventRetentionDays: retentionDays(env),
    production: env.NODE_ENV === 'production',
    security,
    responseCacheTtlMs: int('RESPONSE_CACHE_TTL_MS', security.cacheTtlMs, env),
  };
}
