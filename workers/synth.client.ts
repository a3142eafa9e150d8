/**
 * Main-thread client of the synth worker: the same `SynthEngineApi` as the engine, through comlink. Progress
 * callbacks are proxied; a crashed worker rejects pending calls with `SynthWorkerCrashedError` and is restarted
 * by the next call (generators keep no state, so nothing needs reloading).
 */
import * as Comlink from 'comlink';
import { DefectLabError } from '../src/core/errors.ts';
import type {
  BatchResult,
  DefectResult,
  GeneratorSchema,
  SynthBenchResult,
} from '../src/core/synth/index.ts';
import { WorkerConnection, type JobOptions } from './host.ts';
import type { SynthBatchRequest, SynthEngineApi, SynthGenerateRequest } from './synth.engine.ts';

export class SynthWorkerCrashedError extends DefectLabError {
  constructor(reason: string) {
    super(
      'SynthWorkerCrashedError',
      `the synth worker stopped (${reason})`,
      'run the batch again; if it keeps happening, generate fewer or smaller images at a time',
    );
  }
}

export class SynthClient implements SynthEngineApi {
  private readonly conn = new WorkerConnection<SynthEngineApi>(
    () => new Worker(new URL('./synth.worker.ts', import.meta.url), { type: 'module', name: 'synth' }),
  );
  private crash: ((e: Error) => void)[] = [];

  constructor() {
    this.conn.onDeath((reason) => {
      const fns = this.crash;
      this.crash = [];
      for (const fn of fns) fn(new SynthWorkerCrashedError(reason));
    });
  }

  /** Races a call against the worker dying, so a crash rejects instead of hanging. */
  private guard<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onCrash = (e: Error) => reject(e);
      this.crash.push(onCrash);
      p.then(resolve, reject).finally(() => (this.crash = this.crash.filter((f) => f !== onCrash)));
    });
  }

  listGenerators(): Promise<GeneratorSchema[]> {
    return this.guard(this.conn.api.listGenerators());
  }

  generate(req: SynthGenerateRequest): Promise<DefectResult> {
    return this.guard(this.conn.api.generate(req)) as Promise<DefectResult>;
  }

  generateBatch(req: SynthBatchRequest, opts?: JobOptions): Promise<BatchResult> {
    // The callback goes as its own argument: comlink proxies top-level arguments only.
    const progress = opts?.onProgress ? Comlink.proxy(opts.onProgress) : undefined;
    return this.guard(
      this.conn.api.generateBatch(req, { jobId: opts?.jobId }, progress),
    ) as Promise<BatchResult>;
  }

  benchmark(width: number, height: number, seconds?: number): Promise<SynthBenchResult> {
    return this.guard(this.conn.api.benchmark(width, height, seconds));
  }

  cancel(jobId: string): void {
    void this.conn.api.cancel(jobId);
  }

  terminate(): void {
    this.conn.terminate();
  }
}

let shared: SynthClient | null = null;
/** The app's synth worker. */
export function synthClient(): SynthClient {
  shared ??= new SynthClient();
  return shared;
}
