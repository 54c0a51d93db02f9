/**
 * Groups the assignment lookups and inserts of concurrent requests into one statement. Under load, one
 * INSERT per new unit (its own transaction, its own WAL flush) is what limits assignment; a statement for
 * every unit that arrived in the same event-loop turn costs about as much as one for a single unit.
 *
 * Nothing is acknowledged early: each caller's promise settles only after the statement that holds its
 * unit has committed. One caller's input never fails another's: inputs are validated before they get
 * here, and should a statement still fail on its data (SQLSTATE classes 22 and 23), it is split in halves
 * until the failing unit is alone, so only that unit's callers get the error. Any other failure (the
 * database is away) reaches every caller of the statement.
 */
import { pgErrorCode } from '../common/errors';
import { LIMITS } from '../config';
import type { Db } from '../db/client';
import { type AssignmentRequest, assignmentKey, type Resolution, resolveAssignments } from './repository';

interface Pending {
  request: AssignmentRequest;
  waiters: { resolve(value: Resolution | null): void; reject(error: unknown): void }[];
}

export interface BatcherOptions {
  maxBatch: number;
  maxInFlight: number;
}

export class AssignmentBatcher {
  private pending = new Map<string, Pending>();
  private scheduled = false;
  private inFlight = 0;
  /** Statements run and units resolved, for the benchmark's report and tests. */
  statements = 0;
  units = 0;

  constructor(
    private readonly db: Db,
    private readonly options: BatcherOptions = {
      maxBatch: LIMITS.assignmentBatchMax,
      maxInFlight: LIMITS.assignmentBatchesInFlight,
    },
  ) {}

  /**
   * The stored assignment of the unit, else a new one with request.variantId (null: read only), or
   * CAP_REACHED when the experiment's unit cap leaves no room.
   */
  resolve(request: AssignmentRequest): Promise<Resolution | null> {
    const key = assignmentKey(request.experimentId, request.userId);
    return new Promise((resolve, reject) => {
      const entry = this.pending.get(key);
      if (entry) {
        // The same unit twice in one batch: one row answers both (the first variant that would enroll).
        if (entry.request.variantId === null) entry.request = request;
        entry.waiters.push({ resolve, reject });
      } else {
        this.pending.set(key, { request, waiters: [{ resolve, reject }] });
      }
      if (this.pending.size >= this.options.maxBatch) this.flush();
      else this.schedule();
    });
  }

  /**
   * Flushes after the current turn's I/O callbacks (setImmediate), so every request parsed in this turn
   * joins the same statement.
   */
  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.pending.size > 0 && this.inFlight < this.options.maxInFlight) {
      const batch: Pending[] = [];
      for (const [key, entry] of this.pending) {
        this.pending.delete(key);
        batch.push(entry);
        if (batch.length >= this.options.maxBatch) break;
      }
      this.inFlight++;
      this.units += batch.length;
      void this.settle(batch).finally(() => {
        this.inFlight--;
        if (this.pending.size > 0) this.schedule();
      });
    }
  }

  /** Resolves the units of one statement and answers their callers; never rejects. */
  private async settle(batch: Pending[]): Promise<void> {
    let resolved: Map<string, Resolution>;
    try {
      this.statements++;
      resolved = await resolveAssignments(
        this.db,
        batch.map((entry) => entry.request),
      );
    } catch (error) {
      if (batch.length > 1 && isDataError(error)) {
        const half = Math.ceil(batch.length / 2);
        await Promise.all([this.settle(batch.slice(0, half)), this.settle(batch.slice(half))]);
        return;
      }
      for (const { waiters } of batch) for (const waiter of waiters) waiter.reject(error);
      return;
    }
    for (const { request, waiters } of batch) {
      const row = resolved.get(assignmentKey(request.experimentId, request.userId)) ?? null;
      // Only the first caller created the row; the others found it, as they would have unbatched.
      waiters.forEach((waiter, i) => {
        waiter.resolve(row && typeof row === 'object' && i > 0 ? { ...row, created: false } : row);
      });
    }
  }
}

/** Data exceptions (22xxx) and integrity violations (23xxx): caused by some unit's values, not the database. */
function isDataError(error: unknown): boolean {
  const code = pgErrorCode(error);
  return code !== undefined && (code.startsWith('22') || code.startsWith('23'));
}
