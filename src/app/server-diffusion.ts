/**
 * The diffusion worker's `DiffusionEngineApi` (load, generate, loaded, unload, cancel) over server `generate`
 * jobs with DIAG diffusion, so the Paint tab's diffusion panel takes it in place of `diffusionClient()` when
 * System → Compute says "Server". `load` only checks that the server has the model (a folder under its
 * `--models`; nothing is downloaded into the browser); each `generate` is one job of one sample: the request's
 * image and mask uploaded as PNGs, the same settings (prompt, steps, guidance, strength, seed, "only masked"
 * padding, mask blur), per-step `denoise` progress from the job's events, Stop → the job is cancelled on the
 * server (reaching the running denoising loop). The result has the worker's shape: pasted-back image, mask, raw
 * generation, final latents and the pipeline's parameters; `backend` is where the server ran it, and
 * `serverBackend` ("server <url> (cpu)") is what the provenance records.
 */
import type { GenerateRequest, GenerateResult } from '../core/diffusion/index.ts';
import { DefectLabError } from '../core/errors.ts';
import type { ProgressFn } from '../core/progress.ts';
import { decodeImage, encodePng } from '../runtime/decode.ts';
import type { Backend } from '../runtime/ort.ts';
import type { ServerClient } from './server-client.ts';
import { ServerModelError } from './server-features.ts';
import { bytesToBase64 } from './server-synth.ts';

/** The part of the worker's `LoadRequest` the server needs: which model (its id is the server's folder). */
export interface ServerLoadRequest {
  manifest: { id: string; layout: string; resolution: number };
}

export interface ServerLoadedInfo {
  modelId: string;
  layout: string;
  resolution: number;
  components: Partial<Record<'unet', { backend: Backend; fallbackReason: string; partialFallback: string }>>;
  loadMs: number;
  warnings: string[];
  ortVersion: string;
  flavour: 'node';
}

export interface ServerEngineResult extends GenerateResult {
  modelId: string;
  backend: Backend;
  ms: number;
  unetMs: number[];
  /** "server <url> (<device>)": what a sample's provenance records as its backend. */
  serverBackend: string;
  serverJob: string;
}

const asBackend = (b: string): Backend => (b === 'cuda' ? 'cuda' : 'cpu');

export class ServerDiffusion {
  private model: ServerLoadedInfo | null = null;
  private running = new Map<string, AbortController>();

  constructor(readonly client: ServerClient) {}

  async load(
    req: ServerLoadRequest,
    _opts?: { jobId?: string; onProgress?: ProgressFn },
  ): Promise<ServerLoadedInfo> {
    const t0 = Date.now();
    const { capabilities } = await this.client.check();
    const id = req.manifest.id;
    if (!capabilities.models.includes(id))
      throw new ServerModelError(this.client.url, id, capabilities.models, 'diffusion model');
    const device =
      capabilities.ort.providers.includes('cuda') && capabilities.device !== 'cpu' ? 'cuda' : 'cpu';
    this.model = {
      modelId: id,
      layout: req.manifest.layout,
      resolution: req.manifest.resolution,
      components: { unet: { backend: device, fallbackReason: '', partialFallback: '' } },
      loadMs: Date.now() - t0,
      warnings: [],
      ortVersion: '',
      flavour: 'node',
    };
    return this.model;
  }

  /** Which of these model ids the server has (folders under its --models). */
  async available(ids: readonly string[]): Promise<string[]> {
    const { capabilities } = await this.client.check();
    return ids.filter((id) => capabilities.models.includes(id));
  }

  async loaded(): Promise<ServerLoadedInfo | null> {
    return this.model;
  }

  async unload(): Promise<void> {
    this.model = null;
  }

  async generate(
    req: GenerateRequest,
    opts: { jobId?: string; onProgress?: ProgressFn } = {},
  ): Promise<ServerEngineResult> {
    if (!this.model)
      throw new DefectLabError(
        'NoModelLoadedError',
        'no diffusion model is chosen for the server',
        'pick a model the server has (a folder under its --models) and press Generate again',
      );
    const ctl = new AbortController();
    if (opts.jobId) this.running.set(opts.jobId, ctl);
    try {
      const r = await this.client.run(
        {
          kind: 'generate',
          generator: 'diffusion',
          images: [bytesToBase64(encodePng(req.image, 1))],
          masks: [bytesToBase64(encodePng(req.mask, 1))],
          n: 1,
          seed: req.seed,
          diffusion: {
            model: this.model.modelId,
            prompt: req.prompt,
            ...(req.negativePrompt !== undefined ? { negativePrompt: req.negativePrompt } : {}),
            steps: req.steps,
            guidanceScale: req.guidanceScale,
            strength: req.strength,
            ...(req.onlyMasked ? { onlyMasked: true, padding: req.onlyMasked.padding } : {}),
            ...(req.maskBlur !== undefined ? { maskBlur: req.maskBlur } : {}),
          },
        },
        { signal: ctl.signal, onProgress: opts.onProgress },
      );
      const s = (
        r.manifest.samples as {
          file: string;
          mask: string;
          generated: string;
          latents: string;
          latentDims: [number, number, number, number];
          diffusionParams: GenerateResult['params'];
          params: { model: string; backend: string };
          ms: number;
        }[]
      )[0];
      const raster = async (name: string) => (await decodeImage(r.files[name], name)).raster;
      const lat = r.files[s.latents];
      return {
        image: await raster(s.file),
        mask: await raster(s.mask),
        generated: await raster(s.generated),
        latents: new Float32Array(lat.buffer.slice(lat.byteOffset, lat.byteOffset + lat.byteLength)),
        latentDims: s.latentDims,
        params: s.diffusionParams,
        modelId: s.params.model,
        backend: asBackend(s.params.backend),
        ms: s.ms,
        unetMs: [],
        serverBackend: `server ${this.client.url} (${s.params.backend})`,
        serverJob: r.status.id,
      };
    } finally {
      if (opts.jobId) this.running.delete(opts.jobId);
    }
  }

  /** As the worker's: stops that job's sample (here: cancels its server job). */
  cancel(jobId: string): void {
    this.running.get(jobId)?.abort();
  }
}
