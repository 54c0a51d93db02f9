/**
 * Live updates for GraphQL subscriptions: which experiments changed, across every instance.
 *
 * A transaction that changes an experiment's numbers (event ingestion) NOTIFYs `RESULTS_CHANGED_CHANNEL`
 * once per experiment it touched, whatever the number of events; a configuration change already NOTIFYs
 * `EXPERIMENT_CHANGED_CHANNEL` (src/assignments/config-cache.ts). PostgreSQL delivers both only when, and
 * if, the transaction commits, to every instance's LISTEN. Each instance LISTENs once, whatever its
 * number of subscribers, and wakes only the subscribers of the experiment named.
 *
 * With Redis (REDIS_URL), ingestion's changes travel through Redis instead: the ingesting instance
 * PUBLISHes once per experiment right after its transaction committed (no statement inside it), and
 * every instance SUBSCRIBEs. A process that dies between its COMMIT and its PUBLISH loses that push (the
 * next change brings the numbers anyway); configuration changes stay on PostgreSQL either way.
 *
 * Wake-ups are coalesced per experiment to at most one per window (a second by default): the first change
 * after a quiet window wakes at once, later ones wait for the window's end and wake once together. A
 * subscriber woken while it is still answering the previous wake-up is woken once more afterwards, never
 * once per wake-up. A subscriber that goes away (its iterator returned, the client disconnected) is
 * removed at once, and an experiment with no subscriber left keeps no state.
 */
import { sql } from 'drizzle-orm';
import { Repeater } from 'graphql-yoga';
import { EXPERIMENT_CHANGED_CHANNEL } from '../assignments/config-cache';
import type { DatabaseHandle, Db } from '../db/client';
import { jsonParam } from '../db/client';

export const RESULTS_CHANGED_CHANNEL = 'sona_results_changed';

/** The default coalescing window: at most one push per experiment per second. */
export const DEFAULT_PUSH_WINDOW_MS = 1000;

/**
 * Sent inside the ingesting transaction, one notification per experiment in ONE statement (PostgreSQL
 * also folds identical notifications of a transaction into one). Delivered only if, and when, it commits.
 */
export async function notifyResultsChanged(tx: Db, experimentIds: Iterable<string>): Promise<void> {
  const ids = [...new Set(experimentIds)];
  if (ids.length === 0) return;
  await tx.execute(
    sql`/* notifyResultsChanged */ SELECT pg_notify(${RESULTS_CHANGED_CHANNEL}, id) FROM json_array_elements_text(${jsonParam(ids)}) AS id`,
  );
}

/** The Redis channel of ingestion's changes (payload: an experiment id). */
export const REDIS_RESULTS_CHANNEL = 'sona:results_changed';

/** Told, after an ingesting transaction committed, which experiments it changed (the Redis transport). */
export interface ResultsPublisher {
  afterCommit(experimentIds: readonly string[]): void;
}

type RedisClient = import('ioredis').Redis;

interface Subscriber {
  /** Set when woken while not waiting; the next wait returns at once. */
  pending: boolean;
  wake: (() => void) | null;
}

interface Window {
  /** When this experiment's subscribers were last woken. */
  lastWake: number;
  /** A wake-up waiting for the window's end, if any. */
  timer: NodeJS.Timeout | null;
}

export interface LiveStats {
  /** Experiments with at least one subscriber on this instance. */
  experiments: number;
  /** Subscribers on this instance. */
  subscribers: number;
  /** Pending coalescing timers. */
  timers: number;
  /** LISTENs (and the Redis subscription) held: one per channel once started, whatever the subscribers. */
  listens: number;
}

export class LiveUpdates {
  private readonly subscribers = new Map<string, Set<Subscriber>>();
  private readonly windows = new Map<string, Window>();
  private unlisten: (() => Promise<void>)[] = [];
  private redis: { publisher: RedisClient; subscriber: RedisClient } | null = null;
  private stopped = false;
  private readonly stops = new Set<() => void>();

  constructor(
    /** Shortest time between two wake-ups of one experiment's subscribers. */
    private readonly windowMs = DEFAULT_PUSH_WINDOW_MS,
  ) {}

  /**
   * LISTENs on both channels (and, given a Redis URL, SUBSCRIBEs to ingestion's Redis channel); call once
   * per process.
   */
  async start(handle: DatabaseHandle, redisUrl: string | null = null): Promise<void> {
    // After a reconnection, whatever was notified meanwhile is lost: wake everyone to re-read.
    const resync = () => {
      for (const id of this.subscribers.keys()) this.changed(id);
    };
    // Results stay on PostgreSQL's channel too: an instance without Redis may share the database.
    for (const channel of [RESULTS_CHANGED_CHANNEL, EXPERIMENT_CHANGED_CHANNEL]) {
      this.unlisten.push(await handle.listen(channel, (id) => this.changed(id), resync));
    }
    if (redisUrl) {
      const { Redis } = await import('ioredis');
      const publisher = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: false });
      const subscriber = new Redis(redisUrl, { lazyConnect: false });
      // Both reconnect by themselves; a publish that fails meanwhile is a missed push, not a failed request.
      publisher.on('error', () => {});
      subscriber.on('error', () => {});
      subscriber.on('message', (_channel: string, id: string) => this.changed(id));
      // ioredis re-subscribes after reconnecting; what was published meanwhile is lost.
      subscriber.on('ready', resync);
      await subscriber.subscribe(REDIS_RESULTS_CHANNEL);
      this.redis = { publisher, subscriber };
    }
  }

  /** With Redis: what ingestion calls after committing (it then sends no NOTIFY). Null: NOTIFY. */
  get publisher(): ResultsPublisher | null {
    const redis = this.redis;
    if (!redis) return null;
    return {
      afterCommit(experimentIds) {
        const ids = [...new Set(experimentIds)];
        if (ids.length === 0) return;
        const batch = redis.publisher.pipeline();
        for (const id of ids) batch.publish(REDIS_RESULTS_CHANNEL, id);
        batch.exec().catch(() => {});
      },
    };
  }

  /** Ends every subscription (their streams complete) and stops listening. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const stop of [...this.stops]) stop();
    for (const w of this.windows.values()) if (w.timer) clearTimeout(w.timer);
    this.windows.clear();
    await Promise.allSettled(this.unlisten.map((u) => u()));
    this.unlisten = [];
    if (this.redis) {
      const { publisher, subscriber } = this.redis;
      this.redis = null;
      await Promise.allSettled([publisher.quit(), subscriber.quit()]);
    }
  }

  stats(): LiveStats {
    let subscribers = 0;
    for (const set of this.subscribers.values()) subscribers += set.size;
    let timers = 0;
    for (const w of this.windows.values()) if (w.timer) timers++;
    return {
      experiments: this.subscribers.size,
      subscribers,
      timers,
      listens: this.unlisten.length + (this.redis ? 1 : 0),
    };
  }

  /** An experiment changed (a notification from any instance): wake its subscribers, coalesced. */
  changed(experimentId: string): void {
    if (!this.subscribers.has(experimentId)) return;
    const now = Date.now();
    const w = this.windows.get(experimentId);
    if (!w) {
      this.windows.set(experimentId, { lastWake: now, timer: null });
      this.wake(experimentId);
      return;
    }
    if (w.timer) return;
    const wait = w.lastWake + this.windowMs - now;
    if (wait <= 0) {
      w.lastWake = now;
      this.wake(experimentId);
      return;
    }
    w.timer = setTimeout(() => {
      w.timer = null;
      w.lastWake = Date.now();
      this.wake(experimentId);
    }, wait);
  }

  private wake(experimentId: string): void {
    for (const s of this.subscribers.get(experimentId) ?? []) {
      if (s.wake) {
        const wake = s.wake;
        s.wake = null;
        wake();
      } else s.pending = true;
    }
  }

  /**
   * Yields `initial`, then `read()` after every (coalesced) change of the experiment, until the consumer
   * returns, `read()` answers null (the experiment is gone) or the updates stop.
   */
  watch<T>(experimentId: string, initial: T, read: () => Promise<T | null>): AsyncIterableIterator<T> {
    return new Repeater<T>(async (push, stop) => {
      if (this.stopped) {
        stop();
        return;
      }
      const subscriber: Subscriber = { pending: false, wake: null };
      let set = this.subscribers.get(experimentId);
      if (!set) {
        set = new Set();
        this.subscribers.set(experimentId, set);
      }
      set.add(subscriber);
      this.stops.add(stop);
      let ended = false;
      const stopped = stop.then(() => {
        ended = true;
        subscriber.wake?.();
      });
      try {
        let value: T | null = initial;
        for (;;) {
          if (ended) break;
          if (value === null) {
            stop();
            break;
          }
          await push(value);
          // Checked and armed in one step: a stop that came during the push must not be waited for.
          if (!subscriber.pending && !ended)
            await new Promise<void>((resolve) => (subscriber.wake = resolve));
          subscriber.pending = false;
          if (ended) break;
          value = await read();
        }
      } catch (err) {
        stop(err);
      } finally {
        this.stops.delete(stop);
        set.delete(subscriber);
        if (set.size === 0 && this.subscribers.get(experimentId) === set) {
          this.subscribers.delete(experimentId);
          const w = this.windows.get(experimentId);
          if (w?.timer) clearTimeout(w.timer);
          this.windows.delete(experimentId);
        }
      }
      await stopped;
    });
  }
}
