/**
 * The experiments worker's API with its grid run as a server `experiment` job, so the Experiments panel takes it
 * in place of the worker client when System → Compute says "Server" (the panel does not branch).
 *
 * `runExperiment` builds the dataset's pools from IndexedDB with `storeExperimentData` (the function the local
 * engine uses, so the same images land in the same pools in the same order), uploads them with the job
 * (`upload`: pools, labels, classes, ground-truth and region masks; no path on the server is named), and
 * follows the job's progress and Stop like a worker job. The finished cells (with their scores) are stored as
 * the local runner stores them (`RunRecordCellStore`, keyed by experiment id), each record's config saying
 * `backend: "server <url>"`; a failed, stopped or unreachable run stores nothing. The same experiment id resumes
 * as on the worker: the finished cells stored here go with the job (`resume`) and the server skips them. Backbone loading, stored-cell
 * listing and the rest are the local client's (`local`), so the panel's backbone info stays what the tab loaded;
 * the server loads its own copy from `<--models>/<id>/model.onnx` with the same preprocessing.
 */
import {
  RunRecordCellStore,
  type CellResult,
  type ExperimentImage,
  type GridSpec,
  type RunStoreLike,
  type TableRow,
} from '../core/experiments/index.ts';
import { DefectLabError } from '../core/errors.ts';
import type { ProgressFn } from '../core/progress.ts';
import { BACKBONES } from '../runtime/backbone.ts';
import { encodePng } from '../runtime/decode.ts';
import type { DefectLabStore } from '../runtime/db/types.ts';
import type { ServerClient } from './server-client.ts';
import { ServerFeatures, uploadBytes, type BackboneRef } from './server-features.ts';
import { bytesToBase64 } from './server-synth.ts';
import { imageIdOf, storeExperimentData, type Decode } from './store-experiment.ts';

/** What the local (worker) client offers and this keeps: a structural part of the experiments worker's API. */
export interface LocalExperiments {
  backboneInfo(): Promise<BackboneRef | null>;
  cancel(jobId: string): Promise<void> | void;
}

export interface ServerExperimentRequest {
  datasetId: string;
  experimentId: string;
  spec: GridSpec;
  tfBackend?: string;
}

export interface ServerExperimentSummary {
  experimentId: string;
  cells: Omit<CellResult, 'scores'>[];
  table: TableRow[];
  warnings: string[];
  resumed: number;
  tfBackend: string;
  tfBackendReason: string;
}

const POOLS = ['trainNormals', 'realDefects', 'acceptedSynthetic', 'validation', 'test'] as const;

/** The methods that run on the server; everything else stays the local client's. */
export const SERVER_METHODS = [
  'runExperiment',
  'diffusionModels',
  'extractImages',
  'extractDataset',
  'cancel',
] as const;

/**
 * The local client with `SERVER_METHODS` answered by `server`: the same interface (TypeScript checks it where a
 * view takes the result as its API), so the view does not branch on where its work runs.
 */
export function withServer<L extends object, S extends object>(
  local: L,
  server: S,
  methods: readonly (keyof S)[],
): Omit<L, keyof S> & S {
  const mine = new Set<PropertyKey>(methods);
  return new Proxy(local, {
    get(target, key) {
      const owner = mine.has(key) ? server : target;
      const v = Reflect.get(owner, key, owner) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(owner) : v;
    },
  }) as unknown as Omit<L, keyof S> & S;
}

export class ServerExperiments {
  private running = new Map<string, AbortController>();
  readonly features: ServerFeatures;

  constructor(
    readonly local: LocalExperiments,
    readonly client: ServerClient,
    private store: () => Promise<DefectLabStore>,
    private decode: Decode,
  ) {
    this.features = new ServerFeatures(client, store, () => local.backboneInfo());
  }

  /** The worker client `local` with the grid, the extraction, the diffusion list and Stop on the server. */
  static over<L extends LocalExperiments>(
    local: L,
    client: ServerClient,
    store: () => Promise<DefectLabStore>,
    decode: Decode,
  ) {
    const s = new ServerExperiments(local, client, store, decode);
    const part = {
      runExperiment: s.runExperiment.bind(s),
      diffusionModels: s.diffusionModels.bind(s),
      extractImages: s.features.extractImages.bind(s.features),
      extractDataset: s.features.extractDataset.bind(s.features),
      cancel: s.cancel.bind(s),
    };
    return withServer(local, part, SERVER_METHODS);
  }

  /** Diffusion models the server's grid can use: its --models folders that are not backbones. */
  async diffusionModels(): Promise<{ models: { id: string; name: string }[]; reason: string }> {
    try {
      const { capabilities } = await this.client.check();
      const backbones = new Set(BACKBONES.map((b) => b.id));
      const models = capabilities.models
        .filter((m) => !backbones.has(m))
        .map((id) => ({ id, name: `${id} (on the server)` }));
      return {
        models,
        reason: models.length ? '' : `the server at ${this.client.url} has no diffusion model under --models`,
      };
    } catch (e) {
      return { models: [], reason: e instanceof Error ? e.message : String(e) };
    }
  }

  /** The dataset's pools as the job's `upload` (stored file bytes; masks as PNG). */
  private async upload(datasetId: string) {
    const db = await this.store();
    const { data } = await storeExperimentData(db, datasetId, this.decode);
    const records = new Map((await db.listImages(datasetId)).map((r) => [imageIdOf(r), r]));
    const images: string[] = [];
    const masks: string[] = [];
    const items: Record<string, unknown>[] = [];
    for (const pool of POOLS)
      for (const im of (data[pool] ?? []) as ExperimentImage[]) {
        const rec = records.get(im.id);
        images.push(
          rec ? await uploadBytes(rec.blob, im.load) : bytesToBase64(encodePng(await im.load(), 1)),
        );
        const mask = (await im.loadMask?.()) ?? null;
        if (mask) masks.push(bytesToBase64(encodePng(mask, 1)));
        items.push({
          id: im.id,
          pool,
          label: im.label,
          ...(im.defectClass !== undefined ? { defectClass: im.defectClass } : {}),
          ...(im.generator !== undefined ? { generator: im.generator } : {}),
          ...(im.size ? { width: im.size.width, height: im.size.height } : {}),
          image: images.length - 1,
          ...(mask ? { mask: masks.length - 1 } : {}),
        });
      }
    const regionMasks: number[] = [];
    for (const m of (await data.regionMasks?.()) ?? []) {
      masks.push(bytesToBase64(encodePng(m, 1)));
      regionMasks.push(masks.length - 1);
    }
    if (data.trainNormals.length < 2)
      throw new DefectLabError(
        'NoTrainingDataError',
        `dataset has ${data.trainNormals.length} train-split normal images (need ≥ 2)`,
        'label some train-split images normal (and test images both ways) in the data tab',
      );
    return { name: data.name, images, masks, items, regionMasks };
  }

  /** As the worker's `runExperiment`, on the server. */
  async runExperiment(
    req: ServerExperimentRequest,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<ServerExperimentSummary> {
    const b = await this.local.backboneInfo();
    if (!b)
      throw new DefectLabError(
        'NoBackboneError',
        'no backbone is loaded',
        'load a backbone in the Train tab first',
      );
    const ctl = new AbortController();
    if (jobId) this.running.set(jobId, ctl);
    try {
      const model = await this.features.modelFor(b.id);
      const up = await this.upload(req.datasetId);
      const db = await this.store();
      const backend = `server ${this.client.url}`;
      let serverJob = '';
      // The local runner's records, each saying where it ran.
      const tagged: RunStoreLike = {
        getRun: (id) => db.getRun(id),
        listRuns: (d) => db.listRuns(d),
        putRun: (run) => db.putRun({ ...run, config: { ...run.config, backend, serverJob } }),
      };
      const cellStore = new RunRecordCellStore(tagged, req.datasetId, req.experimentId);
      // Same id = resume, as on the worker: the cells stored here go along and the server skips them.
      const stored = (await cellStore.list()).filter((c) => c.status === 'done');
      // A plain JSON copy: the spec may come from a Svelte $state proxy.
      const config = {
        ...(JSON.parse(JSON.stringify(req.spec)) as Record<string, unknown>),
        backbone: model,
      };
      const r = await this.client.run(
        {
          kind: 'experiment',
          config,
          images: up.images,
          ...(up.masks.length ? { masks: up.masks } : {}),
          upload: { name: up.name, items: up.items, regionMasks: up.regionMasks },
          preprocess: { ...b.preprocess, mean: [...b.preprocess.mean], std: [...b.preprocess.std] },
          ...(stored.length ? { resume: stored } : {}),
        },
        { signal: ctl.signal, onProgress: progress },
      );
      serverJob = r.status.id;
      const text = (name: string) => new TextDecoder().decode(r.files[name]);
      const result = JSON.parse(text('result.json')) as {
        table: TableRow[];
        warnings?: string[];
        backend?: string;
      };
      const cells = JSON.parse(text('cells.json')) as CellResult[];
      const resumed = new Set(stored.map((c) => c.id));
      for (const c of cells) if (!resumed.has(c.id)) await cellStore.put(c);
      return {
        experimentId: req.experimentId,
        cells: cells.map(({ scores: _s, ...rest }) => rest),
        table: result.table,
        warnings: result.warnings ?? [],
        resumed: typeof r.status.summary?.resumed === 'number' ? r.status.summary.resumed : 0,
        tfBackend: backend,
        tfBackendReason: `backbone on ${result.backend ?? 'the server'}, heads in the server's tfjs`,
      };
    } finally {
      if (jobId) this.running.delete(jobId);
    }
  }

  /** Stops a server grid or extraction of that job id; the local client's own jobs too. */
  async cancel(jobId: string): Promise<void> {
    this.running.get(jobId)?.abort();
    this.features.cancel(jobId);
    await this.local.cancel(jobId);
  }
}
