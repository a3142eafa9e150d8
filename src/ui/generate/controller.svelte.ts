/**
 * The Paint & generate tab's controller: the form's state, the painter's image, and the effects (store reads,
 * decoding, the synth worker) around the pure planning functions of `plan.ts` (which sources, which masks,
 * which textures, what provenance, which message). `GenerateView.svelte` is its markup; the batch runs through
 * the shared `Job` (progress, cancel, stale-message filtering).
 */
import type { ImageRecord } from '../../core/dataset.ts';
import type { RasterImage } from '../../core/image.ts';
import { countOn, fitMask } from '../../core/mask/index.ts';
import type { Progress } from '../../core/progress.ts';
import type { GeneratorSchema } from '../../core/synth/options.ts';
import { randomPerlinMask } from '../../core/synth/regionMask.ts';
import { decodeImage } from '../../runtime/decode.ts';
import { synthClient } from '../../../workers/synth.client.ts';
import { loadComputeTarget } from '../../app/compute-target.ts';
import { ServerClient } from '../../app/server-client.ts';
import { ServerSynth, type BatchRunner } from '../../app/server-synth.ts';
import { Job } from '../components/job.svelte.ts';
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

  /** Runs one synth batch; samples reach the staging strip as they are made, so a cancel keeps them. */
  async run(): Promise<void> {
    if (this.job.running || this.generator === DIFFUSION) return;
    this.lastFailures = 0;
    const { generator, count, maskMode } = this;
    const batchSeed = this.seed;
    let made = 0;
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
        const recordedOptions = provenanceOptions(schema.options, opts);
        const id = ctx.id;
        // System → Compute: this browser's synth worker, or the chosen server (same request, progress and Stop).
        const target = await loadComputeTarget(await getStore());
        const runner: BatchRunner =
          target.mode === 'server' ? new ServerSynth(new ServerClient(target)) : synthClient();
        this.#runner = runner;
        return runner.generateBatch(
          // Feathered regions: the worker blends each sample back with its region's soft edge.
          { generator, images: rasters, masks, options: opts, n: count, seed: batchSeed, feathers },
          {
            jobId: id,
            onProgress: (p) => ctx.progress(p, id),
            onSamples: (samples) => {
              made += samples.length;
              stageSamples(
                samples.map((s) => ({
                  image: s.image,
                  mask: s.mask,
                  provenance: sampleProvenance({
                    generator: s.generator,
                    options: recordedOptions,
                    params: s.params,
                    seed: s.seed,
                    batchSeed,
                    maskMode,
                    sourceImageId: recs[s.sourceIndex].id,
                    maskId: ids[s.sourceIndex],
                    regionSeed: seeds[s.sourceIndex],
                    textureMode: tex?.mode,
                    textures: tex?.refs,
                    featherSigma: typeof s.params.feather_sigma === 'number' ? s.params.feather_sigma : 0,
                  }),
                })),
              );
            },
          },
        );
      },
      { stage: 'prepare', done: 0, total: count, message: 'reading images' },
    );
    if (outcome.status === 'done') {
      this.lastFailures = outcome.value.failures.length;
      const m = batchSummary(made, count, outcome.value.failures);
      toast(m.level, m.text);
    } else if (outcome.status === 'cancelled') toast('info', cancelledSummary(made));
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
