/**
 * The runner's `HeadTrainer`s over the features engineer's tfjs heads (`src/runtime/heads/`), for Node and the
 * experiments worker alike (nothing here touches Node APIs):
 * - `bce`: `trainBceHead` on pooled features (Adam lr 1e-4, batch 32, class weighting, early stopping);
 * - `cse`: `trainCseHead` on spatial maps with pairs (normal, normal-or-synthetic p = 0.5); the synthetic
 *   defects come from the given generators (MemSeg Perlin/structure/texture and blur by default), a pool made
 *   up front so the backbone runs in batches.
 */
import type { GeneratorFn, HeadSample, HeadTrainer, TrainedHead } from '../src/core/experiments/index.ts';
import type { RasterImage } from '../src/core/image.ts';
import type { CancelSignal } from '../src/core/progress.ts';
import { Rng } from '../src/core/rng.ts';
import { trainBceHead } from '../src/runtime/heads/bce.ts';
import { trainCseHead, type CsePair } from '../src/runtime/heads/cse.ts';
import type { FeatureMap } from '../src/runtime/heads/spatial.ts';
import { initTf } from '../src/runtime/tf.ts';

export function bceTrainer(defaults: Record<string, unknown> = {}): HeadTrainer {
  return {
    kind: 'bce',
    async train(rows, o): Promise<TrainedHead> {
      await initTf();
      const extra = { ...defaults, ...o.extra };
      delete extra.generator;
      const { head } = await trainBceHead(
        rows.map((r) => r.features),
        rows.map((r) => r.label),
        { ...extra, seed: o.seed, ...(o.epochs ? { epochs: o.epochs } : {}) },
        {
          signal: o.signal,
          onEpoch: (e) =>
            o.onProgress?.({
              stage: 'train',
              done: e.epoch,
              total: e.epochs,
              unit: 'epochs',
              detail: { loss: e.loss },
            }),
        },
      );
      return { score: (q) => head.predict(q.map((r) => r.features)), dispose: () => head.dispose() };
    },
  };
}

/** What the CSE trainer needs from the backbone: spatial maps `[C, h, w]` of images. */
export interface SpatialSource {
  spatial(images: RasterImage[], signal?: CancelSignal): Promise<FeatureMap[]>;
}

/**
 * `[h·w]` defect indicator of a mask [H, W] on an h×w grid (stretch geometry): 1 where at least `minFraction`
 * of the cell's pixels are defect.
 */
export function maskToGrid(mask: RasterImage, h: number, w: number, minFraction = 0.05): Float32Array {
  const out = new Float32Array(h * w);
  for (let gy = 0; gy < h; gy++)
    for (let gx = 0; gx < w; gx++) {
      const y0 = Math.floor((gy * mask.height) / h);
      const y1 = Math.max(y0 + 1, Math.floor(((gy + 1) * mask.height) / h));
      const x0 = Math.floor((gx * mask.width) / w);
      const x1 = Math.max(x0 + 1, Math.floor(((gx + 1) * mask.width) / w));
      let n = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (mask.data[y * mask.width + x]) n++;
      out[gy * w + gx] = n / ((y1 - y0) * (x1 - x0)) >= minFraction ? 1 : 0;
    }
  return out;
}

/** Bilinear upsampling of a float map [h, w] to [H, W] (half-pixel centres), for heat maps against masks. */
export function upsampleMap(map: Float32Array, h: number, w: number, H: number, W: number): Float32Array {
  const out = new Float32Array(H * W);
  for (let y = 0; y < H; y++) {
    const fy = Math.min(Math.max(((y + 0.5) * h) / H - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const wy = fy - y0;
    for (let x = 0; x < W; x++) {
      const fx = Math.min(Math.max(((x + 0.5) * w) / W - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const wx = fx - x0;
      const top = map[y0 * w + x0] * (1 - wx) + map[y0 * w + x1] * wx;
      const bot = map[y1 * w + x0] * (1 - wx) + map[y1 * w + x1] * wx;
      out[y * W + x] = top * (1 - wy) + bot * wy;
    }
  }
  return out;
}

export interface CseTrainerOptions {
  /** Generators of on-the-fly defects, drawn uniformly per synthetic pair. */
  generators: GeneratorFn[];
  /** Synthetic defects made up front per training run (default 64). */
  poolSize?: number;
  /** Options passed to `trainCseHead` (epochs, stepsPerEpoch, pairsPerStep, …). */
  cse?: Record<string, unknown>;
}

export function cseTrainer(source: SpatialSource, opts: CseTrainerOptions): HeadTrainer {
  const mapsOf = new Map<string, FeatureMap>();
  const maps = async (rows: HeadSample[], signal?: CancelSignal): Promise<FeatureMap[]> => {
    const todo = rows.filter((r) => !mapsOf.has(r.id));
    for (let i = 0; i < todo.length; i += 16) {
      const chunk = todo.slice(i, i + 16);
      const imgs = await Promise.all(chunk.map((r) => (r.load as () => Promise<RasterImage>)()));
      const m = await source.spatial(imgs, signal);
      chunk.forEach((r, k) => mapsOf.set(r.id, m[k]));
    }
    return rows.map((r) => mapsOf.get(r.id) as FeatureMap);
  };
  return {
    kind: 'cse',
    unsupervised: true,
    async train(rows, o): Promise<TrainedHead> {
      await initTf();
      const normals = rows.filter((r) => r.label === 0);
      const normalMaps = await maps(normals, o.signal);
      const [, h, w] = normalMaps[0].dims;
      // The synthetic pool: defects drawn on random normals with seeds from the cell seed.
      const rng = new Rng(`cse-pool:${o.seed}`);
      const pool: { anchor: number; map: FeatureMap; defect: Float32Array }[] = [];
      const poolSize = opts.poolSize ?? 64;
      for (let i = 0; i < poolSize; i += 16) {
        const made: { anchor: number; image: RasterImage; mask: RasterImage }[] = [];
        for (let k = i; k < Math.min(poolSize, i + 16); k++) {
          const anchor = rng.int(0, normals.length);
          const gen = rng.choice(opts.generators);
          const img = await (normals[anchor].load as () => Promise<RasterImage>)();
          made.push({ anchor, ...(await gen(img, rng.nextUint32())) });
        }
        const m = await source.spatial(
          made.map((x) => x.image),
          o.signal,
        );
        made.forEach((x, k) => pool.push({ anchor: x.anchor, map: m[k], defect: maskToGrid(x.mask, h, w) }));
      }
      const zeros = new Float32Array(h * w);
      const pairs = async (r: Rng): Promise<CsePair> => {
        if (r.bernoulli(0.5)) {
          const a = r.int(0, normalMaps.length);
          let b = r.int(0, normalMaps.length);
          if (normalMaps.length > 1 && b === a) b = (b + 1) % normalMaps.length;
          return { anchor: normalMaps[a], other: normalMaps[b], defect: zeros };
        }
        const s = r.choice(pool);
        return { anchor: normalMaps[s.anchor], other: s.map, defect: s.defect };
      };
      const extra = { ...opts.cse, ...o.extra };
      delete extra.generator;
      const { head } = await trainCseHead(
        normalMaps,
        pairs,
        { ...extra, seed: o.seed, ...(o.epochs ? { epochs: o.epochs } : {}) },
        {
          signal: o.signal,
          onEpoch: (e) =>
            o.onProgress?.({
              stage: 'train',
              done: e.epoch,
              total: e.epochs,
              unit: 'epochs',
              detail: { loss: e.loss },
            }),
        },
      );
      return {
        score: async (q) => (await head.predict(await maps(q, o.signal))).scores,
        heatMaps: async (q: HeadSample[]) => {
          const { heatmaps } = await head.predict(await maps(q, o.signal));
          return Promise.all(
            q.map(async (r, i) => {
              const img = await (r.load as () => Promise<RasterImage>)();
              return {
                width: img.width,
                height: img.height,
                data: upsampleMap(heatmaps[i], h, w, img.height, img.width),
              };
            }),
          );
        },
        dispose: () => head.dispose(),
      } as TrainedHead;
    },
  };
}
