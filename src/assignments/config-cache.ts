/**
 * In-process cache of experiment configuration (status, traffic, seed, variants) for assignment, so an
 * assignment costs no configuration read. Every configuration change NOTIFYs in its transaction; every
 * instance LISTENs and drops its cache when the change commits, so a pause through one instance stops
 * enrollment through all of them within the notification latency (milliseconds).
 * A notification sent while the LISTEN connection is down is lost: the cache is dropped whenever the
 * LISTEN (re)connects, and no entry is used longer than its time to live, should anything else be missed.
 */
import { sql } from 'drizzle-orm';
import type { Db, DatabaseHandle } from '../db/client';
import { type AssignmentRow, assignmentKey } from './repository';
import type { SdkPayload } from './sdk-payload';
import { type AssignmentMemory, type ConfigSource, type ExperimentConfig, loadConfigFromDb } from './service';

export const EXPERIMENT_CHANGED_CHANNEL = 'sona_experiment_changed';

/** Sent inside the changing transaction: PostgreSQL delivers it only if, and when, that commits. */
export async function notifyExperimentChanged(tx: Db, experimentId: string): Promise<void> {
  await tx.execute(
    sql`/* notifyExperimentChanged */ SELECT pg_notify(${EXPERIMENT_CHANGED_CHANNEL}, ${experimentId})`,
  );
}

/** How many stored assignments a process remembers (least recently used go first). */
export const ASSIGNMENT_MEMORY_SIZE = 200_000;

/** Default time to live of a cached configuration (CACHE_TTL_MS in src/config.ts). */
export const DEFAULT_CONFIG_TTL_MS = 5000;

interface Entry {
  loading: Promise<ExperimentConfig | null>;
  expires: number;
}

export class ExperimentConfigCache implements AssignmentMemory {
  private entries = new Map<string, Entry>();
  private assignments = new Map<string, AssignmentRow>();
  private unlisten: (() => Promise<void>) | null = null;
  /** The SDK payload (GET /v1/sdk/payload), built at most once per configuration. */
  private payload: { loading: Promise<SdkPayload>; expires: number } | null = null;
  hits = 0;
  misses = 0;

  constructor(
    private readonly load: ConfigSource = loadConfigFromDb,
    /** Longest a configuration is used without reading it again (0: never cached). */
    private readonly ttlMs = DEFAULT_CONFIG_TTL_MS,
  ) {}

  /** Subscribes to change notifications; call once per process. */
  async start(handle: DatabaseHandle): Promise<void> {
    // Anything cached before the LISTEN took effect (at first, or again after a reconnection) may have
    // missed a change: drop it then.
    this.unlisten = await handle.listen(
      EXPERIMENT_CHANGED_CHANNEL,
      () => this.invalidate(),
      () => this.invalidate(),
    );
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
    this.unlisten = null;
  }

  /** Changes are rare (management operations), so dropping everything is simplest and always right. */
  invalidate(): void {
    this.entries.clear();
    this.payload = null;
    // A change may be a deletion, whose assignments are gone with it.
    this.assignments.clear();
  }

  recall(experimentId: string, userId: string): AssignmentRow | undefined {
    const key = assignmentKey(experimentId, userId);
    const row = this.assignments.get(key);
    if (row) {
      // Map keeps insertion order: re-inserting marks the entry as recently used.
      this.assignments.delete(key);
      this.assignments.set(key, row);
    }
    return row;
  }

  remember(row: AssignmentRow): void {
    if (this.assignments.size >= ASSIGNMENT_MEMORY_SIZE) {
      this.assignments.delete(this.assignments.keys().next().value!);
    }
    this.assignments.set(assignmentKey(row.experimentId, row.userId), row);
  }

  /** The cached SDK payload, built with `build` when there is none (or it outlived the time to live). */
  sdkPayload(build: () => Promise<SdkPayload>): Promise<SdkPayload> {
    const now = Date.now();
    if (this.payload && this.payload.expires > now) return this.payload.loading;
    const entry = { loading: build(), expires: now + this.ttlMs };
    if (this.ttlMs > 0) this.payload = entry;
    entry.loading.catch(() => {
      if (this.payload === entry) this.payload = null;
    });
    return entry.loading;
  }

  readonly source: ConfigSource = (db, key) => {
    const now = Date.now();
    const cached = this.entries.get(key);
    if (cached && cached.expires > now) {
      this.hits++;
      return cached.loading;
    }
    this.misses++;
    // Concurrent misses share one load. A load in flight during an invalidation is dropped with the rest,
    // so only its own callers (who asked before the change committed) see the old configuration.
    const loading = this.load(db, key);
    const entry = { loading, expires: now + this.ttlMs };
    if (this.ttlMs > 0) this.entries.set(key, entry);
    loading.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return loading;
  };
}
