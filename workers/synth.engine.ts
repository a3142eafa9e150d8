/**
 * The synth engine: the generator registry, single samples, batches with progress and cancel, and a throughput
 * benchmark, over `src/core/synth`. The same object runs inside `synth.worker.ts` and in-thread in tests and
 * Node. Result pixel buffers are transferred (not copied) back across the worker boundary; inputs are cloned, so
 * the caller's images stay usable.
 */
import type { RasterImage } from '../src/core/image.ts';
import type { ProgressFn } from '../src/core/progress.ts';
import {
  benchmarkMemseg,
  generateBatch,
  getGenerator,
  listGenerators,
  type BatchResult,
  type DefectResult,
  type GeneratorSchema,
  type Seed,
  type SynthBenchResult,
} from '../src/core/synth/index.ts';
import { JobRegistry, transfer, type Cancellable, type JobOptions } from './host.ts';

export interface SynthGenerateRequest {
  /** Registry name: 'memseg', 'random_walk', 'cutpaste', 'blur'. */
  generator: string;
  image: RasterImage;
  options?: Record<string, unknown>;
  seed: Seed;
}

export interface SynthBatchRequest {
  generator: string;
  /** Source images, used round-robin. */
  images: RasterImage[];
  /** Region masks aligned with `images` (or one for all); null = anywhere. */
  masks?: (RasterImage | null)[] | null;
  options?: Record<string, unknown>;
  n: number;
  seed: Seed;
}

export interface SynthEngineApi extends Cancellable {
  listGenerators(): Promise<GeneratorSchema[]>;
  generate(req: SynthGenerateRequest): Promise<DefectResult>;
  /**
   * `progress` repeats `opts.onProgress` as a top-level argument: comlink proxies only top-level arguments, so a
   * callback nested in `opts` cannot cross the worker boundary (the client passes it here).
   */
  generateBatch(req: SynthBatchRequest, opts?: JobOptions, progress?: ProgressFn): Promise<BatchResult>;
  /** MemSeg defects per second at width × height where this engine runs (the browser-worker bench figure). */
  benchmark(width: number, height: number, seconds?: number): Promise<SynthBenchResult>;
}

function buffersOf(results: { image: RasterImage; mask: RasterImage }[]): ArrayBufferLike[] {
  const out: ArrayBufferLike[] = [];
  for (const r of results) out.push(r.image.data.buffer, r.mask.data.buffer);
  return out;
}

export function createSynthEngine(): SynthEngineApi {
  const jobs = new JobRegistry();
  return {
    async listGenerators() {
      return listGenerators();
    },

    async generate(req) {
      const r = getGenerator(req.generator).fn(req.image, req.options ?? {}, req.seed);
      return transfer(r, buffersOf([r]));
    },

    async generateBatch(req, opts, progress) {
      const job = jobs.start(opts?.jobId);
      try {
        const r = await generateBatch(
          req.images,
          req.masks ?? null,
          req.generator,
          req.options ?? {},
          req.n,
          req.seed,
          { signal: job.signal, onProgress: progress ?? opts?.onProgress },
        );
        return transfer(r, buffersOf(r.samples));
      } finally {
        job.done();
      }
    },

    async benchmark(width, height, seconds = 2) {
      return benchmarkMemseg(width, height, { minSeconds: seconds });
    },

    cancel(jobId) {
      jobs.cancel(jobId);
    },
  };
}
