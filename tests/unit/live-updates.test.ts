/** Coalescing of live updates (src/live/updates.ts), on a fake clock: no database, no real waiting. */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { LiveUpdates } from '../../src/live/updates';

describe('live updates coalescing', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  /** Counts the reads a watcher makes after its initial value (each read is one push). */
  async function watcher(live: LiveUpdates, id: string) {
    let reads = 0;
    const it = live.watch(id, 0, async () => ++reads);
    const values: number[] = [];
    const pull = (async () => {
      for await (const v of it) values.push(v);
    })();
    await jest.advanceTimersByTimeAsync(0);
    const stop = async () => {
      await it.return?.();
      await pull;
    };
    return { values, reads: () => reads, stop };
  }

  it('1,000 changes within a second give one push at once and one at the end of the window', async () => {
    const live = new LiveUpdates(1000);
    const w = await watcher(live, 'e1');
    for (let i = 0; i < 1000; i++) {
      live.changed('e1');
      await jest.advanceTimersByTimeAsync(0.9);
    }
    await jest.advanceTimersByTimeAsync(2000);
    expect(w.values).toEqual([0, 1, 2]);
    await w.stop();
    expect(live.stats()).toEqual({ experiments: 0, subscribers: 0, timers: 0, listens: 0 });
  });

  it('a change after a quiet window pushes at once; other experiments are not woken', async () => {
    const live = new LiveUpdates(1000);
    const a = await watcher(live, 'a');
    const b = await watcher(live, 'b');
    live.changed('a');
    await jest.advanceTimersByTimeAsync(0);
    expect(a.values).toEqual([0, 1]);
    await jest.advanceTimersByTimeAsync(1500);
    live.changed('a');
    await jest.advanceTimersByTimeAsync(0);
    expect(a.values).toEqual([0, 1, 2]);
    expect(b.values).toEqual([0]);
    // Nobody watches c: nothing is kept for it.
    live.changed('c');
    expect(live.stats().experiments).toBe(2);
    await a.stop();
    await b.stop();
    expect(live.stats().subscribers).toBe(0);
  });

  it('a slow consumer is woken once for many wake-ups, and stop() ends every watcher', async () => {
    const live = new LiveUpdates(0);
    let reads = 0;
    const it = live.watch('s', 0, async () => ++reads);
    expect((await it.next()).value).toBe(0);
    // Not pulling: three changes mark it pending once.
    live.changed('s');
    live.changed('s');
    live.changed('s');
    await jest.advanceTimersByTimeAsync(0);
    expect((await it.next()).value).toBe(1);
    expect(reads).toBe(1);
    const next = it.next();
    await live.stop();
    expect((await next).done).toBe(true);
    expect(live.stats().subscribers).toBe(0);
  });
});
