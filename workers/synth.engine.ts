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
  type BatchSample,
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
  /** Feather σ per image (or one for all), applied inside the region masks (see `generateBatch`). */
  feathers?: number[];
  /** Indices a previous run of this batch already made (resume after a reload): not generated again. */
  skip?: number[];
}

/**
 * Receives finished samples while a batch runs, in order, in small groups. When given, the batch's result has
 * `samples: []` (each sample crosses the boundary once) and a cancelled batch has already delivered what it made.
 */
export type SamplesFn = (samples: BatchSample[]) => void | Promise<void>;

/** Samples per streamed group, and the longest wait before a partial group goes out. */
const STREAM_GROUP = 4;
const STREAM_MS = 150;

export interface SynthEngineApi extends Cancellable {
  listGenerators(): Promise<GeneratorSchema[]>;
  generate(req: SynthGenerateRequest): Promise<DefectResult>;
  /**
   * `progress` repeats `opts.onProgress` as a top-level argument: comlink proxies only top-level arguments, so a
   * callback nested in `opts` cannot cross the worker boundary (the client passes it here).
   */
  generateBatch(
    req: SynthBatchRequest,
    opts?: JobOptions,
    progress?: ProgressFn,
    onSamples?: SamplesFn,
  ): Promise<BatchResult>;
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

    async generateBatch(req, opts, progress, onSamples) {
      const job = jobs.start(opts?.jobId);
      // Streamed samples go out in small groups: one message per sample would flood the port for fast
      // generators, one per batch would keep the strip empty until the end (and lose everything on cancel).
      let pending: BatchSample[] = [];
      let lastFlush = performance.now();
      const flush = async () => {
        if (!onSamples || pending.length === 0) return;
        const group = pending;
        pending = [];
        lastFlush = performance.now();
        // Awaited, so every sample has reached the client before the batch's result (or its cancel) does.
        await onSamples(transfer(group, buffersOf(group)));
      };
      try {
        const r = await generateBatch(
          req.images,
          req.masks ?? null,
          req.generator,
          req.options ?? {},
          req.n,
          req.seed,
          {
            signal: job.signal,
            feathers: req.feathers,
            skip: req.skip,
            onProgress: progress ?? opts?.onProgress,
            onSample: onSamples
              ? async (s) => {
                  pending.push(s);
                  if (pending.length >= STREAM_GROUP || performance.now() - lastFlush > STREAM_MS)
                    await flush();
                }
              : undefined,
          },
        );
        if (!onSamples) return transfer(r, buffersOf(r.samples));
        await flush();
        return { ...r, samples: [] };
      } catch (e) {
        // A cancelled batch still hands over what it made; those samples are the user's to keep.
        await flush().catch(() => undefined);
        throw e;
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
