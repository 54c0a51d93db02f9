/**
 * In-process cache of experiment configuration (status, traffic, seed, variants) for assignment, so an
 * assignment costs no configuration read. Every configuration change NOTIFYs in its transaction; every
 * instance LISTENs and drops its cache when the change commits, so a pause through one instance stops
 * enrollment through all of them within the notification latency (milliseconds).
 */
import { sql } from 'drizzle-orm';
import type { Db, DatabaseHandle } from '../db/client';
import { type AssignmentRow, assignmentKey } from './repository';
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

export class ExperimentConfigCache implements AssignmentMemory {
  private entries = new Map<string, Promise<ExperimentConfig | null>>();
  private assignments = new Map<string, AssignmentRow>();
  private unlisten: (() => Promise<void>) | null = null;
  hits = 0;
  misses = 0;

  constructor(private readonly load: ConfigSource = loadConfigFromDb) {}

  /** Subscribes to change notifications; call once per process. */
  async start(handle: DatabaseHandle): Promise<void> {
    this.unlisten = await handle.listen(EXPERIMENT_CHANGED_CHANNEL, () => this.invalidate());
    // Anything cached before LISTEN took effect may have missed a change.
    this.invalidate();
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
    this.unlisten = null;
  }

  /** Changes are rare (management operations), so dropping everything is simplest and always right. */
  invalidate(): void {
    this.entries.clear();
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

  readonly source: ConfigSource = (db, key) => {
    const cached = this.entries.get(key);
    if (cached) {
      this.hits++;
      return cached;
    }
    this.misses++;
    // Concurrent misses share one load. A load in flight during an invalidation is dropped with the rest,
    // so only its own callers (who asked before the change committed) see the old configuration.
    const loading = this.load(db, key);
    this.entries.set(key, loading);
    loading.catch(() => {
      if (this.entries.get(key) === loading) this.entries.delete(key);
    });
    return loading;
  };
}
