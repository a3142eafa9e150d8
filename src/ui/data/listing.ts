/**
 * Re-reading the Data tab's listing (pure, unit-tested). The grid re-reads the whole listing when the dataset
 * changes — several times a second while an import lands batches — and every read gives new record objects
 * with new Blob handles, so every visible thumbnail would get a new object URL and flash while it decodes
 * again. `keepUnchanged` hands the grid the records it already has wherever nothing it shows has changed.
 */
import type { ImageRecord } from '../../core/dataset.ts';

/** What a record's cell and viewer show, apart from its (immutable) bytes and thumbnail. */
function sameShown(a: ImageRecord, b: ImageRecord): boolean {
  return (
    a.name === b.name &&
    a.label === b.label &&
    a.split === b.split &&
    a.defectClass === b.defectClass &&
    a.group === b.group &&
    a.maskId === b.maskId &&
    a.sha256 === b.sha256 &&
    a.createdAt === b.createdAt &&
    a.provenance?.generator === b.provenance?.generator
  );
}

/** `next`, with each record that `prev` holds unchanged (same id, same shown fields) replaced by `prev`'s. */
export function keepUnchanged(prev: readonly ImageRecord[], next: ImageRecord[]): ImageRecord[] {
  if (prev.length === 0) return next;
  const byId = new Map(prev.map((r) => [r.id, r]));
  for (let i = 0; i < next.length; i++) {
    const old = byId.get(next[i].id);
    if (old && sameShown(old, next[i])) next[i] = old;
  }
  return next;
}

/**
 * Runs `read` for the newest request only, one at a time: a request made while a read runs waits for it, and
 * the requests in between are dropped. After each read the runner stays idle for `idleFactor` × that read's
 * duration before the next, so a stream of requests (an import landing batches) keeps the main thread at most
 * 1 / (1 + idleFactor) busy with re-reads. `read` gets `stale()`: true once a different request is waiting,
 * so its result should not land.
 */
export function latestOnly<R>(
  read: (req: R, stale: () => boolean) => Promise<void>,
  opts: {
    idleFactor?: number;
    same?: (a: R, b: R) => boolean;
    now?: () => number;
    sleep?: (ms: number) => Promise<void>;
  } = {},
): (req: R) => Promise<void> {
  const factor = opts.idleFactor ?? 2;
  const same = opts.same ?? ((a: R, b: R) => a === b);
  const now = opts.now ?? (() => performance.now());
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let queued: { req: R } | null = null;
  let running: Promise<void> | null = null;
  const drain = async () => {
    while (queued) {
      const { req } = queued;
      queued = null;
      const t = now();
      await read(req, () => queued !== null && !same(queued.req, req));
      const took = now() - t;
      if (queued && factor > 0) await sleep(factor * took);
    }
  };
  const kick = (): Promise<void> => {
    if (running) return running;
    running = drain().finally(() => {
      running = null;
      // A request that came in after the loop's last check and before this ran.
      if (queued) void kick();
    });
    return running;
  };
  return (req) => {
    queued = { req };
    return kick();
  };
}
