/**
 * Main-thread client of the synth worker: the same `SynthEngineApi` as the engine, through comlink. Progress
 * callbacks are proxied; a crashed worker rejects pending calls with `WorkerCrashedError` and is restarted
 * by the next call (generators keep no state, so nothing needs reloading).
 */
import type {
  BatchResult,
  DefectResult,
  GeneratorSchema,
  SynthBenchResult,
} from '../src/core/synth/index.ts';
import { WorkerConnection, proxied, type JobOptions } from './host.ts';
import type { SamplesFn, SynthBatchRequest, SynthEngineApi, SynthGenerateRequest } from './synth.engine.ts';

export class SynthClient implements SynthEngineApi {
  private readonly conn = new WorkerConnection<SynthEngineApi>(
    () => new Worker(new URL('./synth.worker.ts', import.meta.url), { type: 'module', name: 'synth' }),
    'synth',
    'run the batch again; if it keeps happening, generate fewer or smaller images at a time',
  );

  listGenerators(): Promise<GeneratorSchema[]> {
    return this.conn.guard(this.conn.api.listGenerators());
  }

  generate(req: SynthGenerateRequest): Promise<DefectResult> {
    return this.conn.guard(this.conn.api.generate(req)) as Promise<DefectResult>;
  }

  /** With `opts.onSamples`, samples arrive while the batch runs and the result's `samples` is empty. */
  generateBatch(req: SynthBatchRequest, opts?: JobOptions & { onSamples?: SamplesFn }): Promise<BatchResult> {
    const { onSamples, ...rest } = opts ?? {};
    const [plain, progress] = WorkerConnection.split(rest);
    return this.conn.guard(
      this.conn.api.generateBatch(req, plain, progress, proxied(onSamples)),
    ) as Promise<BatchResult>;
  }

  benchmark(width: number, height: number, seconds?: number): Promise<SynthBenchResult> {
    return this.conn.guard(this.conn.api.benchmark(width, height, seconds));
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
