/**
 * The Paint & generate tab's controller: the form's state, the painter's image, and the effects (store reads,
 * decoding, the synth worker) around the pure planning functions of `plan.ts` (which sources, which masks,
 * which textures, what provenance, which message). `GenerateView.svelte` is its markup; the batch runs through
 * the shared `Job` (progress, cancel, stale-message filtering).
 */
import type { ImageRecord, SampleProvenance } from '../../core/dataset.ts';
import { DefectLabError, errorInfo } from '../../core/errors.ts';
import type { RasterImage } from '../../core/image.ts';
import { countOn, fitMask } from '../../core/mask/index.ts';
import type { Progress } from '../../core/progress.ts';
import type { BatchResult, BatchSample } from '../../core/synth/index.ts';
import type { GeneratorSchema } from '../../core/synth/options.ts';
import { randomPerlinMask } from '../../core/synth/regionMask.ts';
import { decodeImage } from '../../runtime/decode.ts';
import type { BatchRecord, DefectLabStore } from '../../runtime/db/types.ts';
import { synthClient } from '../../../workers/synth.client.ts';
import type { SynthBatchRequest } from '../../../workers/synth.engine.ts';
import { loadComputeTarget } from '../../app/compute-target.ts';
import { ServerClient } from '../../app/server-client.ts';
import { ServerSynth, type BatchRunner } from '../../app/server-synth.ts';
import { Job, type JobContext, type JobOutcome } from '../components/job.svelte.ts';
import { MaskEditor } from '../painter/editor.ts';
import { app, getStore, toast, toastError } from '../state.svelte.ts';
import { featherOf, readMask, regionMaskOf, saveRegionMask } from './library.ts';
import {
  GenerationInputError,
  MAX_TEXTURES,
  batchSummary,
  cancelledSummary,
  cycleIndices,
  formDefaults,
  generatorOptions,
  pickSources,
  pickTextureImages,
  provenanceOptions,
  regionSeeds,
  sampleProvenance,
  takesTextures,
  type MaskMode,
  type SourceMode,
  type TextureMode,
  type TextureRef,
} from './plan.ts';
import { stageSamples } from './staging.svelte.ts';

/** What provenance needs of a batch; stored with its `BatchRecord` so a resumed batch labels samples the same. */
interface BatchContext {
  recordedOptions: Record<string, unknown>;
  batchSeed: number;
  maskMode: MaskMode;
  sourceImageIds: string[];
  maskIds: (string | undefined)[];
  regionSeeds: (string | undefined)[];
  textureMode?: TextureMode;
  textures?: TextureRef[];
}

/** A finished sample as a `BatchSampleRecord` keeps it: what the staging strip shows. */
interface StoredSample {
  image: RasterImage;
  mask: RasterImage;
  provenance: SampleProvenance;
}

function provenanceOf(c: BatchContext, s: BatchSample): SampleProvenance {
  return sampleProvenance({
    generator: s.generator,
    options: c.recordedOptions,
    params: s.params,
    seed: s.seed,
    batchSeed: c.batchSeed,
    maskMode: c.maskMode,
    sourceImageId: c.sourceImageIds[s.sourceIndex],
    maskId: c.maskIds[s.sourceIndex],
    regionSeed: c.regionSeeds[s.sourceIndex],
    textureMode: c.textureMode,
    textures: c.textures,
    featherSigma: typeof s.params.feather_sigma === 'number' ? s.params.feather_sigma : 0,
  });
}

/**
 * Runs `fn` holding the batch's Web Lock, so two tabs never run (or resume) the same batch. With `ifAvailable`,
 * a batch whose lock another tab holds is skipped. Without Web Locks `fn` just runs.
 */
async function withBatchLock<T>(
  id: string,
  fn: () => Promise<T>,
  ifAvailable = false,
): Promise<T | undefined> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks) return fn();
  return locks.request(`defectlab-batch-${id}`, { ifAvailable }, (lock) =>
    lock ? fn() : Promise.resolve(undefined),
  );
}

/** Drops a finished (or stopped) batch's record; a failure here only leaves a batch that resumes once more. */
async function dropBatch(store: DefectLabStore, id: string): Promise<void> {
  await store.deleteBatch(id).catch(() => undefined);
}

/** The store refused a batch's samples: that error, saying what the batch kept. */
function batchStopped(cause: unknown, made: number): DefectLabError {
  const info = errorInfo(cause);
  const problem = info.message.replace(`${info.code}: `, '').replace(/ — fix: [\s\S]*$/, '');
  return new DefectLabError(
    info.code,
    `${problem}; the batch stopped, the ${made} sample${made === 1 ? '' : 's'} made before ${made === 1 ? 'is' : 'are'} in the staging strip`,
    info.fix || 'try again',
    { cause },
  );
}

/** The generator entry that shows the diffusion panel instead of the synth form. */
export const DIFFUSION = 'diffusion';

/** Region masks aligned with the sources, where each came from, and the feather σ stored with it. */
interface RegionPlan {
  masks: (RasterImage | null)[] | null;
  ids: (string | undefined)[];
  seeds: (string | undefined)[];
  feathers: number[];
}

async function decodeBlob(rec: { blob: Blob; name: string }): Promise<RasterImage> {
  return (await decodeImage(new Uint8Array(await rec.blob.arrayBuffer()), rec.name)).raster;
}

export class GenerateController {
  images: ImageRecord[] = $state.raw([]);
  currentId = $state<string | null>(null);
  current = $state.raw<ImageRecord | null>(null);
  raster = $state.raw<RasterImage | null>(null);
  editor = $state.raw<MaskEditor | null>(null);
  loadingImage = $state(false);

  generators: GeneratorSchema[] = $state.raw([]);
  generator = $state('memseg');
  options: Record<string, unknown> = $state({});
  sourceMode: SourceMode = $state('current');
  sampledCount = $state(8);
  maskMode: MaskMode = $state('painted');
  librarySelected: string[] = $state([]);
  count = $state(8);
  seed = $state(1);
  lastFailures = $state(0);

  /** Texture sources for generators that take texture images (MemSeg). */
  textureMode: TextureMode = $state('procedural');
  textureCount = $state(8);
  textureFiles: { name: string; raster: RasterImage }[] = $state.raw([]);
  loadingTextures = $state(false);

  /** What the diffusion panel gets: source image ids, stored region mask ids, the masks' feather σ. */
  diffusionSources: string[] = $state([]);
  diffusionMasks: string[] = $state([]);
  diffusionBlur = $state(0);

  /** Where the running batch goes: this browser's synth worker, or the server chosen in System → Compute. */
  #runner: BatchRunner | null = null;
  /** Samples the running batch has staged (a resumed batch counts those made before the reload). */
  #made = 0;
  readonly job = new Job<Progress>({
    cancel: (id) => (this.#runner ?? synthClient()).cancel(id),
    prefix: 'gen',
  });

  readonly schema = $derived(this.generators.find((g) => g.name === this.generator) ?? null);
  readonly texturable = $derived(!!this.schema && takesTextures(this.schema.options));

  #optionsFor = '';
  #opened: string | null = null;

  async listGenerators(): Promise<void> {
    try {
      const list = await synthClient().listGenerators();
      this.generators = list;
      if (!list.some((g) => g.name === this.generator) && this.generator !== DIFFUSION)
        this.generator = list[0]?.name ?? this.generator;
    } catch (e) {
      toastError(e, 'Could not list the generators');
    }
  }

  /** Takes the Paint tab's settings of an opened share link (its options stay: marked as that generator's). */
  applyShared(p: {
    generator: string;
    count: number;
    seed: number;
    sourceMode?: SourceMode;
    sampledCount?: number;
    maskMode?: MaskMode;
    textureMode?: TextureMode;
    textureCount?: number;
    optionsFor?: string;
    options?: Record<string, unknown>;
  }): void {
    this.generator = p.generator;
    this.count = p.count;
    this.seed = p.seed;
    if (p.sourceMode) this.sourceMode = p.sourceMode;
    if (p.sampledCount !== undefined) this.sampledCount = p.sampledCount;
    if (p.maskMode) this.maskMode = p.maskMode;
    if (p.textureMode) this.textureMode = p.textureMode;
    if (p.textureCount !== undefined) this.textureCount = p.textureCount;
    if (p.options && p.optionsFor === p.generator) {
      this.#optionsFor = p.generator;
      this.options = p.options;
    }
  }

  /** Resets the form to the generator's defaults when the generator changed. */
  syncOptions(): void {
    const schema = this.schema;
    if (schema && this.#optionsFor !== schema.name) {
      this.#optionsFor = schema.name;
      this.options = formDefaults(schema.options);
    }
  }

  async loadImages(datasetId: string | null): Promise<void> {
    if (!datasetId) {
      this.images = [];
      this.currentId = null;
      return;
    }
    try {
      const store = await getStore();
      const list = await store.listImages(datasetId);
      // A sort key only, never rendered: a plain Set.
      // eslint-disable-next-line svelte/prefer-svelte-reactivity
      const sel = new Set(app.selectedImageIds);
      // Selected images first, then normals (the usual canvas for synthetic defects), then the rest.
      const rank = (i: ImageRecord) => (sel.has(i.id) ? 0 : i.label === 'normal' ? 1 : 2);
      list.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
      if (datasetId !== app.datasetId) return;
      this.images = list;
      if (this.currentId && !list.some((i) => i.id === this.currentId)) this.currentId = null;
      if (!this.currentId && list.length) this.currentId = list[0].id;
    } catch (e) {
      toastError(e, 'Could not list the images');
    }
  }

  /** Opens `currentId` in the painter once per change of id; no id clears the painter. */
  syncPainter(): void {
    const id = this.currentId;
    if (id && id !== this.#opened) {
      this.#opened = id;
      void this.#openImage(id);
    }
    if (!id) {
      this.#opened = null;
      this.current = null;
      this.raster = null;
      this.editor = null;
    }
  }

  async #openImage(id: string): Promise<void> {
    this.loadingImage = true;
    try {
      const store = await getStore();
      const rec = await store.getImage(id);
      if (!rec) return;
      const r = await decodeBlob(rec);
      const region = await regionMaskOf(store, rec.datasetId, rec.id);
      const mask = region ? fitMask(await readMask(region), r.width, r.height) : undefined;
      if (this.currentId !== id) return;
      const ed = new MaskEditor(r.width, r.height, mask);
      ed.brush = { size: Math.max(4, Math.round(Math.max(r.width, r.height) / 12)), hardness: 0.8 };
      // The region comes back with the feather it was saved with.
      ed.featherSigma = featherOf(region);
      this.current = rec;
      this.raster = r;
      this.editor = ed;
    } catch (e) {
      toastError(e, 'Could not open the image');
    } finally {
      this.loadingImage = false;
    }
  }

  async #sourceRecords(): Promise<ImageRecord[]> {
    let selected: ImageRecord[] = [];
    if (this.sourceMode === 'selection') {
      const store = await getStore();
      selected = (await Promise.all(app.selectedImageIds.map((id) => store.getImage(id)))).filter(
        (r): r is ImageRecord => !!r,
      );
    }
    return pickSources(this.sourceMode, {
      current: this.current,
      selected,
      images: this.images,
      sampledCount: this.sampledCount,
      seed: this.seed,
    });
  }

  #decodeRecord(rec: ImageRecord): Promise<RasterImage> {
    if (rec.id === this.current?.id && this.raster) return Promise.resolve(this.raster);
    return decodeBlob(rec);
  }

  /** The texture images of this batch (none for procedural textures) and what each one is, for provenance. */
  async #textureImages(
    recs: ImageRecord[],
  ): Promise<{ mode: TextureMode; images: RasterImage[]; refs: TextureRef[] }> {
    const mode = this.textureMode;
    if (mode === 'procedural') return { mode, images: [], refs: [] };
    if (mode === 'files') {
      if (!this.textureFiles.length)
        throw new GenerationInputError(
          'no texture image files are loaded',
          'pick image files as textures, or choose another texture source',
        );
      return {
        mode,
        images: this.textureFiles.map((f) => f.raster),
        refs: this.textureFiles.map((f) => ({ kind: 'file', name: f.name })),
      };
    }
    const picked = pickTextureImages(
      this.images,
      recs.map((r) => r.id),
      this.textureCount,
      this.seed,
    );
    return {
      mode,
      images: await Promise.all(picked.map((r) => this.#decodeRecord(r))),
      refs: picked.map((r) => ({ kind: 'dataset', imageId: r.id, name: r.name })),
    };
  }

  async loadTextureFiles(files: FileList | null): Promise<void> {
    if (!files?.length) return;
    this.loadingTextures = true;
    try {
      const out: { name: string; raster: RasterImage }[] = [];
      for (const f of [...files].slice(0, MAX_TEXTURES))
        out.push({
          name: f.name,
          raster: (await decodeImage(new Uint8Array(await f.arrayBuffer()), f.name)).raster,
        });
      this.textureFiles = out;
      if (files.length > MAX_TEXTURES)
        toast('warn', `Only the first ${MAX_TEXTURES} of ${files.length} texture files are used.`);
    } catch (e) {
      toastError(e, 'Could not read the texture images');
    } finally {
      this.loadingTextures = false;
    }
  }

  /** Region masks of the batch for the mask mode (random regions are never feathered). */
  async #regionMasks(recs: ImageRecord[], rasters: RasterImage[]): Promise<RegionPlan> {
    const store = await getStore();
    const none = recs.map(() => undefined);
    const zero = recs.map(() => 0);
    switch (this.maskMode) {
      case 'none':
        return { masks: null, ids: none, seeds: none, feathers: zero };
      case 'painted': {
        const { editor, current } = this;
        if (!editor || !current)
          throw new GenerationInputError(
            'nothing is painted',
            'open an image and paint where defects may go',
          );
        const painted = editor.snapshot();
        if (countOn(painted) === 0)
          throw new GenerationInputError(
            'the painted mask is empty',
            'paint where defects may go, or pick another mask source',
          );
        // The painted region is stored with its image (and its feather), so provenance can point at it.
        const rec = await saveRegionMask(store, current.datasetId, current, painted, editor.featherSigma);
        return {
          masks: rasters.map((r) => fitMask(painted, r.width, r.height)),
          ids: recs.map(() => rec.id),
          seeds: none,
          feathers: recs.map(() => featherOf(rec)),
        };
      }
      case 'library': {
        const selected = this.librarySelected;
        if (!selected.length)
          throw new GenerationInputError(
            'no library mask is selected',
            'tick one or more masks in the library',
          );
        const lib = await Promise.all(selected.map((id) => store.getMask(id)));
        const masks = await Promise.all(lib.map((m) => (m ? readMask(m) : null)));
        const pick = cycleIndices(recs.length, selected.length);
        return {
          masks: rasters.map((r, i) => {
            const m = masks[pick[i]];
            return m ? fitMask(m, r.width, r.height) : null;
          }),
          ids: pick.map((k) => selected[k]),
          seeds: none,
          feathers: pick.map((k) => featherOf(lib[k])),
        };
      }
      case 'image-region': {
        const regs = await Promise.all(recs.map((r) => regionMaskOf(store, r.datasetId, r.id)));
        const masks = await Promise.all(
          regs.map(async (m, i) =>
            m ? fitMask(await readMask(m), rasters[i].width, rasters[i].height) : null,
          ),
        );
        return { masks, ids: regs.map((m) => m?.id), seeds: none, feathers: regs.map((m) => featherOf(m)) };
      }
      case 'random': {
        const seeds = regionSeeds(this.seed, recs.length);
        return {
          masks: rasters.map((r, i) => randomPerlinMask(r.width, r.height, {}, seeds[i]).mask),
          ids: none,
          seeds,
          feathers: zero,
        };
      }
    }
  }

  /**
   * Runs one synth batch; samples reach the staging strip as they are made, so a cancel keeps them. A batch on
   * this browser's worker is durable (`BatchRecord` + one `BatchSampleRecord` per finished sample, written before
   * the sample is staged): a reload mid-batch resumes it (`resumeBatches`), and a write the store refuses (quota)
   * stops the batch with what was made before kept.
   */
  async run(): Promise<void> {
    if (this.job.running || this.generator === DIFFUSION) return;
    this.lastFailures = 0;
    const { generator, count, maskMode } = this;
    const batchSeed = this.seed;
    const datasetId = app.datasetId;
    const outcome = await this.job.run(
      async (ctx) => {
        const recs = await this.#sourceRecords();
        const rasters = await Promise.all(recs.map((r) => this.#decodeRecord(r)));
        const { masks, ids, seeds, feathers } = await this.#regionMasks(recs, rasters);
        const schema = this.schema;
        if (!schema)
          throw new GenerationInputError(`unknown generator ${generator}`, 'pick a generator from the list');
        const tex = this.texturable ? await this.#textureImages(recs) : null;
        const opts = generatorOptions(
          schema.options,
          $state.snapshot(this.options) as Record<string, unknown>,
          tex?.images,
        );
        const context: BatchContext = {
          recordedOptions: provenanceOptions(schema.options, opts),
          batchSeed,
          maskMode,
          sourceImageIds: recs.map((r) => r.id),
          maskIds: ids,
          regionSeeds: seeds,
          textureMode: tex?.mode,
          textures: tex?.refs,
        };
        // Feathered regions: the worker blends each sample back with its region's soft edge.
        const req: SynthBatchRequest = {
          generator,
          images: rasters,
          masks,
          options: opts,
          n: count,
          seed: batchSeed,
          feathers,
        };
        // System → Compute: this browser's synth worker, or the chosen server (same request, progress and Stop).
        const store = await getStore();
        const target = await loadComputeTarget(store);
        if (target.mode === 'server')
          return this.#execute(ctx, new ServerSynth(new ServerClient(target)), req, context, null);
        const batch: BatchRecord = {
          id: crypto.randomUUID(),
          datasetId,
          n: count,
          request: req,
          context,
          createdAt: Date.now(),
        };
        // The batch is on record before its first sample, so a reload from now on resumes it.
        await store.putBatch(batch);
        return withBatchLock(batch.id, () =>
          this.#execute(ctx, synthClient(), req, context, { store, batch, done: [] }),
        ).finally(() => dropBatch(store, batch.id));
      },
      { stage: 'prepare', done: 0, total: count, message: 'reading images' },
    );
    this.#report(outcome, count);
  }

  /**
   * Resumes the batches a reload interrupted (called when the tab opens): their stored samples go back to the
   * staging strip and only the missing indices are generated, so each batch ends with its N samples once. A batch
   * another tab is running (its Web Lock is held) is left to that tab.
   */
  async resumeBatches(): Promise<void> {
    if (this.job.running) return;
    let store: DefectLabStore;
    let batches: BatchRecord[];
    try {
      store = await getStore();
      batches = await store.listBatches();
    } catch (e) {
      toastError(e, 'Could not read the interrupted batches');
      return;
    }
    for (const batch of batches) {
      if (this.job.running) return;
      await withBatchLock(
        batch.id,
        async () => {
          const stored = await store.batchSamples(batch.id);
          const done = stored.map((r) => r.index);
          stageSamples(
            stored.map((r) => ({ ...(r.sample as StoredSample), datasetId: batch.datasetId ?? undefined })),
          );
          const req = batch.request as SynthBatchRequest;
          const context = batch.context as BatchContext;
          if (done.length >= batch.n) {
            await dropBatch(store, batch.id);
            return;
          }
          toast(
            'info',
            `Resuming the ${req.generator} batch interrupted by a reload: ${done.length} of ${batch.n} samples were made before it.`,
          );
          const outcome = await this.job.run(
            (ctx) =>
              this.#execute(ctx, synthClient(), { ...req, skip: done }, context, {
                store,
                batch,
                done,
              }).finally(() => dropBatch(store, batch.id)),
            { stage: 'generate', done: done.length, total: batch.n, message: 'resuming' },
          );
          this.#report(outcome, batch.n);
        },
        true,
      );
    }
  }

  /**
   * Streams one batch into the staging strip. With `durable`, each group of samples is stored first (in order,
   * one transaction per group) and staged once stored; a refused write cancels the batch and ends it with that
   * error, the samples before it kept.
   */
  async #execute(
    ctx: JobContext<Progress>,
    runner: BatchRunner,
    req: SynthBatchRequest,
    context: BatchContext,
    durable: { store: DefectLabStore; batch: BatchRecord; done: number[] } | null,
  ): Promise<BatchResult & { made: number }> {
    const id = ctx.id;
    this.#runner = runner;
    let made = (this.#made = durable?.done.length ?? 0);
    let writes = Promise.resolve();
    let storeError: unknown = null;
    const onSamples = (samples: BatchSample[]) => {
      const staged = samples.map((s) => ({
        image: s.image,
        mask: s.mask,
        provenance: provenanceOf(context, s),
        datasetId: durable?.batch.datasetId ?? undefined,
      }));
      if (!durable) {
        this.#made = made += staged.length;
        stageSamples(staged);
        return;
      }
      writes = writes.then(async () => {
        if (storeError) return;
        try {
          await durable.store.addBatchSamples(
            samples.map((s, i) => ({
              batchId: durable.batch.id,
              index: s.index,
              sample: { image: staged[i].image, mask: staged[i].mask, provenance: staged[i].provenance },
            })),
          );
          this.#made = made += staged.length;
          stageSamples(staged);
        } catch (e) {
          storeError = e;
          runner.cancel(id);
        }
      });
    };
    let result: BatchResult | null = null;
    let runError: unknown = null;
    try {
      result = await runner.generateBatch(req, {
        jobId: id,
        onProgress: (p) => ctx.progress(p, id),
        onSamples,
      });
    } catch (e) {
      runError = e;
    }
    await writes;
    if (storeError) throw batchStopped(storeError, made);
    if (runError) throw runError instanceof Error ? runError : new Error(String(runError));
    return { ...result!, made };
  }

  /** `value` is undefined only when a batch lock was not granted, which a new batch's wait never is. */
  #report(outcome: JobOutcome<(BatchResult & { made: number }) | undefined>, count: number): void {
    if (outcome.status === 'done' && outcome.value) {
      this.lastFailures = outcome.value.failures.length;
      const m = batchSummary(outcome.value.made, count, outcome.value.failures);
      toast(m.level, m.text);
    } else if (outcome.status === 'cancelled') toast('info', cancelledSummary(this.#made));
    else if (outcome.status === 'failed') toast('error', `Generation failed: ${outcome.error.message}`, 0);
  }

  cancel(): void {
    this.job.cancel();
  }

  /** Diffusion: the panel gets source image ids and stored region mask ids (the painted mask is stored first). */
  async prepareDiffusion(): Promise<void> {
    try {
      const recs = await this.#sourceRecords();
      this.diffusionSources = recs.map((r) => r.id);
      const store = await getStore();
      const { editor, current } = this;
      // The feather σ saved with the (first) mask becomes the panel's paste-back blur default.
      let blur = 0;
      if (this.maskMode === 'library') {
        this.diffusionMasks = [...this.librarySelected];
        blur = this.librarySelected.length ? featherOf(await store.getMask(this.librarySelected[0])) : 0;
      } else if (this.maskMode === 'painted' && editor && current && countOn(editor.mask) > 0) {
        const rec = await saveRegionMask(
          store,
          current.datasetId,
          current,
          editor.snapshot(),
          editor.featherSigma,
        );
        this.diffusionMasks = [rec.id];
        blur = featherOf(rec);
      } else if (this.maskMode === 'image-region') {
        const regs = await Promise.all(recs.map((r) => regionMaskOf(store, r.datasetId, r.id)));
        const have = regs.filter((m) => !!m);
        this.diffusionMasks = have.map((m) => m.id);
        blur = featherOf(have[0]);
      } else this.diffusionMasks = [];
      this.diffusionBlur = blur;
    } catch (e) {
      toastError(e, 'Could not prepare diffusion');
    }
  }
}
