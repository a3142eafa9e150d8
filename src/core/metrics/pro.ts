/**
 * Pixel-level PRO (per-region overlap) and AUPRO as defined by MVTec AD (Bergmann et al., IJCV 2021) and its
 * reference evaluation code (`compute_pro` + `trapezoid` in mvtec_ad_evaluation):
 * - ground-truth regions are the 8-connected components of each mask (scipy `label` with a 3×3 structure);
 * - at a threshold t, PRO(t) = mean over all regions of all images of |region ∩ {score ≥ t}| / |region|, and
 *   FPR(t) = false-positive pixels / all defect-free pixels, pooled over every image;
 * - the curve is taken at every distinct score, (0, 0) and (1, 1) are added, and AUPRO is the trapezoid area
 *   under it for FPR ∈ [0, fprLimit] (the end point linearly interpolated) divided by fprLimit.
 */
import { InvalidArgumentError } from '../errors.ts';

/** A per-pixel anomaly map [H, W], row-major. Higher = more anomalous. */
export interface ScoreMap {
  width: number;
  height: number;
  data: ArrayLike<number>;
}

/** A ground-truth mask [H, W]: non-zero = defect. A single-channel `RasterImage` qualifies. */
export interface MaskLike {
  width: number;
  height: number;
  channels?: number;
  data: ArrayLike<number>;
}

export interface ProCurve {
  /** From 0 to 1, non-decreasing; first point (0, 0), last (1, 1). */
  fpr: Float64Array;
  pro: Float64Array;
  /** Threshold of each point; +Infinity for the (0, 0) start and -Infinity for the (1, 1) end. */
  thresholds: Float64Array;
  regions: number;
}

/**
 * 8-connected component labelling of a mask [H, W]. Returns labels (0 = background, 1..count) and the
 * region sizes (`sizes[k-1]` is the pixel count of label k).
 */
export function labelComponents(mask: MaskLike): { labels: Int32Array; count: number; sizes: number[] } {
  const { width: w, height: h } = mask;
  const labels = new Int32Array(w * h);
  const sizes: number[] = [];
  const stack: number[] = [];
  let count = 0;
  for (let start = 0; start < w * h; start++) {
    if (!mask.data[start] || labels[start]) continue;
    count++;
    let size = 0;
    labels[start] = count;
    stack.push(start);
    while (stack.length) {
      const p = stack.pop() as number;
      size++;
      const x = p % w;
      const y = (p - x) / w;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= w) continue;
          const q = yy * w + xx;
          if (mask.data[q] && !labels[q]) {
            labels[q] = count;
            stack.push(q);
          }
        }
      }
    }
    sizes.push(size);
  }
  return { labels, count, sizes };
}

function checkPairs(maps: readonly ScoreMap[], masks: readonly MaskLike[]): void {
  if (maps.length !== masks.length)
    throw new InvalidArgumentError('masks.length', `equal to maps.length (${maps.length})`, masks.length);
  maps.forEach((m, i) => {
    const k = masks[i];
    if (m.width !== k.width || m.height !== k.height)
      throw new InvalidArgumentError(
        `masks[${i}] size`,
        `${m.width}×${m.height} (the size of maps[${i}]; resize the map or the mask first)`,
        `${k.width}×${k.height}`,
      );
    if (k.channels !== undefined && k.channels !== 1)
      throw new InvalidArgumentError(`masks[${i}].channels`, '1 (a binary mask)', k.channels);
    if (m.data.length !== m.width * m.height)
      throw new InvalidArgumentError(`maps[${i}].data.length`, `${m.width * m.height}`, m.data.length);
  });
}

/** The PRO curve over every distinct pixel score. `regions` is 0 (and PRO NaN) when no mask has a defect. */
export function proCurve(maps: readonly ScoreMap[], masks: readonly MaskLike[]): ProCurve {
  checkPairs(maps, masks);
  let okCount = 0;
  let defectCount = 0;
  const comps = masks.map((m) => labelComponents(m));
  let regions = 0;
  for (const c of comps) {
    regions += c.count;
    for (const s of c.sizes) defectCount += s;
  }
  for (const m of masks) okCount += m.width * m.height;
  okCount -= defectCount;

  // Defect-free pixels only count, so their scores sort natively; defect pixels carry a weight
  // (1 / region size), so they are sorted by index — there are usually far fewer of them.
  const neg = new Float64Array(okCount);
  const posScore = new Float64Array(defectCount);
  const posWeight = new Float64Array(defectCount);
  let a = 0;
  let b = 0;
  maps.forEach((map, i) => {
    const { labels, sizes } = comps[i];
    for (let p = 0; p < labels.length; p++) {
      const s = map.data[p];
      if (Number.isNaN(s)) throw new InvalidArgumentError(`maps[${i}].data[${p}]`, 'a number (not NaN)', NaN);
      const l = labels[p];
      if (l === 0) neg[a++] = s;
      else {
        posScore[b] = s;
        posWeight[b++] = 1 / sizes[l - 1];
      }
    }
  });
  neg.sort();
  const order = Uint32Array.from({ length: defectCount }, (_, i) => i).sort(
    (x, y) => posScore[x] - posScore[y],
  );

  const n = okCount + defectCount;
  const fpr = new Float64Array(n + 2);
  const pro = new Float64Array(n + 2);
  const thr = new Float64Array(n + 2);
  thr[0] = Infinity;
  let i = defectCount - 1;
  let j = okCount - 1;
  let k = 1;
  let fp = 0;
  let overlap = 0;
  while (i >= 0 || j >= 0) {
    const ps = i >= 0 ? posScore[order[i]] : -Infinity;
    const t = j < 0 ? ps : i < 0 ? neg[j] : Math.max(ps, neg[j]);
    while (i >= 0 && posScore[order[i]] === t) overlap += posWeight[order[i--]];
    while (j >= 0 && neg[j] === t) {
      fp++;
      j--;
    }
    thr[k] = t;
    fpr[k] = Math.min(1, fp / okCount);
    pro[k] = Math.min(1, overlap / regions);
    k++;
  }
  thr[k] = -Infinity;
  fpr[k] = 1;
  pro[k] = 1;
  k++;
  return { fpr: fpr.slice(0, k), pro: pro.slice(0, k), thresholds: thr.slice(0, k), regions };
}

/**
 * Mean per-region overlap at one threshold (pixels with score ≥ threshold count as detected); NaN when the
 * masks hold no defect region.
 */
export function pro(maps: readonly ScoreMap[], masks: readonly MaskLike[], threshold: number): number {
  checkPairs(maps, masks);
  let sum = 0;
  let regions = 0;
  maps.forEach((map, i) => {
    const { labels, count, sizes } = labelComponents(masks[i]);
    const hit = new Float64Array(count);
    for (let p = 0; p < labels.length; p++) if (labels[p] && map.data[p] >= threshold) hit[labels[p] - 1]++;
    for (let r = 0; r < count; r++) sum += hit[r] / sizes[r];
    regions += count;
  });
  return regions === 0 ? NaN : sum / regions;
}

/**
 * Area under the PRO curve up to `fprLimit`, normalized by the limit (1 = perfect). NaN when there is no defect
 * region or no defect-free pixel.
 */
export function auPro(maps: readonly ScoreMap[], masks: readonly MaskLike[], fprLimit = 0.3): number {
  if (!(fprLimit > 0 && fprLimit <= 1))
    throw new InvalidArgumentError('fprLimit', 'a number in (0, 1]', fprLimit);
  const c = proCurve(maps, masks);
  if (c.regions === 0) return NaN;
  const { fpr: x, pro: y } = c;
  if (x.length < 2 || Number.isNaN(x[1])) return NaN;
  let area = 0;
  let k = 1;
  for (; k < x.length && x[k] <= fprLimit; k++) area += 0.5 * (y[k] + y[k - 1]) * (x[k] - x[k - 1]);
  // Reference `trapezoid`: when the limit falls between two points, add the slice up to the interpolated value.
  if (k < x.length && x[k - 1] < fprLimit) {
    const yi = y[k - 1] + ((y[k] - y[k - 1]) * (fprLimit - x[k - 1])) / (x[k] - x[k - 1]);
    area += 0.5 * (yi + y[k - 1]) * (fprLimit - x[k - 1]);
  }
  return area / fprLimit;
}
