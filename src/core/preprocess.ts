/**
 * Backbone input preprocessing, pure: RasterImage → Float32 NCHW batch. Geometry first (stretch, letterbox or
 * centre-crop to W×H), then grayscale/RGBA → 3 channels, then `(pixel / 255 − mean) / std` per channel.
 * The `preprocessingId` of the options is part of the feature-cache key, so two runs share cached features only
 * when every number that changes the tensor is the same.
 */
import { InvalidArgumentError } from './errors.ts';
import { type RasterImage, assertRaster, createRaster, crop, paste, resizeBilinear, toRGB } from './image.ts';

/**
 * - `stretch`: resize to exactly W×H, aspect ratio not kept (DIAG resizes KSDD2 to 224×632 this way).
 * - `letterbox`: scale to fit inside W×H keeping the aspect ratio, pad the rest with `fill`, image centred.
 * - `center-crop`: scale to cover W×H keeping the aspect ratio, cut the centre W×H.
 */
export type ResizeMode = 'stretch' | 'letterbox' | 'center-crop';

export interface PreprocessOptions {
  width: number;
  height: number;
  resize: ResizeMode;
  /** Per-channel mean of [0, 1] pixels (RGB order). */
  mean: readonly [number, number, number];
  /** Per-channel standard deviation of [0, 1] pixels (RGB order). */
  std: readonly [number, number, number];
  /** Gray level (0–255) of the letterbox padding; default 0. */
  fill?: number;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** ImageNet preprocessing at 224×224, what MobileNetV2 and ResNet-50 expect. */
export function imagenetPreprocess(
  width = 224,
  height = 224,
  resize: ResizeMode = 'stretch',
): PreprocessOptions {
  return { width, height, resize, mean: IMAGENET_MEAN, std: IMAGENET_STD };
}

export function validatePreprocess(o: PreprocessOptions): void {
  if (!Number.isInteger(o.width) || o.width <= 0)
    throw new InvalidArgumentError('preprocess.width', 'a positive integer', o.width);
  if (!Number.isInteger(o.height) || o.height <= 0)
    throw new InvalidArgumentError('preprocess.height', 'a positive integer', o.height);
  if (!['stretch', 'letterbox', 'center-crop'].includes(o.resize))
    throw new InvalidArgumentError('preprocess.resize', "'stretch', 'letterbox' or 'center-crop'", o.resize);
  if (o.mean.length !== 3) throw new InvalidArgumentError('preprocess.mean', 'three numbers', o.mean);
  if (o.std.length !== 3 || o.std.some((s) => !(s > 0)))
    throw new InvalidArgumentError('preprocess.std', 'three positive numbers', o.std);
  const fill = o.fill ?? 0;
  if (!(fill >= 0 && fill <= 255)) throw new InvalidArgumentError('preprocess.fill', 'in [0, 255]', fill);
}

/**
 * A short stable id of the options, e.g. `stretch-224x224-m0.485,0.456,0.406-s0.229,0.224,0.225`
 * (letterbox adds `-f<fill>`). Used in feature-cache keys and saved with heads.
 */
export function preprocessingId(o: PreprocessOptions): string {
  validatePreprocess(o);
  const fill = o.resize === 'letterbox' ? `-f${o.fill ?? 0}` : '';
  return `${o.resize}-${o.width}x${o.height}-m${o.mean.join(',')}-s${o.std.join(',')}${fill}`;
}

/** Applies the geometric part only: returns an image of exactly `width × height`, channels unchanged. */
export function resizeForBackbone(img: RasterImage, o: PreprocessOptions): RasterImage {
  assertRaster(img);
  validatePreprocess(o);
  const { width: W, height: H } = o;
  if (o.resize === 'stretch') return resizeBilinear(img, W, H);
  if (o.resize === 'letterbox') {
    const s = Math.min(W / img.width, H / img.height);
    const w = Math.max(1, Math.min(W, Math.round(img.width * s)));
    const h = Math.max(1, Math.min(H, Math.round(img.height * s)));
    const scaled = resizeBilinear(img, w, h);
    const out = createRaster(W, H, img.channels, o.fill ?? 0);
    if (img.channels === 4) for (let i = 3; i < out.data.length; i += 4) out.data[i] = 255;
    paste(out, scaled, Math.floor((W - w) / 2), Math.floor((H - h) / 2));
    return out;
  }
  const s = Math.max(W / img.width, H / img.height);
  const w = Math.max(W, Math.round(img.width * s));
  const h = Math.max(H, Math.round(img.height * s));
  const scaled = resizeBilinear(img, w, h);
  return crop(scaled, { x: Math.floor((w - W) / 2), y: Math.floor((h - H) / 2), width: W, height: H });
}

/**
 * One image → normalized planar RGB, `[3, H, W]` (Float32Array of length 3·H·W), written into `out` at
 * `offset` when given (batch assembly without copies).
 */
export function preprocessImage(
  img: RasterImage,
  o: PreprocessOptions,
  out?: Float32Array,
  offset = 0,
): Float32Array {
  const sized = resizeForBackbone(img, o);
  const rgb = sized.channels === 3 ? sized : toRGB(sized);
  const n = o.width * o.height;
  const dst = out ?? new Float32Array(3 * n);
  const src = rgb.data;
  for (let k = 0; k < 3; k++) {
    const mean = o.mean[k];
    const invStd = 1 / o.std[k];
    const base = offset + k * n;
    for (let p = 0; p < n; p++) dst[base + p] = (src[3 * p + k] / 255 - mean) * invStd;
  }
  return dst;
}

/** Images → `{ data, dims: [N, 3, H, W] }`, the NCHW float batch ONNX vision models take. */
export function preprocessBatch(
  images: readonly RasterImage[],
  o: PreprocessOptions,
): { data: Float32Array; dims: [number, number, number, number] } {
  if (images.length === 0) throw new InvalidArgumentError('images', 'a non-empty array', images.length);
  const per = 3 * o.width * o.height;
  const data = new Float32Array(images.length * per);
  images.forEach((img, i) => preprocessImage(img, o, data, i * per));
  return { data, dims: [images.length, 3, o.height, o.width] };
}
