/**
 * The Data tab during an import (`src/ui/data/live-import.ts`, `src/ui/data/listing.ts`): the import's dataset
 * opens once, the listing re-reads at most every `minGapMs` with the last batch always shown, a stream of
 * re-read requests runs one read at a time for the newest request only, and re-read records keep the objects
 * (and so the thumbnails) the grid already has. The engine's side — a progress message after every committed
 * batch, naming the dataset and the stored count — is checked in import.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { ImageRecord } from '../../src/core/dataset.ts';
import type { Progress } from '../../src/core/progress.ts';
import { importDetail, liveImport } from '../../src/ui/data/live-import.ts';
import { keepUnchanged, latestOnly } from '../../src/ui/data/listing.ts';

/** A manual clock and timer queue. */
function clock() {
  let t = 0;
  let timers: { at: number; fn: () => void; id: number }[] = [];
  let nextId = 1;
  return {
    now: () => t,
    setTimer: (fn: () => void, ms: number) => {
      const id = nextId++;
      timers.push({ at: t + ms, fn, id });
      return id;
    },
    clearTimer: (id: unknown) => {
      timers = timers.filter((x) => x.id !== id);
    },
    advance(ms: number) {
      const end = t + ms;
      for (;;) {
        const due = timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers = timers.filter((x) => x !== due);
        t = due.at;
        due.fn();
      }
      t = end;
    },
    pending: () => timers.length,
  };
}

const msg = (stored: number, datasetId = 'ds-new', done = stored): Progress => ({
  stage: 'import',
  done,
  total: 1000,
  detail: { datasetId, stored },
});

function harness(openId: string | null = 'ds-old') {
  const c = clock();
  const events: string[] = [];
  let current = openId;
  const live = liveImport({
    openDatasetId: () => current,
    open: (id) => {
      current = id;
      events.push(`open ${id} @${c.now()}`);
    },
    refresh: () => events.push(`refresh @${c.now()}`),
    minGapMs: 500,
    now: c.now,
    setTimer: c.setTimer,
    clearTimer: c.clearTimer,
  });
  return { c, events, live };
}

describe('live import: the grid follows the import', () => {
  it('opens the new dataset on its first progress, then refreshes at most every 500 ms, the last batch included', () => {
    const { c, events, live } = harness();
    live.onProgress({ stage: 'reading', done: 0, total: 1000 }); // no detail yet: nothing happens
    live.onProgress(msg(0, 'ds-new', 0));
    expect(events).toEqual(['open ds-new @0']);
    // Items without a new batch do nothing.
    for (let i = 1; i < 32; i++) live.onProgress(msg(0, 'ds-new', i));
    c.advance(600);
    expect(events).toEqual(['open ds-new @0']);
    // Batches every 100 ms from t = 600: refresh right away, then no more than one per 500 ms.
    for (let b = 1; b <= 12; b++) {
      live.onProgress(msg(32 * b));
      c.advance(100);
    }
    expect(events.slice(1)).toEqual(['refresh @600', 'refresh @1100', 'refresh @1600']);
    // The last batch (t = 1700) is shown by the trailing refresh at 2100, without another message.
    c.advance(1000);
    expect(events.slice(1)).toEqual(['refresh @600', 'refresh @1100', 'refresh @1600', 'refresh @2100']);
    expect(c.pending()).toBe(0);
  });

  it('an import into the open dataset refreshes without reopening it; stop() cancels a pending refresh', () => {
    const { c, events, live } = harness('ds-open');
    live.onProgress(msg(0, 'ds-open'));
    live.onProgress(msg(32, 'ds-open'));
    live.onProgress(msg(64, 'ds-open'));
    expect(events).toEqual(['refresh @0']);
    expect(c.pending()).toBe(1);
    live.stop();
    c.advance(1000);
    live.onProgress(msg(96, 'ds-open'));
    expect(events).toEqual(['refresh @0']);
  });

  it('reads the detail only from messages that carry one', () => {
    expect(importDetail({ stage: 'import', done: 1, total: 2 })).toBeNull();
    expect(importDetail({ stage: 'x', done: 1, total: 2, detail: { loss: 1 } })).toBeNull();
    expect(importDetail(msg(5, 'a'))).toEqual({ datasetId: 'a', stored: 5 });
  });
});

describe('listing re-reads', () => {
  const rec = (id: string, over: Partial<ImageRecord> = {}): ImageRecord => ({
    id,
    datasetId: 'd',
    name: `${id}.png`,
    blob: new Blob([id]),
    mime: 'image/png',
    width: 4,
    height: 4,
    channels: 3,
    sha256: `sha-${id}`,
    thumbnail: new Blob([id]),
    label: 'normal',
    split: 'train',
    createdAt: 1,
    ...over,
  });

  it('keeps the grid’s record objects where nothing shown changed, and takes the new ones otherwise', () => {
    const prev = [rec('a'), rec('b'), rec('c')];
    const next = [rec('a'), rec('b', { label: 'defect' }), rec('c', { maskId: 'm1' }), rec('d')];
    const out = keepUnchanged(prev, next.slice());
    expect(out[0]).toBe(prev[0]);
    expect(out[1]).toBe(next[1]);
    expect(out[1].label).toBe('defect');
    expect(out[2]).toBe(next[2]);
    expect(out[3]).toBe(next[3]);
    expect(out.map((r) => r.id)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('runs one read at a time for the newest request, idle 2× the last read between reads, stale results flagged', async () => {
    let t = 0;
    const log: string[] = [];
    const gates: (() => void)[] = [];
    const sleeps: number[] = [];
    const load = latestOnly<string>(
      async (req, stale) => {
        log.push(`start ${req}`);
        await new Promise<void>((r) => gates.push(r));
        t += 100; // every read takes 100 ms
        log.push(`end ${req}${stale() ? ' (stale)' : ''}`);
      },
      {
        now: () => t,
        sleep: async (ms) => {
          sleeps.push(ms);
        },
        same: (a, b) => a[0] === b[0],
      },
    );
    const first = load('a1');
    void load('a2'); // waits for a1
    void load('a3'); // replaces a2
    await Promise.resolve();
    expect(log).toEqual(['start a1']);
    gates.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(log).toEqual(['start a1', 'end a1', 'start a3']);
    void load('b1'); // a different request: a3's result is stale
    gates.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(log.slice(2)).toEqual(['start a3', 'end a3 (stale)', 'start b1']);
    gates.shift()!();
    await first;
    await new Promise((r) => setTimeout(r, 0));
    expect(log.at(-1)).toBe('end b1');
    expect(sleeps).toEqual([200, 200]);
    // Quiet again: the next request starts at once.
    void load('c');
    await Promise.resolve();
    expect(log.at(-1)).toBe('start c');
    gates.shift()!();
  });
});
