/**
 * The raw event tables' monthly partitions (drizzle/repeatable/event_partitions.sql) and event retention.
 *
 * Partitions are created ahead: every migration run and every run of the partition job make sure the months
 * from now to LIMITS.eventPartitionMonthsAhead ahead exist (an insert into a month with no partition would
 * fail). With EVENT_RETENTION_DAYS the job also drops each partition whose whole month was recorded more than
 * that many days ago. Its events' numbers are in the maintained aggregates already (the fold runs in the
 * events' own transaction), so results do not change; what goes is the ability to rebuild those experiments
 * from raw rows (experiment_events_dropped records which) and the memory of the dropped events' ids, which is
 * why the events service refuses events older than the retention (docs/design.md, "Partitioned events").
 */
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { LIMITS } from '../config';
import type { Db } from '../db/client';
import { dbDate, parseRows } from '../db/rows';
import { experimentEventIds, experimentEventsDropped, experiments } from '../db/schema';
import type { Job } from '../jobs/runner';

export const PARTITION_JOB = 'event-partitions';

const DAY_MS = 86_400_000;

export interface EventPartition {
  /** experiment_exposures or experiment_conversions. */
  parent: string;
  name: string;
  /** Null for the legacy partition (everything recorded before the tables were partitioned). */
  fromAt: Date | null;
  toAt: Date;
}

const partitionRow = z.object({
  parent: z.string(),
  name: z.string(),
  fromAt: dbDate.nullable(),
  toAt: dbDate,
});

export async function listEventPartitions(db: Db): Promise<EventPartition[]> {
  return parseRows(
    db,
    sql`/* listEventPartitions */ SELECT parent, name, from_at AS "fromAt", to_at AS "toAt" FROM event_partitions()`,
    partitionRow,
  );
}

/** Creates the missing monthly partitions of the months from `from`'s to `to`'s; returns how many. */
export async function ensureEventPartitions(db: Pick<Db, 'execute'>, from: Date, to: Date): Promise<number> {
  const [row] = await parseRows(
    db,
    sql`/* ensureEventPartitions */ SELECT ensure_event_partitions(${from.toISOString()}::timestamptz, ${to.toISOString()}::timestamptz) AS created`,
    z.object({ created: z.number() }),
  );
  return row.created;
}

/** The months the service keeps created at `now`: this one and LIMITS.eventPartitionMonthsAhead more. */
export function ensurePartitionsAhead(db: Pick<Db, 'execute'>, now: Date): Promise<number> {
  const ahead = new Date(now);
  ahead.setUTCMonth(ahead.getUTCMonth() + LIMITS.eventPartitionMonthsAhead);
  return ensureEventPartitions(db, now, ahead);
}

/**
 * The earliest time an event may have happened to be accepted with a retention of `days`: `days` before
 * now, plus LIMITS.eventRetentionMarginMs. Only partitions recorded entirely before now − days are
 * dropped, so every accepted event is later than every dropped one: a late exposure never needs a dropped
 * conversion to re-count its unit (those are before its window), and an id forgotten with its partition
 * belongs to an event too old to be accepted again.
 */
export function oldestAcceptedEvent(days: number, now: Date): Date {
  return new Date(now.getTime() - days * DAY_MS + LIMITS.eventRetentionMarginMs);
}

/** Partitions whose whole range was recorded more than `days` days before `now`, oldest first. */
async function expiredPartitions(db: Db, days: number, now: Date): Promise<EventPartition[]> {
  const horizon = now.getTime() - days * DAY_MS;
  return (await listEventPartitions(db))
    .filter((p) => p.toAt.getTime() <= horizon)
    .sort((a, b) => a.toAt.getTime() - b.toAt.getTime());
}

/**
 * Before a partition is dropped: records which experiments lose raw events (so rebuilds refuse them) and
 * forgets the ids of its events. Takes no lock that ingestion waits for (new events go to later months).
 */
async function releaseEventPartition(db: Db, partition: EventPartition): Promise<void> {
  const table = sql.identifier(partition.name);
  await db.execute(sql`/* recordDroppedEvents */
    INSERT INTO ${experimentEventsDropped} (experiment_id, dropped_before)
    SELECT DISTINCT p.experiment_id, ${partition.toAt.toISOString()}::timestamptz
      FROM ${table} p JOIN ${experiments} ON ${experiments.id} = p.experiment_id
    ON CONFLICT (experiment_id) DO UPDATE
      SET dropped_before = greatest(${experimentEventsDropped.droppedBefore}, excluded.dropped_before)`);
  await db.execute(sql`/* forgetDroppedEventIds */
    DELETE FROM ${experimentEventIds} i USING ${table} p WHERE i.event_id = p.event_id`);
}

/**
 * Drops partitions released by releaseEventPartition. DROP (and CREATE … PARTITION OF) lock the parent table
 * until the transaction ends, so the job does them last; each waits at most LIMITS.partitionDropLockTimeoutMs
 * for ingestion in flight, else the run fails and the next one tries again.
 */
async function dropEventPartitions(db: Db, partitions: readonly EventPartition[]): Promise<void> {
  if (partitions.length === 0) return;
  await db.execute(sql.raw(`SET LOCAL lock_timeout = ${LIMITS.partitionDropLockTimeoutMs}`));
  for (const partition of partitions) {
    await db.execute(sql`/* dropEventPartition */ DROP TABLE ${sql.identifier(partition.name)}`);
  }
}

export interface PartitionJobOptions {
  /** EVENT_RETENTION_DAYS; null keeps every event. */
  retentionDays: number | null;
  /** Told of each partition created or dropped. */
  onChange?: (change: { created: number; dropped: string[] }) => void;
}

/** The job runner's partition job: months ahead created; with a retention, expired partitions dropped. */
export function partitionJob({ retentionDays, onChange }: PartitionJobOptions): Job {
  return {
    name: PARTITION_JOB,
    async run(tx, now) {
      // The slow part first (a scan of each expired partition); the statements that lock the parent tables
      // last, so ingestion waits for them only until this run commits.
      const expired = retentionDays === null ? [] : await expiredPartitions(tx, retentionDays, now);
      for (const partition of expired) await releaseEventPartition(tx, partition);
      await dropEventPartitions(tx, expired);
      const created = await ensurePartitionsAhead(tx, now);
      if (created > 0 || expired.length > 0) onChange?.({ created, dropped: expired.map((p) => p.name) });
    },
  };
}

export interface RawEventCoverage {
  /** The oldest kept partition's start (null: the legacy partition is kept, so nothing was dropped). */
  keptSince: Date | null;
  /** Experiments that lost raw events: rebuilding them from raw rows would lose those events' numbers. */
  incomplete: { id: string; key: string; droppedBefore: Date }[];
}

/** What a rebuild from raw events can cover (npm run db:rebuild-stats reports it). */
export async function rawEventCoverage(db: Db): Promise<RawEventCoverage> {
  const partitions = await listEventPartitions(db);
  const legacyKept = partitions.some((p) => p.fromAt === null);
  const starts = partitions.flatMap((p) => (p.fromAt ? [p.fromAt.getTime()] : []));
  const incomplete = await parseRows(
    db,
    sql`/* incompleteExperiments */
      SELECT ${experiments.id} AS id, ${experiments.key} AS key, ${experimentEventsDropped.droppedBefore} AS "droppedBefore"
        FROM ${experimentEventsDropped} JOIN ${experiments} ON ${experiments.id} = ${experimentEventsDropped.experimentId}
       ORDER BY ${experiments.key}`,
    z.object({ id: z.string(), key: z.string(), droppedBefore: dbDate }),
  );
  return {
    keptSince: legacyKept || starts.length === 0 ? null : new Date(Math.min(...starts)),
    incomplete,
  };
}
