/**
 * Read replicas (DATABASE_REPLICA_URLS): PostgreSQL standbys that take the dashboards' reads off the
 * primary. Each replica's replay lag is measured every REPLICA_LAG_CHECK_MS; a replica further behind than
 * REPLICA_MAX_LAG_MS, or unreachable, gets no reads until it catches up (they go to the primary), so a
 * read served by a replica is at most that far behind the primary, plus one check interval. Writes, and
 * every read of a request that writes (read-your-writes), always use the primary: the routing is by
 * operation (src/http/plugins/read-replicas.ts).
 */
import type { Logger } from 'pino';
import type { DatabaseConfig } from '../config';
import { type Database, type DatabaseHandle, type OpenOptions, openDatabase, queryRows } from './client';
import { sql } from 'drizzle-orm';

export interface ReplicaConfig {
  urls: string[];
  maxLagMs: number;
  checkEveryMs: number;
}

interface Replica {
  handle: DatabaseHandle;
  /** Replay lag at the last check, in seconds; null when the check failed (treated as unusable). */
  lagSeconds: number | null;
}

/**
 * How far the replica's replay is behind: 0 when it has replayed everything it received (an idle
 * primary sends nothing, and the age of the last replayed transaction would then read as lag), otherwise
 * the age of the last transaction it replayed.
 */
const LAG = sql`SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
  END::float8 AS lag`;

export class ReplicaSet {
  private next = 0;
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly replicas: Replica[],
    private readonly config: ReplicaConfig,
    private readonly logger?: Logger,
  ) {}

  /** Opens every replica with the primary's settings; checks their lag once before serving. */
  static async open(
    primary: Extract<DatabaseConfig, { driver: 'postgres' }>,
    config: ReplicaConfig,
    options: OpenOptions & { logger?: Logger } = {},
  ): Promise<ReplicaSet> {
    const handles = await Promise.all(
      config.urls.map((url) => openDatabase({ ...primary, url }, { observer: options.observer })),
    );
    const set = new ReplicaSet(
      handles.map((handle) => ({ handle, lagSeconds: null })),
      config,
      options.logger,
    );
    await set.check();
    set.timer = setInterval(() => void set.check(), config.checkEveryMs);
    set.timer.unref();
    return set;
  }

  /** Measures every replica's lag now. */
  async check(): Promise<void> {
    await Promise.all(
      this.replicas.map(async (replica) => {
        try {
          const [row] = await queryRows<{ lag: number }>(replica.handle.db, LAG);
          replica.lagSeconds = Number(row.lag);
        } catch (err) {
          if (replica.lagSeconds !== null)
            this.logger?.warn({ replica: replica.handle.location, err: String(err) }, 'replica unreachable');
          replica.lagSeconds = null;
        }
      }),
    );
  }

  /** A replica close enough to the primary (round robin among them), or null: read from the primary. */
  pick(): Database | null {
    const n = this.replicas.length;
    for (let i = 0; i < n; i++) {
      const replica = this.replicas[(this.next + i) % n];
      if (replica.lagSeconds !== null && replica.lagSeconds * 1000 <= this.config.maxLagMs) {
        this.next = (this.next + i + 1) % n;
        return replica.handle.db;
      }
    }
    return null;
  }

  /** Each replica's location (no credentials) and last measured lag, for metrics. */
  lags(): { replica: string; lagSeconds: number | null }[] {
    return this.replicas.map((r) => ({ replica: r.handle.location, lagSeconds: r.lagSeconds }));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.replicas.map((r) => r.handle.close()));
  }
}
