/**
 * Prometheus metrics (prom-client), one registry per service instance (tests run several in a process):
 * HTTP requests and latency per route and GraphQL operation, errors by code, assignments by reason,
 * events by outcome and batch size, rate-limit refusals, the configuration cache, statement timeouts, the
 * connection pool, and Node's own process metrics. Served at `GET /metrics` (src/http/server.ts).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { LIMITS } from '../config';
import type { PoolStats } from '../db/client';
import type { Fault } from '../http/faults';

/** What the domain services report as they work (AssignmentDeps.observer); no prom-client types. */
export interface UsageObserver {
  assignment(reason: string): void;
  /** One call per ingestion (a batch or a single event): each event's outcome. */
  events(outcomes: readonly { status: 'accepted' | 'duplicate' | 'rejected' }[]): void;
}

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_SIZES = [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
const POOL_STATES = ['idle', 'busy', 'reserved', 'connecting'] as const;

export interface MetricsOptions {
  /** The database pool's state (PostgreSQL); no pool gauges without it. */
  pool?: () => PoolStats | null;
  /** The assignment configuration cache's running tallies. */
  configCache?: { readonly hits: number; readonly misses: number };
  /** Each read replica's last measured replay lag (null: unreachable). */
  replicaLags?: () => { replica: string; lagSeconds: number | null }[];
  /** Node's process metrics (CPU, memory, event-loop lag, GC); default on. */
  processMetrics?: boolean;
}

export class Metrics implements UsageObserver {
  readonly registry = new Registry();
  /** Operation names are chosen by clients: past this many distinct ones, new names count as `other`. */
  private readonly operations = new Set<string>();

  private readonly requests = new Counter({
    name: 'sona_http_requests_total',
    help: 'HTTP requests answered, by route, GraphQL operation name and status',
    labelNames: ['route', 'operation', 'status'] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'sona_http_request_duration_seconds',
    help: 'Time from receiving a request to its answer, by route and GraphQL operation name',
    labelNames: ['route', 'operation'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'sona_errors_total',
    help: 'Errors answered (GraphQL `errors` entries and SDK-route errors), by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  private readonly assignments = new Counter({
    name: 'sona_assignments_total',
    help: 'Assignment decisions, by reason (ASSIGNED, EXISTING, OUTSIDE_TRAFFIC, NOT_RUNNING, …)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly eventOutcomes = new Counter({
    name: 'sona_events_total',
    help: 'Events ingested, by outcome (accepted, duplicate, rejected)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly batchSizes = new Histogram({
    name: 'sona_ingestion_batch_size',
    help: 'Events per ingestion call',
    buckets: BATCH_SIZES,
    registers: [this.registry],
  });
  private readonly rateLimited = new Counter({
    name: 'sona_rate_limited_total',
    help: 'Requests refused by a rate limit, by limit (requests, auth_failures)',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  private readonly statementTimeouts = new Counter({
    name: 'sona_db_statement_timeouts_total',
    help: 'Requests failed by a statement cancelled by DB_STATEMENT_TIMEOUT_MS (SQLSTATE 57014)',
    registers: [this.registry],
  });

  constructor(options: MetricsOptions = {}) {
    const { pool, configCache, replicaLags } = options;
    if (replicaLags) {
      new Gauge({
        name: 'sona_db_replica_lag_seconds',
        help: 'Replay lag of each read replica at its last check; -1 when unreachable (it then serves no reads)',
        labelNames: ['replica'] as const,
        registers: [this.registry],
        collect() {
          for (const { replica, lagSeconds } of replicaLags()) this.set({ replica }, lagSeconds ?? -1);
        },
      });
    }
    if (configCache) {
      // The cache keeps its own tallies (no metrics dependency on the hot path): published as deltas.
      const seen = { hit: 0, miss: 0 };
      new Counter({
        name: 'sona_config_cache_lookups_total',
        help: 'Experiment configuration lookups by the assignment path, by result (hit, miss)',
        labelNames: ['result'] as const,
        registers: [this.registry],
        collect() {
          const now = { hit: configCache.hits, miss: configCache.misses };
          for (const result of ['hit', 'miss'] as const) {
            this.inc({ result }, Math.max(0, now[result] - seen[result]));
            seen[result] = now[result];
          }
        },
      });
    }
    // The embedded database has no pool (pool() is null): no pool series at all rather than zeros.
    if (pool?.()) {
      new Gauge({
        name: 'sona_db_pool_connections',
        help: 'Database connections of this instance, by state (reserved: held by a transaction)',
        labelNames: ['state'] as const,
        registers: [this.registry],
        collect() {
          const stats = pool();
          if (!stats) return;
          for (const state of POOL_STATES) this.set({ state }, stats[state]);
        },
      });
      new Gauge({
        name: 'sona_db_pool_waiting',
        help: 'Statements waiting for a free database connection',
        registers: [this.registry],
        collect() {
          const stats = pool();
          if (stats) this.set(stats.waiting);
        },
      });
      new Gauge({
        name: 'sona_db_pool_max',
        help: 'Largest number of database connections this instance opens (DB_POOL_SIZE)',
        registers: [this.registry],
        collect() {
          const stats = pool();
          if (stats) this.set(stats.max);
        },
      });
    }
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The label for a GraphQL operation name: bounded, so a client cannot grow the series without limit. */
  operationLabel(name: string | null | undefined): string {
    if (!name) return 'anonymous';
    if (this.operations.has(name)) return name;
    if (this.operations.size >= LIMITS.maxMetricOperations) return 'other';
    this.operations.add(name);
    return name;
  }

  /**
   * One answered request; `route` is the server's bounded route label (`other` for unknown paths),
   * `operation` the GraphQL operation's name (null: anonymous; undefined: none ran, labelled '').
   */
  request(route: string, operation: string | null | undefined, status: number, seconds: number): void {
    const labels = { route, operation: operation === undefined ? '' : this.operationLabel(operation) };
    this.requests.inc({ ...labels, status: String(status) });
    this.duration.observe(labels, seconds);
  }

  error(code: string): void {
    this.errors.inc({ code });
  }

  assignment(reason: string): void {
    this.assignments.inc({ reason });
  }

  events(outcomes: readonly { status: 'accepted' | 'duplicate' | 'rejected' }[]): void {
    let accepted = 0;
    let duplicate = 0;
    for (const o of outcomes) {
      if (o.status === 'accepted') accepted++;
      else if (o.status === 'duplicate') duplicate++;
    }
    this.eventOutcomes.inc({ outcome: 'accepted' }, accepted);
    this.eventOutcomes.inc({ outcome: 'duplicate' }, duplicate);
    this.eventOutcomes.inc({ outcome: 'rejected' }, outcomes.length - accepted - duplicate);
    this.batchSizes.observe(outcomes.length);
  }

  rateLimit(limit: 'requests' | 'auth_failures'): void {
    this.rateLimited.inc({ limit });
  }

  /** An unexpected error answered as a fault (its code is counted with the response's errors). */
  fault(fault: Fault): void {
    if (fault.sqlstate === '57014') this.statementTimeouts.inc();
  }

  /** The exposition text and its content type, for GET /metrics. */
  async scrape(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
