/**
 * The live onnxruntime sessions of one door. Neither onnxruntime-web nor onnxruntime-node reports how many
 * sessions a context holds, so a leak (a model loaded again without releasing the old one, a probe that forgets
 * its session) stays invisible until the tab runs out of memory. Each door therefore creates every
 * `InferenceSession` through a `SessionCounter` — the kernel self-check probes too — and a session counts until
 * its `release()` resolves. The long session (`tests/e2e/faults/long-run.spec.ts`) checks the count returns to
 * its baseline; the System panel shows it per worker (`announceSessions` in `threads.ts`).
 *
 * Structural (no onnxruntime import), so `tests/unit/ort-sessions.test.ts` drives it with a fake runtime too.
 */

/** What the counter needs of a session: onnxruntime's `release()`. */
export interface Releasable {
  release(): Promise<void>;
}

export class SessionCounter {
  private n = 0;
  private readonly listeners = new Set<(live: number) => void>();

  /** Sessions created and not yet released. */
  get live(): number {
    return this.n;
  }

  /** Calls `fn` with the new count after each change; returns the unsubscribe function. */
  onChange(fn: (live: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The session `create` makes, counted; a create that throws counts nothing. */
  async create<S extends Releasable>(create: () => Promise<S>): Promise<S> {
    return this.track(await create());
  }

  /**
   * Counts `s` until its `release()` resolves. Its `release` is replaced on the object (the door's callers hold
   * that object): a second call shares the first's promise and does not uncount twice, and a release that
   * throws leaves the session counted (onnxruntime may still hold it), so a later call can try again.
   */
  track<S extends Releasable>(s: S): S {
    const release = s.release.bind(s);
    let pending: Promise<void> | null = null;
    this.change(1);
    s.release = () => {
      pending ??= release().then(
        () => this.change(-1),
        (e: unknown) => {
          pending = null;
          throw e;
        },
      );
      return pending;
    };
    return s;
  }

  private change(by: number): void {
    this.n += by;
    for (const fn of this.listeners) fn(this.n);
  }
}
