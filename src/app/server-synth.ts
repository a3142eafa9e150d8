/**
 * The synth worker's `generateBatch`, run as a server `generate` job: same request, same `BatchResult`, same
 * progress callbacks and cancel-by-job-id, so the Generate tab can use it in place of `synthClient()` when
 * System → Compute says "Server". Pixels are the server's run of the same core `generateBatch` (identical to
 * the worker's for the same images and seed); each sample's params gain `backend: "server"` and the job id for
 * its provenance. Unlike the worker, samples arrive when the job ends (the server zips them), so a cancelled
 * server batch keeps nothing.
 */
import { DefectLabError } from '../core/errors.ts';
import type { RasterImage } from '../core/image.ts';
import type { ProgressFn } from '../core/progress.ts';
import type { BatchResult, BatchSample } from '../core/synth/index.ts';
import { decodeImage, encodePng } from '../runtime/decode.ts';
import type { ServerClient } from './server-client.ts';

/** The synth registry's names → the server's job generator names. */
const SERVER_NAME: Record<string, string> = {
  memseg: 'memseg',
  random_walk: 'random-walk',
  cutpaste: 'cutpaste',
  blur: 'blur',
};

export interface ServerBatchRequest {
  generator: string;
  images: RasterImage[];
  masks?: (RasterImage | null)[] | null;
  options?: Record<string, unknown>;
  n: number;
  seed: number | string;
  feathers?: number[];
}

/** What the Generate tab calls: the synth worker's client or `ServerSynth`. */
export interface BatchRunner {
  generateBatch(
    req: ServerBatchRequest,
    opts?: {
      jobId?: string;
      onProgress?: ProgressFn;
      onSamples?: (samples: BatchSample[]) => void | Promise<void>;
    },
  ): Promise<BatchResult>;
  cancel(jobId: string): void;
}

export function bytesToBase64(b: Uint8Array): string {
  let s = '';
  // Chunks keep String.fromCharCode's argument list small.
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

function isRaster(v: unknown): boolean {
  return typeof v === 'object' && v !== null && 'data' in v && 'width' in v && 'height' in v;
}

export class ServerSynth implements BatchRunner {
  private running = new Map<string, AbortController>();

  constructor(private client: ServerClient) {}

  async generateBatch(
    req: ServerBatchRequest,
    opts: {
      jobId?: string;
      onProgress?: ProgressFn;
      onSamples?: (samples: BatchSample[]) => void | Promise<void>;
    } = {},
  ): Promise<BatchResult> {
    const generator = SERVER_NAME[req.generator];
    if (!generator)
      throw new DefectLabError(
        'ServerGeneratorError',
        `the server does not run the ${req.generator} generator as a batch`,
        'switch System → Compute to "This browser" for it',
      );
    // Images inside the options (MemSeg's texture sources) travel as PNGs: { $png: base64 }.
    const png = (v: unknown) => (isRaster(v) ? { $png: bytesToBase64(encodePng(v as RasterImage, 1)) } : v);
    const options = Object.fromEntries(
      Object.entries(req.options ?? {}).map(([k, v]) => [k, Array.isArray(v) ? v.map(png) : png(v)]),
    );
    if (typeof req.seed !== 'number')
      throw new DefectLabError(
        'ServerGeneratorError',
        'the server takes numeric seeds',
        'use a number as the seed',
      );
    const ctl = new AbortController();
    if (opts.jobId) this.running.set(opts.jobId, ctl);
    try {
      const r = await this.client.run(
        {
          kind: 'generate',
          generator,
          images: req.images.map((im) => bytesToBase64(encodePng(im, 1))),
          ...(req.masks?.length
            ? { masks: req.masks.map((m) => (m ? bytesToBase64(encodePng(m, 1)) : null)) }
            : {}),
          ...(req.feathers ? { feathers: req.feathers } : {}),
          options,
          n: req.n,
          seed: req.seed,
        },
        { onProgress: opts.onProgress, signal: ctl.signal },
      );
      const listed = (r.manifest.samples ?? []) as {
        file: string;
        mask: string;
        seed: number;
        params: Record<string, unknown>;
        sourceIndex?: number;
        source: string;
      }[];
      const samples: BatchSample[] = [];
      for (const [index, s] of listed.entries()) {
        const image = (await decodeImage(r.files[s.file], s.file)).raster;
        const mask = (await decodeImage(r.files[s.mask], s.mask)).raster;
        samples.push({
          index,
          sourceIndex: s.sourceIndex ?? 0,
          generator: req.generator,
          seed: s.seed,
          image,
          mask,
          params: { ...s.params, backend: 'server', serverJob: r.status.id },
        });
      }
      const failures = r.files['failures.json']
        ? (JSON.parse(new TextDecoder().decode(r.files['failures.json'])) as BatchResult['failures'])
        : [];
      if (opts.onSamples) {
        await opts.onSamples(samples);
        return { generator: req.generator, samples: [], failures };
      }
      return { generator: req.generator, samples, failures };
    } finally {
      if (opts.jobId) this.running.delete(opts.jobId);
    }
  }

  /** As the worker's: stops the batch of that job id (here: cancels the server job). */
  cancel(jobId: string): void {
    this.running.get(jobId)?.abort();
  }
}
