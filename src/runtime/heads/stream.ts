/**
 * Training streams: what rows a head sees.
 *
 * - Supervised heads (BCE, spatial): `composeTrainingSet` (the runner's, re-exported) puts normals, synthetic
 *   and real
 *   defects together, either concatenated or as ISP-AD mixed supervision (a balanced normal/synthetic stream with
 *   real defects injected with probability p, 1/32 by default; the sampler is the experiments core's).
 * - CSE: `makeCsePairSource` makes (normal, normal-or-synthetic) pairs on the fly with the synthetic-defect
 *   generators and the backbone, and maps each defect mask to the feature grid.
 */
import { InvalidArgumentError } from '../../core/errors.ts';
import type { RasterImage } from '../../core/image.ts';
import { type PreprocessOptions, resizeForBackbone } from '../../core/preprocess.ts';
import type { Rng } from '../../core/rng.ts';
import type { CsePair, CsePairSource } from './cse.ts';
import type { FeatureMap } from './spatial.ts';

export {
  composeTrainingSet,
  type StreamMode,
  type StreamOptions,
  type StreamPools,
} from '../../core/experiments/stream.ts';

/**
 * Fraction of defect pixels in each cell of an `h × w` grid, after the same geometric preprocessing as the
 * image (so cells line up with feature-map locations). Returns `[h·w]` in [0, 1].
 */
export function maskToGrid(mask: RasterImage, pre: PreprocessOptions, h: number, w: number): Float32Array {
  const sized = resizeForBackbone(mask, { ...pre, fill: 0 });
  const out = new Float32Array(h * w);
  const cnt = new Float32Array(h * w);
  const c = sized.channels;
  for (let y = 0; y < sized.height; y++) {
    const gy = Math.min(h - 1, Math.floor((y * h) / sized.height));
    for (let x = 0; x < sized.width; x++) {
      const gx = Math.min(w - 1, Math.floor((x * w) / sized.width));
      out[gy * w + gx] += sized.data[(y * sized.width + x) * c] > 127 ? 1 : 0;
      cnt[gy * w + gx]++;
    }
  }
  for (let i = 0; i < out.length; i++) out[i] /= Math.max(1, cnt[i]);
  return out;
}

export interface CseSourceOptions {
  /** Normal training images. */
  normals: readonly RasterImage[];
  /** Their feature maps, same order (extracted once). */
  normalMaps: readonly FeatureMap[];
  /** Feature maps of new images (the backbone; synthetic defects are made on the fly). */
  extract(images: RasterImage[]): Promise<FeatureMap[]>;
  /** Synthetic-defect generators (Perlin/structure, texture, blur, …); one is drawn per defect pair. */
  generators: readonly ((image: RasterImage, seed: number) => { image: RasterImage; mask: RasterImage })[];
  preprocess: PreprocessOptions;
  /** Probability that the pair's second element is a synthetic defect (else another normal). */
  pDefect?: number;
  /** A location counts as defective when at least this fraction of its cell is masked. */
  cellThreshold?: number;
}

/** Pairs for `trainCseHead`: (normal, another normal) or (normal, synthetic defect of it) with p = 0.5. */
export function makeCsePairSource(o: CseSourceOptions): CsePairSource {
  if (o.normals.length === 0 || o.normals.length !== o.normalMaps.length)
    throw new InvalidArgumentError('normals', 'a non-empty list with one feature map each', o.normals.length);
  if (o.generators.length === 0) throw new InvalidArgumentError('generators', 'at least one generator', 0);
  const p = o.pDefect ?? 0.5;
  const thr = o.cellThreshold ?? 0.1;
  const [, h, w] = o.normalMaps[0].dims;
  return async (rng: Rng): Promise<CsePair> => {
    const i = rng.int(0, o.normals.length);
    const anchor = o.normalMaps[i];
    if (!rng.bernoulli(p) || o.normals.length === 0) {
      const j = o.normals.length > 1 ? (i + 1 + rng.int(0, o.normals.length - 1)) % o.normals.length : i;
      return { anchor, other: o.normalMaps[j], defect: new Float32Array(h * w) };
    }
    const gen = rng.choice(o.generators);
    const seed = rng.nextUint32();
    const made = gen(o.normals[i], seed);
    const [other] = await o.extract([made.image]);
    const frac = maskToGrid(made.mask, o.preprocess, h, w);
    return { anchor, other, defect: frac.map((f) => (f >= thr ? 1 : 0)) };
  };
}
