import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/core/hash.ts';
import { type RasterImage, crop } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import { blurDefect } from '../../src/core/synth/blur.ts';
import { proceduralTexture } from '../../src/core/synth/textures.ts';
import type { Label, Split } from '../../src/core/dataset.ts';
import { openStore } from '../../src/runtime/db/store.ts';
import type { NewImage } from '../../src/runtime/db/types.ts';
import { decodeImage, encodePng } from '../../src/runtime/decode.ts';
import { nodeBackend } from '../../src/runtime/ort-node.ts';
import { tinyResnetModel } from '../../models/builders/backbone.ts';
import { auPro } from '../../src/core/metrics/index.ts';
import { knnScores, meanDistanceScores } from '../../src/core/experiments/baselines.ts';
import { initTf, tf } from '../../src/runtime/tf.ts';
import { syntheticOnlyWarning } from '../../src/core/experiments/threshold.ts';
import { TrainEngine } from '../../workers/train.engine.ts';

/**
 * The train engine in-thread (as the worker runs it), on the tiny ResNet-shaped backbone, a fake-indexeddb store
 * and a procedural dataset: weave crops as normals, blur defects as accepted synthetic defects (train) and as
 * test defects.
 */
const surface = proceduralTexture('weave', 256, 256, 1, new Rng('engine-surface'));

async function record(
  img: RasterImage,
  i: number,
  label: Label,
  split: Split,
  synthetic: boolean,
  mask?: RasterImage,
  defectClass?: string,
): Promise<NewImage> {
  const png = encodePng(img);
  return {
    ...(mask
      ? {
          mask: {
            blob: new Blob([encodePng(mask) as Uint8Array<ArrayBuffer>], { type: 'image/png' }),
            width: mask.width,
            height: mask.height,
          },
        }
      : {}),
    ...(defectClass ? { defectClass } : {}),
    name: `img-${i}.png`,
    blob: new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }),
    mime: 'image/png',
    width: img.width,
    height: img.height,
    channels: img.channels,
    sha256: await sha256Hex(png),
    thumbnail: new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }),
    label,
    split,
    ...(synthetic ? { provenance: { generator: 'blur', parameters: {}, seed: i, createdAt: 0 } } : {}),
  };
}

async function setup() {
  const store = await openStore(`engine-test-${Math.random()}`);
  const ds = await store.createDataset({ name: 'procedural', source: 'test' });
  const rng = new Rng(5);
  const cropAt = () => crop(surface, { x: rng.int(0, 192), y: rng.int(0, 192), width: 64, height: 64 });
  const blurred = (img: RasterImage, s: number) =>
    blurDefect(img, { sigma: [2, 4], perlin_scale: [0, 2] }, s);
  const blur = (img: RasterImage, s: number) => blurred(img, s).image;
  const recs: NewImage[] = [];
  let i = 0;
  for (let k = 0; k < 12; k++) recs.push(await record(cropAt(), i++, 'normal', 'train', false));
  for (let k = 0; k < 8; k++) recs.push(await record(blur(cropAt(), 100 + k), i++, 'defect', 'train', true));
  for (let k = 0; k < 6; k++) recs.push(await record(cropAt(), i++, 'normal', 'test', false));
  for (let k = 0; k < 6; k++) {
    const d = blurred(cropAt(), 200 + k);
    recs.push(await record(d.image, i++, 'defect', 'test', false, d.mask, k % 2 ? 'blur-b' : 'blur-a'));
  }
  await store.addImages(ds.id, recs);
  const engine = new TrainEngine({ ort: nodeBackend, store: async () => store, decode: decodeImage });
  await engine.loadBackbone({ bytes: tinyResnetModel(), name: 'tiny-resnet.onnx', device: 'cpu' });
  return { engine, store, datasetId: ds.id };
}

describe('train engine (in-thread)', () => {
  it('recognises the picked tiny model, caches features, trains BCE, evaluates, saves and exports', async () => {
    const { engine, datasetId } = await setup();
    expect((await engine.backboneInfo())?.id).toBe('user:tiny-resnet.onnx:' + tinyResnetModel().length);
    const first = await engine.extractDataset(datasetId);
    expect(first.images.length).toBe(32);
    expect(first.cached).toBe(0);
    const again = await engine.extractDataset(datasetId);
    expect(again.cached).toBe(32);
    expect(Array.from(again.pooled[3])).toEqual(Array.from(first.pooled[3]));

    const epochs: number[] = [];
    const res = await engine.train(
      { datasetId, head: 'bce', tfBackend: 'wasm', supervised: { epochs: 5, learningRate: 1e-3 } },
      'job-1',
      (p) => p.stage === 'train' && epochs.push(p.done),
    );
    // One runner cell: no val split, so 20 % of the 12 normals and of the 8 accepted synthetic defects are held
    // out for the threshold; the head trains on the rest.
    expect(res.counts).toEqual({ normal: 10, synthetic: 6, real: 0, test: 12, val: 4 });
    expect(res.cellCounts).toEqual({
      train: { normal: 10, synthetic: 6, real: 0 },
      val: { normal: 2, synthetic: 2, real: 0 },
      test: { normal: 6, defect: 6 },
    });
    expect(epochs.length).toBe(res.history.length);
    expect(res.tfBackend).toBe('wasm');
    const ev = res.evaluation!;
    expect(ev.scores.length).toBe(12);
    expect(ev.thresholdSource).toBe('val:synthetic');
    expect(ev.cell.config).toMatchObject({ generator: 'accepted', nAug: 8, head: 'bce', seed: 0 });
    // The synthetic-only warning quotes this cell's own validation and test AP.
    expect(ev.warning).toContain(syntheticOnlyWarning(ev.metrics.valAp, ev.metrics.ap));
    expect(ev.metrics.tp + ev.metrics.fn).toBe(6);
    expect(Number.isFinite(ev.metrics.ap)).toBe(true);
    const heads = await engine.listHeads(datasetId);
    expect(heads.map((h) => h.id)).toEqual([res.headId]);
    expect(heads[0].preprocessing).toMatch(/^stretch-64x64/); // not in the manifest: size read from the graph
    const files = await engine.exportHead(res.headId!);
    expect(files.map((f) => f.name.split('.').slice(-2).join('.'))).toEqual([
      'model.json',
      'weights.bin',
      'metadata.json',
    ]);
    const meta = JSON.parse(new TextDecoder().decode(files[2].data));
    expect(meta.backbone).toBe(heads[0].backbone);
    expect(meta.threshold).toBe(heads[0].threshold);
    expect(meta.kind).toBe('bce');
    expect(JSON.parse(new TextDecoder().decode(files[0].data)).format).toBe('layers-model');

    // Baselines: the same pooled features, training normals as reference, the same test rows.
    const test = again.images.flatMap((m, i) => (m.split === 'test' ? [i] : []));
    const normals = again.images.flatMap((m, i) => (m.split === 'train' && m.label === 'normal' ? [i] : []));
    const q = test.map((i) => again.pooled[i]);
    // The runner's split of a seed: shuffled normals, the first round(20 %) held out for validation.
    const order = new Rng('split:procedural:0').shuffle(normals.map((_, i) => i));
    const ref = order.slice(2).map((k) => again.pooled[normals[k]]);
    expect(ev.baselines.map((b) => b.kind)).toEqual(['mean', 'knn']);
    expect(ev.baselines[0].scores).toEqual(Array.from(meanDistanceScores(ref, q)));
    expect(ev.baselines[1].scores).toEqual(Array.from(knnScores(ref, q)));
    for (const b of ev.baselines) {
      expect(b.thresholdSource).toBe('val:synthetic');
      expect(b.metrics.tp + b.metrics.fn).toBe(6);
    }
    // BCE has no heat map: no PRO.
    expect(ev.pixel).toBeUndefined();

    // Re-evaluating the saved head: same scores, the stored threshold, labelled so.
    const re = await engine.evaluateHead(res.headId!);
    expect(re.evaluation!.scores).toEqual(ev.scores);
    expect(re.evaluation!.threshold).toBe(heads[0].threshold);
    expect(re.evaluation!.thresholdSource).toBe('val:synthetic (stored with the head)');
    expect(re.evaluation!.baselines.map((b) => b.scores)).toEqual(ev.baselines.map((b) => b.scores));
    const tuned = await engine.evaluateHead(res.headId!, { mode: 'test-best-f1' });
    expect(tuned.evaluation!.thresholdSource).toBe('test (tuned on test)');
    // Another backbone loaded: a named error instead of scores from the wrong features.
    await engine.loadBackbone({ bytes: tinyResnetModel(), name: 'other.onnx', device: 'cpu' });
    await expect(engine.evaluateHead(res.headId!)).rejects.toThrow(/HeadBackboneMismatchError.*fix: load/);
  });

  it('spatial head gives heat maps on the feature grid and PRO at mask pixels; CSE trains with on-the-fly defects; stop returns early', async () => {
    const { engine, datasetId, store } = await setup();
    const sp = await engine.train({
      datasetId,
      head: 'spatial',
      tfBackend: 'wasm',
      supervised: { epochs: 3, learningRate: 1e-3 },
      save: false,
    });
    expect(sp.headId).toBeNull();
    expect(sp.evaluation?.heatmaps?.length).toBe(12);
    expect(sp.evaluation?.heatmapSize).toEqual([8, 8]);
    // PRO at mask resolution, recomputed here with tfjs's bilinear resize (half-pixel centres) as the
    // upsampler: 'stretch' preprocessing makes the grid → image mapping a plain resize.
    const ev = sp.evaluation!;
    expect(ev.preprocess.resize).toBe('stretch');
    await initTf('wasm');
    const maps = [];
    const masks = [];
    for (let i = 0; i < ev.images.length; i++) {
      const m = ev.images[i];
      let mask = new Uint8Array(m.width * m.height);
      if (m.maskId) {
        const rec = await store.getMask(m.maskId);
        const dec = await decodeImage(new Uint8Array(await rec!.blob.arrayBuffer()), 'mask');
        mask = Uint8Array.from(dec.raster.data, (v) => (v > 127 ? 1 : 0));
      }
      const up = tf.image.resizeBilinear(
        tf.tensor3d(ev.heatmaps![i], [8, 8, 1]),
        [m.height, m.width],
        false,
        true,
      );
      maps.push({ width: m.width, height: m.height, data: await up.data() });
      up.dispose();
      masks.push({ width: m.width, height: m.height, data: mask });
    }
    expect(ev.pixel!.images).toBe(12);
    expect(ev.pixel!.regions).toBeGreaterThanOrEqual(6);
    expect(ev.pixel!.auPro).toBeCloseTo(auPro(maps, masks, 0.3), 5);
    expect(ev.images.filter((m) => m.defectClass).map((m) => m.defectClass)).toHaveLength(6);

    let jobSeen = '';
    const cse = await engine.train(
      {
        datasetId,
        head: 'cse',
        tfBackend: 'wasm',
        cse: { epochs: 5, stepsPerEpoch: 2, pairsPerStep: 4, generators: ['blur'] },
      },
      'job-cse',
      (p) => {
        // Stop after the second epoch, like the Stop button.
        if (p.stage === 'train' && p.done === 2 && !jobSeen) {
          jobSeen = 'job-cse';
          engine.cancel('job-cse');
        }
      },
    );
    expect(cse.stopped).toBe('cancelled');
    expect(cse.history.length).toBe(2);
    expect(cse.evaluation?.scores.every((s) => s >= 0 && s <= 2)).toBe(true);
    expect(cse.evaluation?.pixel?.auPro).toBeGreaterThanOrEqual(0);
    expect(cse.headId).not.toBeNull();
  });

  it('Stop during the features stage stops the extraction: no epoch, no head, the extracted features stay cached', async () => {
    const { engine, store, datasetId } = await setup();
    let stoppedAt = -1;
    const run = engine.train(
      { datasetId, head: 'bce', tfBackend: 'wasm', supervised: { epochs: 5 } },
      'job-stop-early',
      (p) => {
        // The first batch of 8 images is extracted: press Stop, like the Train tab's button.
        if (p.stage === 'features' && stoppedAt < 0) {
          stoppedAt = p.done;
          engine.cancel('job-stop-early');
        }
        if (p.stage === 'train') throw new Error('training started after Stop');
      },
    );
    await expect(run).rejects.toThrow(/CancelledError: feature extraction was cancelled; 8 of 32/);
    expect(stoppedAt).toBe(8);
    expect(await engine.listHeads(datasetId)).toEqual([]);
    // The next run reuses what was extracted before the Stop.
    expect((await engine.extractDataset(datasetId)).cached).toBe(8);

    // Stopping a saved head's re-evaluation during its features stage works the same way.
    const res = await engine.train({ datasetId, head: 'bce', tfBackend: 'wasm', supervised: { epochs: 2 } });
    await store.clearFeatures();
    await expect(
      engine.evaluateHead(res.headId!, { mode: 'stored' }, 'job-eval', (p) => {
        if (p.stage === 'features') engine.cancel('job-eval');
      }),
    ).rejects.toThrow(/CancelledError: feature extraction/);
  });

  it('names the problem when the stream has no defects for a supervised head', async () => {
    const { engine, datasetId } = await setup();
    await expect(
      engine.train({
        datasetId,
        head: 'bce',
        tfBackend: 'wasm',
        stream: { mode: 'concat', synthetic: false },
      }),
    ).rejects.toThrow(/NotEnoughDataError.*fix:/);
  });
});

describe('PatchCore and the mask-supervised head as Train-tab cells', () => {
  it('train on the tiny backbone (its spatial map as the tap), give heat maps and PRO, save and re-evaluate', async () => {
    const { engine, datasetId } = await setup();
    const pc = await engine.train({
      datasetId,
      head: 'patchcore',
      tfBackend: 'wasm',
      patchcore: { coresetRatio: 0.5 },
    });
    expect(pc.kind).toBe('patchcore');
    const ev = pc.evaluation!;
    expect(ev.cell.config).toMatchObject({ head: 'patchcore', headOptions: { coresetRatio: 0.5 } });
    expect(ev.heatmaps?.length).toBe(12);
    expect(ev.pixel?.regions).toBeGreaterThanOrEqual(6);
    expect(Number.isFinite(ev.metrics.ap)).toBe(true);
    // Normals only: its bank never saw a defect, so the synthetic defects count 0 in its training set.
    expect(ev.cell.counts?.train.synthetic).toBe(0);
    const re = await engine.evaluateHead(pc.headId!);
    expect(re.evaluation!.scores).toEqual(ev.scores);
    await expect(engine.exportHead(pc.headId!)).rejects.toThrow(/no layers model/);

    // The masked head learns from synthetic defects' own masks (made on the fly: the generator returns them).
    const mk = await engine.train({
      datasetId,
      head: 'masked',
      tfBackend: 'wasm',
      supervised: { epochs: 3 },
      generate: { generator: 'memseg', nAug: 6 },
    });
    expect(mk.evaluation?.heatmaps?.length).toBe(12);
    expect(mk.evaluation?.cell.counts?.train.synthetic).toBe(6);
    const again = await engine.evaluateHead(mk.headId!);
    expect(again.evaluation!.scores).toEqual(mk.evaluation!.scores);
  });
});
