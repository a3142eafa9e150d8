/**
 * Feature taps and native resolution on the real MobileNetV2-int8 (../shared, onnxruntime-node CPU), checked
 * against the ONNX graph's own intermediate outputs: the reference session is the unrewritten model with the
 * raw uint8 block outputs (`365_quantized`, `426_quantized`, `452_quantized`) added as graph outputs, dequantized
 * here from the model's own `_scale` / `_zero_point` initializers by the DequantizeLinear definition
 * `(q − zp) · scale` in float32. Tolerance 0: both sides are the same integer kernels and one float32 product.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { type RasterImage, crop, resizeBilinear } from '../../src/core/image.ts';
import { imagenetPreprocess, preprocessBatch } from '../../src/core/preprocess.ts';
import { nativeFrame, stitchTiles, tilePlan } from '../../src/core/resolution.ts';
import { float32 } from '../../src/core/tensor.ts';
import {
  Backbone,
  CachedTaps,
  findBackbone,
  manifestLoadOptions,
  rewriteForFeatures,
} from '../../src/runtime/backbone.ts';
import type { FeatureKey, StoredFeatures } from '../../src/runtime/db/types.ts';
import { decodeImage } from '../../src/runtime/decode.ts';
import { createSession, nodeBackend } from '../../src/runtime/ort-node.ts';

const { onnx } = onnxProto;
const SHARED = resolve(import.meta.dirname, '../../../shared');
const MODEL = new Uint8Array(readFileSync(resolve(SHARED, 'models/mobilenetv2-12-int8.onnx')));
const DATA = resolve(SHARED, 'data/magnetic-tile-compact');
const TAPS = { s8: '365', s16: '426', s32: '452' } as const;

async function tiles(n: number): Promise<RasterImage[]> {
  const m = JSON.parse(readFileSync(resolve(DATA, 'manifest.json'), 'utf8')) as {
    items: { file: string; label: number }[];
  };
  return Promise.all(
    m.items
      .slice(0, n)
      .map(async (i) => (await decodeImage(readFileSync(resolve(DATA, i.file)), i.file)).raster),
  );
}

/** The unrewritten graph with its raw block outputs exposed; optionally with the input H/W set to `hw`. */
async function referenceSession(hw?: [number, number]) {
  const m = onnx.ModelProto.decode(MODEL);
  const g = m.graph!;
  const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
  for (const id of Object.values(TAPS))
    g.output!.push(onnx.ValueInfoProto.create({ name: `${id}_quantized` }));
  if (hw) {
    const dims = g.input![0].type!.tensorType!.shape!.dim!;
    dims[2] = { dimValue: hw[0] };
    dims[3] = { dimValue: hw[1] };
    g.valueInfo = [];
  }
  const session = await createSession(onnx.ModelProto.encode(m).finish(), { backend: 'cpu' });
  const scalar = (name: string) => {
    const t = inits.get(name)!;
    const b = t.rawData;
    if (!b || !b.length) return Number(t.dataType === 1 ? t.floatData![0] : t.int32Data![0]);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return t.dataType === 1 ? dv.getFloat32(0, true) : dv.getUint8(0);
  };
  /** Dequantized `[N, C, h, w]` of each tap for a preprocessed batch. */
  const run = async (data: Float32Array, dims: number[]) => {
    const r = await session.run(
      { input: float32(data, dims) },
      Object.values(TAPS).map((id) => `${id}_quantized`),
    );
    const out: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const [name, id] of Object.entries(TAPS)) {
      const q = r[`${id}_quantized`];
      expect(q.type).toBe('uint8');
      const scale = scalar(`${id}_scale`);
      const zp = scalar(`${id}_zero_point`);
      const f = new Float32Array(q.data.length);
      for (let i = 0; i < f.length; i++) f[i] = Math.fround(((q.data as Uint8Array)[i] - zp) * scale);
      out[name] = { data: f, dims: q.dims };
    }
    return out;
  };
  return { run, release: () => session.release() };
}

const MANIFEST = findBackbone('mobilenetv2-12-int8')!;

describe('feature taps (real MobileNetV2-int8)', () => {
  it('the manifest names the three stride taps; the rewrite exposes them as float outputs', () => {
    expect(MANIFEST.taps?.map((t) => [t.name, t.tensor, t.stride])).toEqual([
      ['s8', '365_quantized', 8],
      ['s16', '426_quantized', 16],
      ['s32', '452_quantized', 32],
    ]);
    const { info } = rewriteForFeatures(MODEL, 'mobilenetv2', undefined, { taps: MANIFEST.taps });
    expect(Object.keys(info.tapOutputs)).toEqual(['s8', 's16', 's32']);
    expect(info.tapOutputs.s16).toBe('426_quantized__defectlab_float');
    expect(info.dynamicInput).toBe(false);
  });

  it('at 224×224 every tap equals the graph’s own intermediate output, all from one run; pooled/spatial/logits unchanged', async () => {
    const imgs = await tiles(3);
    const ref = await referenceSession();
    const { data, dims } = preprocessBatch(imgs, imagenetPreprocess());
    const want = await ref.run(data, dims);
    const plain = await Backbone.load(MODEL, { id: 'mobilenetv2-12-int8', ort: nodeBackend });
    for (const dynamicInput of [false, true]) {
      const bb = await Backbone.load(MODEL, {
        ...manifestLoadOptions(MANIFEST),
        ort: nodeBackend,
        dynamicInput,
      });
      const got = await bb.extractTaps(imgs, { batchSize: 2 });
      expect(got[0].maps.s8.dims).toEqual([32, 28, 28]);
      expect(got[0].maps.s16.dims).toEqual([96, 14, 14]);
      expect(got[0].maps.s32.dims).toEqual([160, 7, 7]);
      for (const name of Object.keys(TAPS)) {
        const w = want[name];
        const n = w.dims[1] * w.dims[2] * w.dims[3];
        for (let i = 0; i < imgs.length; i++)
          expect(Array.from(got[i].maps[name].data)).toEqual(Array.from(w.data.subarray(i * n, (i + 1) * n)));
      }
      // Everything that reads the pooled/spatial outputs sees the same numbers with taps added.
      const a = await bb.extract(imgs);
      const b = await plain.extract(imgs);
      expect(Array.from(a.pooled[2])).toEqual(Array.from(b.pooled[2]));
      expect(Array.from(a.spatial[1].data)).toEqual(Array.from(b.spatial[1].data));
      expect(Array.from((await bb.logits(imgs.slice(0, 1)))[0])).toEqual(
        Array.from((await plain.logits(imgs.slice(0, 1)))[0]),
      );
      await bb.release();
    }
    await plain.release();
    await ref.release();
  });

  it('native resolution: a 256×192 frame gives [C, H/s, W/s] maps equal to the graph run at that size', async () => {
    const [img] = await tiles(1);
    const photo = resizeBilinear(img, 250, 190); // rounds to a 256×192 frame
    expect(nativeFrame(250, 190, undefined)).toEqual({ width: 256, height: 192 });
    const bb = await Backbone.load(MODEL, {
      ...manifestLoadOptions(MANIFEST),
      ort: nodeBackend,
      dynamicInput: true,
    });
    const [got] = await bb.extractTaps([photo], { resolution: { mode: 'native' } });
    expect(got.frame).toMatchObject({ width: 256, height: 192, resize: 'stretch' });
    expect(got.maps.s8.dims).toEqual([32, 24, 32]);
    expect(got.maps.s32.dims).toEqual([160, 6, 8]);
    const ref = await referenceSession([192, 256]);
    const { data, dims } = preprocessBatch([photo], got.frame);
    const want = await ref.run(data, dims);
    for (const name of Object.keys(TAPS))
      expect(Array.from(got.maps[name].data)).toEqual(Array.from(want[name].data));
    // A chosen short side: 250×190 at short side 96 → 128×96.
    const [small] = await bb.extractTaps([photo], {
      resolution: { mode: 'native', shortSide: 96 },
      taps: ['s16'],
    });
    expect(Object.keys(small.maps)).toEqual(['s16']);
    expect(small.maps.s16.dims).toEqual([96, 6, 8]);
    await ref.release();
    await bb.release();
  });

  it('tiles: a 632×224 image runs as 224² tiles whose maps are stitched (overlaps averaged) into one 640×224 frame', async () => {
    const [img] = await tiles(1);
    const long = resizeBilinear(img, 632, 224);
    const bb = await Backbone.load(MODEL, {
      ...manifestLoadOptions(MANIFEST),
      ort: nodeBackend,
      dynamicInput: true,
    });
    const [got] = await bb.extractTaps([long], {
      resolution: { mode: 'tile', shortSide: 224 },
      taps: ['s32'],
    });
    expect(got.frame).toMatchObject({ width: 640, height: 224 });
    expect(got.maps.s32.dims).toEqual([160, 7, 20]);
    // Reference: each tile run alone at the fixed 224² geometry, placed and averaged by brute force.
    const boxes = tilePlan(640, 224);
    const sized = resizeBilinear(long, 640, 224);
    const per = await bb.extractTaps(
      boxes.map((b) => crop(sized, { x: b.x, y: b.y, width: 224, height: 224 })),
      { taps: ['s32'] },
    );
    const C = 160;
    for (let c = 0; c < C; c += 17)
      for (let j = 0; j < 20; j++)
        for (let i = 0; i < 7; i++) {
          const vals = boxes.flatMap((b, k) =>
            j >= b.x / 32 && j < b.x / 32 + 7 ? [per[k].maps.s32.data[c * 49 + i * 7 + (j - b.x / 32)]] : [],
          );
          expect(vals.length).toBeGreaterThan(0);
          const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
          expect(got.maps.s32.data[c * 140 + i * 20 + j]).toBeCloseTo(mean, 5);
        }
    // Letterbox into 640×224 (aspect kept, padded) runs as one frame.
    const [lb] = await bb.extractTaps([img], { resolution: { mode: 'letterbox', width: 640, height: 224 } });
    expect(lb.maps.s16.dims).toEqual([96, 14, 40]);
    await bb.release();
  });

  it('caches per tap and per resolution: a second run extracts nothing, frames come back, resolutions do not collide', async () => {
    const bb = await Backbone.load(MODEL, {
      ...manifestLoadOptions(MANIFEST),
      ort: nodeBackend,
      dynamicInput: true,
    });
    const mem = new Map<string, StoredFeatures>();
    const k = (x: FeatureKey) => `${x.backbone}|${x.sha256}|${x.preprocessing}`;
    const store = {
      getFeatures: async (x: FeatureKey) => mem.get(k(x)),
      putFeatures: async (x: FeatureKey, f: StoredFeatures) => void mem.set(k(x), f),
    };
    const imgs = await tiles(2);
    let loads = 0;
    const items = imgs.map((img, i) => ({ sha256: `sha-${i}`, load: () => (loads++, img) }));
    const cache = new CachedTaps(bb, store);
    const native = { mode: 'native', shortSide: 128 } as const;
    const first = await cache.extract(items, { taps: ['s16'], resolution: native });
    expect([cache.hits, cache.misses, loads]).toEqual([0, 2, 2]);
    const again = await cache.extract(items, { taps: ['s16'], resolution: native });
    expect([cache.hits, cache.misses, loads]).toEqual([2, 2, 2]);
    expect(again[1].frame).toEqual(first[1].frame);
    expect(Array.from(again[1].maps.s16.data)).toEqual(Array.from(first[1].maps.s16.data));
    // Another tap set or resolution is extracted, not served from the native s16 records.
    const fixed = await cache.extract(items, { taps: ['s16', 's32'] });
    expect(loads).toBe(4);
    expect(fixed[0].maps.s16.dims).toEqual([96, 14, 14]);
    expect(first[0].maps.s16.dims).not.toEqual([96, 14, 14]);
    expect([...mem.keys()].some((key) => key.endsWith('|tap:s32|fixed'))).toBe(true);
    await bb.release();
  });

  it('names the problem: unknown tap tensor, unknown tap name, other sizes on a fixed-size graph', async () => {
    expect(() =>
      rewriteForFeatures(MODEL, 'mobilenetv2', undefined, {
        taps: [{ name: 'x', tensor: 'nope_quantized' }],
      }),
    ).toThrow(/BackboneGraphError: mobilenetv2: has no tensor named nope_quantized \(feature tap x\).*fix:/);
    expect(() =>
      rewriteForFeatures(MODEL, 'mobilenetv2', undefined, {
        taps: [{ name: 'x', tensor: '426_quantized', scale: '426_scale' }],
      }),
    ).toThrow(/both scale and zeroPoint/);
    const bb = await Backbone.load(MODEL, { ...manifestLoadOptions(MANIFEST), ort: nodeBackend });
    const [img] = await tiles(1);
    await expect(bb.extractTaps([img], { taps: ['s64'] })).rejects.toThrow(/tap must be one of s8, s16, s32/);
    await expect(bb.extractTaps([img], { resolution: { mode: 'native' } })).rejects.toThrow(
      /dynamicInput: true.*fix:/,
    );
    await bb.release();
  });
});

describe('resolution geometry (pure)', () => {
  it('nativeFrame keeps the aspect ratio up to rounding to 32 and caps the long side', () => {
    expect(nativeFrame(632, 224, undefined)).toEqual({ width: 640, height: 224 });
    expect(nativeFrame(200, 256, 224)).toEqual({ width: 224, height: 288 });
    expect(nativeFrame(4000, 1000, undefined, 32, 2048)).toEqual({ width: 2048, height: 512 });
  });

  it('tilePlan covers the frame with square tiles at stride multiples, last flush with the end', () => {
    for (const [W, H, ov] of [
      [640, 224, 0],
      [224, 960, 64],
      [224, 224, 0],
      [1024, 256, 96],
    ] as const) {
      const boxes = tilePlan(W, H, ov);
      const long = Math.max(W, H);
      const size = Math.min(W, H);
      const offs = boxes.map((b) => (W >= H ? b.x : b.y));
      expect(offs[0]).toBe(0);
      expect(offs.at(-1)).toBe(long - size);
      for (const o of offs) expect(o % 32).toBe(0);
      for (let k = 1; k < offs.length; k++) expect(offs[k - 1] + size - offs[k]).toBeGreaterThanOrEqual(ov);
    }
  });

  it('stitchTiles rejects tiles off the stride grid', () => {
    const t = { data: new Float32Array(4), dims: [1, 2, 2] as [number, number, number] };
    expect(() => stitchTiles([t], [{ x: 16, y: 0, size: 64 }], 96, 64)).toThrow(/multiple of the stride 32/);
  });
});
