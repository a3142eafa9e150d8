/**
 * Property tests of the synthetic defect generators (anomalib style): shape and type, binary mask, nothing
 * changes outside the mask, seeds reproduce bytes, options are validated, region/foreground masks respected,
 * impossible masks reported. Inputs: synthetic gray/RGB/RGBA surfaces and real magnetic-tile photos from
 * ../shared (read in place).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/rng.ts';
import { AugmentPipeline, gaussianBlur } from '../../src/core/synth/ops.ts';
import {
  createRaster,
  resizeBilinear,
  toGray,
  toRGB,
  type Channels,
  type RasterImage,
} from '../../src/core/image.ts';
import {
  MaskUnsatisfiableError,
  blurDefect,
  cutPasteDefect,
  generatorDefaults,
  getGenerator,
  listGenerators,
  memsegDefect,
  randomPerlinMask,
  randomWalkDefect,
  TEXTURE_KINDS,
  type DefectResult,
  type GeneratorFn,
} from '../../src/core/synth/index.ts';

const TILES = resolve(import.meta.dirname, '../../../shared/data/magnetic-tile-compact');

function loadPng(path: string): RasterImage {
  const png = decode(readFileSync(path));
  if (png.depth !== 8) throw new Error(`${path}: expected 8-bit PNG`);
  return {
    width: png.width,
    height: png.height,
    channels: png.channels as Channels,
    data: new Uint8ClampedArray(png.data as Uint8Array),
  };
}

interface ManifestItem {
  file: string;
  mask: string | null;
  split: string;
  label_name: string;
}
const manifest = JSON.parse(readFileSync(resolve(TILES, 'manifest.json'), 'utf8')) as {
  items: ManifestItem[];
};
const normals = manifest.items.filter((i) => i.label_name === 'normal').slice(0, 3);
const defective = manifest.items.filter((i) => i.mask !== null).slice(0, 2);
const tiles = normals.map((i) => loadPng(resolve(TILES, i.file)));
const tileDefects = defective.map((i) => ({
  image: loadPng(resolve(TILES, i.file)),
  mask: loadPng(resolve(TILES, i.mask!)),
}));

/** A textured surface (gradient + deterministic noise) with the given channels; alpha varies so it is checked. */
function surface(width: number, height: number, channels: Channels): RasterImage {
  const img = createRaster(width, height, channels);
  let s = 7;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const o = (y * width + x) * channels;
      for (let c = 0; c < channels; c++)
        img.data[o + c] = c === 3 ? 100 + ((x + y) % 100) : 40 + ((150 * x) / width + 30 * c + (s >>> 27));
    }
  return img;
}

const inputs: [string, RasterImage][] = [
  ['gray 96×64', surface(96, 64, 1)],
  ['RGB 80×72', surface(80, 72, 3)],
  ['RGBA 64×64', surface(64, 64, 4)],
  ...tiles.map((t, i): [string, RasterImage] => [`magnetic tile ${i} (${t.width}×${t.height})`, t]),
];

const generators: [string, GeneratorFn][] = [
  ['memseg', memsegDefect],
  ['random_walk', randomWalkDefect],
  ['cutpaste', cutPasteDefect],
  ['blur', blurDefect],
];

/** Checks the invariants every output must satisfy; returns the number of changed pixels. */
function checkInvariants(input: RasterImage, r: DefectResult): number {
  const { width: W, height: H, channels: C } = input;
  expect(r.image.width).toBe(W);
  expect(r.image.height).toBe(H);
  expect(r.image.channels).toBe(C);
  expect(r.image.data).toBeInstanceOf(Uint8ClampedArray);
  expect(r.image.data.length).toBe(W * H * C);
  expect(r.mask.channels).toBe(1);
  expect(r.mask.width).toBe(W);
  expect(r.mask.height).toBe(H);
  expect(r.mask.data).toBeInstanceOf(Uint8ClampedArray);
  let inMask = 0;
  let changed = 0;
  let changedOutside = 0;
  let nonBinary = 0;
  let alphaChanged = 0;
  for (let p = 0; p < W * H; p++) {
    const m = r.mask.data[p];
    if (m !== 0 && m !== 255) nonBinary++;
    if (m) inMask++;
    let diff = false;
    for (let c = 0; c < C; c++) if (r.image.data[p * C + c] !== input.data[p * C + c]) diff = true;
    if (diff) {
      changed++;
      if (!m) changedOutside++;
    }
    if (C === 4 && r.image.data[p * 4 + 3] !== input.data[p * 4 + 3]) alphaChanged++;
  }
  expect(alphaChanged).toBe(0);
  expect(nonBinary).toBe(0);
  expect(inMask).toBeGreaterThan(0);
  expect(changedOutside).toBe(0);
  expect(() => JSON.stringify(r.params)).not.toThrow();
  return changed;
}

describe.each(generators)('%s: properties', (name, fn) => {
  it.each(inputs)(
    'keeps shape and type, binary non-empty mask, nothing changes outside it (%s)',
    (_, img) => {
      const before = new Uint8ClampedArray(img.data);
      let changedTotal = 0;
      for (let seed = 0; seed < 6; seed++) changedTotal += checkInvariants(img, fn(img, {}, seed));
      expect(changedTotal).toBeGreaterThan(0); // the defects do something
      expect(img.data).toEqual(before); // the input is never written
    },
  );

  it('same seed → identical bytes; different seeds → different outputs', () => {
    const img = inputs[1][1];
    const a = fn(img, {}, 42);
    const b = fn(img, {}, 42);
    expect(b.image.data).toEqual(a.image.data);
    expect(b.mask.data).toEqual(a.mask.data);
    expect(JSON.stringify(b.params)).toBe(JSON.stringify(a.params));
    const c = fn(img, {}, 43);
    expect(
      Buffer.from(c.mask.data).equals(Buffer.from(a.mask.data)) &&
        Buffer.from(c.image.data).equals(Buffer.from(a.image.data)),
    ).toBe(false);
    expect(fn(img, {}, 'run-1:7').image.data).toEqual(fn(img, {}, 'run-1:7').image.data);
  });

  it('stays inside a user region mask (a real labelled defect mask)', () => {
    for (const { image, mask } of tileDefects) {
      for (let seed = 0; seed < 4; seed++) {
        const r = fn(image, { region_mask: mask }, seed);
        checkInvariants(image, r);
        for (let p = 0; p < mask.data.length; p++) if (r.mask.data[p]) expect(mask.data[p]).not.toBe(0);
      }
    }
  });

  it('respects the foreground mask (gray threshold, and inverted)', () => {
    const img = tiles[0];
    const gray = toGray(img).data;
    const t = 100;
    for (let seed = 0; seed < 3; seed++) {
      const fg = fn(img, { foreground_threshold: t }, seed);
      for (let p = 0; p < gray.length; p++) if (fg.mask.data[p]) expect(gray[p]).toBeGreaterThan(t);
      const inv = fn(img, { foreground_threshold: t, foreground_invert: true }, seed);
      for (let p = 0; p < gray.length; p++) if (inv.mask.data[p]) expect(gray[p]).toBeLessThanOrEqual(t);
    }
  });

  it('reports an empty allowed area at once instead of looping', () => {
    const img = inputs[0][1];
    const empty = createRaster(img.width, img.height, 1);
    let err: unknown;
    try {
      fn(img, { region_mask: empty }, 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MaskUnsatisfiableError);
    expect((err as MaskUnsatisfiableError).attempts).toBe(0);
    expect((err as Error).message).toMatch(/allowed area .* is empty.* — fix:/);
    // A foreground threshold nothing exceeds is the same situation.
    expect(() => fn(img, { foreground_threshold: 255 }, 1)).toThrow(MaskUnsatisfiableError);
  });

  it('validates options with messages naming the option and value', () => {
    const img = inputs[0][1];
    expect(() => fn(img, { max_attempts: 0 }, 1)).toThrow(
      /max_attempts must be an integer in \[1, 1000\], got 0/,
    );
    expect(() => fn(img, { no_such_option: 1 }, 1)).toThrow(InvalidArgumentError);
    expect(() => fn(img, { region_mask: createRaster(3, 3, 1) }, 1)).toThrow(
      /region_mask size must be 96×64/,
    );
    expect(() => fn(img, {}, -1)).toThrow(/seed must be/);
    expect(() => fn({ width: 2, height: 2, channels: 1, data: new Uint8ClampedArray(3) }, {}, 1)).toThrow(
      /image.data.length/,
    );
  });

  it('is listed in the registry with defaults that resolve', () => {
    const entry = getGenerator(name);
    expect(entry.fn).toBe(fn);
    const defaults = generatorDefaults(name);
    expect(Object.keys(defaults).sort()).toEqual(entry.schema.options.map((o) => o.key).sort());
    // Passing the defaults explicitly is the same as passing nothing.
    const img = inputs[1][1];
    expect(fn(img, defaults, 5).image.data).toEqual(fn(img, {}, 5).image.data);
    expect(structuredClone(entry.schema)).toEqual(entry.schema); // crosses a worker boundary
  });
});

describe('memsegDefect specifics', () => {
  const img = inputs[1][1];

  it('blend factor stays within blend_factor and rejects out-of-range values', () => {
    for (let seed = 0; seed < 30; seed++) {
      const f = memsegDefect(img, { blend_factor: [0.3, 0.6] }, seed).params.blend_factor as number;
      expect(f).toBeGreaterThanOrEqual(0.3);
      expect(f).toBeLessThanOrEqual(0.6);
    }
    expect(() => memsegDefect(img, { blend_factor: 1.4 }, 1)).toThrow(
      /blend_factor must be in \[0, 1\], got 1.4/,
    );
    expect(() => memsegDefect(img, { blend_factor: [0.8, 0.2] }, 1)).toThrow(/lo ≤ hi/);
    expect(() => memsegDefect(img, { p_texture: 2 }, 1)).toThrow(/p_texture must be in \[0, 1\], got 2/);
  });

  it('blends factor·source + (1 − factor)·image inside the mask (constant texture, tolerance 0.5 + rounding)', () => {
    const tex = createRaster(10, 10, 3, 200);
    for (let seed = 0; seed < 5; seed++) {
      const r = memsegDefect(img, { p_texture: 1, textures: [tex] }, seed);
      const f = r.params.blend_factor as number;
      expect(f).toBeGreaterThanOrEqual(0.15);
      expect(f).toBeLessThanOrEqual(1);
      for (let p = 0; p < img.width * img.height; p++) {
        if (!r.mask.data[p]) continue;
        for (let c = 0; c < 3; c++) {
          const expected = f * 200 + (1 - f) * img.data[p * 3 + c];
          expect(Math.abs(r.image.data[p * 3 + c] - expected)).toBeLessThanOrEqual(0.5);
        }
      }
    }
    // blend_factor 1: the source replaces the image inside the mask.
    const full = memsegDefect(img, { p_texture: 1, textures: [tex], blend_factor: 1 }, 3);
    for (let p = 0; p < img.width * img.height; p++)
      if (full.mask.data[p]) expect(full.image.data[p * 3]).toBe(200);
  });

  it('texture images of any size are resized bilinearly (another dataset image as the source)', () => {
    const tex = surface(23, 17, 3);
    for (let i = 0; i < tex.data.length; i++) tex.data[i] = (i * 37) % 256;
    const r = memsegDefect(img, { p_texture: 1, textures: [createRaster(5, 5, 1), tex], blend_factor: 1 }, 8);
    const k = (r.params.texture as { image_index: number }).image_index;
    const expected =
      k === 1
        ? resizeBilinear(tex, img.width, img.height)
        : toRGB(resizeBilinear(createRaster(5, 5, 1), img.width, img.height));
    let mismatches = 0;
    for (let p = 0; p < img.width * img.height; p++)
      if (r.mask.data[p])
        for (let c = 0; c < 3; c++) if (r.image.data[p * 3 + c] !== expected.data[p * 3 + c]) mismatches++;
    expect(mismatches).toBe(0);
  });

  it('draws from every procedural texture kind it is given', () => {
    for (const kind of TEXTURE_KINDS) {
      const r = memsegDefect(img, { p_texture: 1, texture_kinds: [kind] }, 2);
      expect(r.params.texture).toEqual({ kind });
      expect(r.image.data).not.toEqual(img.data);
    }
  });

  it('p_texture 0 never uses a texture; p_texture 1 always does; 0.5 about half the time', () => {
    const a = createRaster(8, 8, 3, 10);
    const b = createRaster(8, 8, 3, 250);
    for (let seed = 0; seed < 25; seed++) {
      const ra = memsegDefect(img, { p_texture: 0, textures: [a] }, seed);
      expect(ra.params.source).toBe('structure');
      // The texture cannot influence the output when it is never used.
      expect(memsegDefect(img, { p_texture: 0, textures: [b] }, seed).image.data).toEqual(ra.image.data);
      expect(memsegDefect(img, { p_texture: 1 }, seed).params.source).toBe('texture');
    }
    let textured = 0;
    for (let seed = 0; seed < 200; seed++)
      if (memsegDefect(img, {}, seed).params.source === 'texture') textured++;
    // Binomial(200, 0.5): mean 100, sd 7.1; ±5 sd.
    expect(textured).toBeGreaterThan(64);
    expect(textured).toBeLessThan(136);
  });

  it('structure source is the augmented image cut into shuffled tiles (invert only, blend 1)', () => {
    const g = inputs[0][1]; // 96×64 gray → 8×8 tiles of 12×8
    for (const grid of [1, 8]) {
      const r = memsegDefect(
        g,
        { p_texture: 0, structure_ops: ['invert'], n_ops: 1, grid, blend_factor: 1 },
        11,
      );
      const perm = r.params.tile_permutation as number[];
      expect(perm.length).toBe(grid * grid);
      expect([...perm].sort((x, y) => x - y)).toEqual(perm.map((_, i) => i));
      const tw = 96 / grid;
      const th = 64 / grid;
      for (let y = 0; y < 64; y++)
        for (let x = 0; x < 96; x++) {
          if (!r.mask.data[y * 96 + x]) continue;
          const tx = Math.floor(x / tw);
          const ty = Math.floor(y / th);
          const s = perm[ty * grid + tx];
          const sx = (s % grid) * tw + (x - tx * tw);
          const sy = Math.floor(s / grid) * th + (y - ty * th);
          expect(r.image.data[y * 96 + x]).toBe(255 - g.data[sy * 96 + sx]);
        }
    }
  });

  it('draws n_ops distinct ops from structure_ops and skips hue/saturation on gray images', () => {
    for (let seed = 0; seed < 40; seed++) {
      const r = memsegDefect(inputs[0][1], { p_texture: 0 }, seed);
      const ops = (r.params.ops as { op: string }[]).map((o) => o.op);
      expect(ops.length).toBe(3);
      expect(new Set(ops).size).toBe(3);
      expect(ops).not.toContain('hue_saturation');
    }
  });

  it('gives up after max_attempts with MaskUnsatisfiableError when no noise exceeds the threshold', () => {
    let err: unknown;
    try {
      memsegDefect(img, { threshold: 1, max_attempts: 7 }, 1); // noise ≤ 1, so "> 1" never holds
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MaskUnsatisfiableError);
    expect((err as MaskUnsatisfiableError).attempts).toBe(7);
    expect((err as Error).message).toMatch(/after 7 attempts .* — fix:/);
  });

  it('keeps the mask inside the rotated Perlin pattern scale 2^k, angle within rotation_range', () => {
    for (let seed = 0; seed < 20; seed++) {
      const p = memsegDefect(img, { rotation_range: [-10, 10] }, seed).params;
      const [sx, sy] = p.perlin_scale as number[];
      expect([1, 2, 4, 8, 16, 32]).toContain(sx);
      expect([1, 2, 4, 8, 16, 32]).toContain(sy);
      expect(Math.abs(p.angle as number)).toBeLessThanOrEqual(10);
    }
  });
});

describe('structure ops', () => {
  it('computing only the needed pixels gives the same values there as computing all of them', () => {
    const base = surface(50, 40, 3);
    const need = new Uint8Array(50 * 40);
    for (let i = 0; i < need.length; i += 7) need[i] = 1;
    for (const op of ['sharpness', 'hue_saturation', 'rotate', 'brightness'] as const) {
      const full = new AugmentPipeline({
        width: 50,
        height: 40,
        cc: 3,
        data: new Uint8ClampedArray(base.data),
      });
      const part = new AugmentPipeline({
        width: 50,
        height: 40,
        cc: 3,
        data: new Uint8ClampedArray(base.data),
      });
      expect(part.apply(op, new Rng(5), need)).toEqual(full.apply(op, new Rng(5)));
      let diff = 0;
      for (let p = 0; p < need.length; p++)
        if (need[p]) for (let c = 0; c < 3; c++) if (part.read(p * 3, c) !== full.read(p * 3, c)) diff++;
      expect(diff).toBe(0);
    }
  });

  it('the masked Gaussian blur equals a direct 2-D convolution at the needed pixels (tolerance 1e-4)', () => {
    const [W, H, C] = [37, 29, 3];
    const img = surface(W, H, 3);
    const where = new Uint8Array(W * H);
    for (let i = 0; i < where.length; i += 3) where[i] = 1;
    const [sx, sy] = [2.3, 4.1];
    const kernel = (s: number) => {
      const r = Math.ceil(3 * s);
      const a = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * s * s)));
      const sum = a.reduce((x, y) => x + y, 0);
      return a.map((v) => v / sum);
    };
    const kx = kernel(sx);
    const ky = kernel(sy);
    const rx = (kx.length - 1) / 2;
    const ry = (ky.length - 1) / 2;
    const clamp = (v: number, n: number) => Math.min(n - 1, Math.max(0, v));
    const out = gaussianBlur(img.data, W, H, C, sx, sy, where);
    let maxErr = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        if (!where[y * W + x]) continue;
        for (let c = 0; c < C; c++) {
          let acc = 0;
          for (let j = -ry; j <= ry; j++)
            for (let i = -rx; i <= rx; i++)
              acc += ky[j + ry] * kx[i + rx] * img.data[(clamp(y + j, H) * W + clamp(x + i, W)) * C + c];
          maxErr = Math.max(maxErr, Math.abs(acc - out[(y * W + x) * C + c]));
        }
      }
    expect(maxErr).toBeLessThan(1e-4);
  });

  it('composes look-up-table ops lazily: histograms and reads match applying them one by one', () => {
    const base = surface(40, 30, 3);
    const lazy = new AugmentPipeline({
      width: 40,
      height: 30,
      cc: 3,
      data: new Uint8ClampedArray(base.data),
    });
    const eager = new AugmentPipeline({
      width: 40,
      height: 30,
      cc: 3,
      data: new Uint8ClampedArray(base.data),
    });
    const r1 = new Rng(9);
    const r2 = new Rng(9);
    for (const op of ['gamma', 'invert', 'equalize', 'posterize', 'autocontrast'] as const) {
      lazy.apply(op, r1);
      eager.apply(op, r2);
      eager.flush();
    }
    expect(lazy.lut).not.toBeNull();
    lazy.flush();
    expect(lazy.buf.data).toEqual(eager.buf.data);
  });
});

describe('randomWalkDefect specifics', () => {
  const img = inputs[1][1];
  it('bright defects only brighten, dark ones only darken', () => {
    for (let seed = 0; seed < 8; seed++) {
      const br = randomWalkDefect(img, { contrast: 'bright' }, seed);
      const dk = randomWalkDefect(img, { contrast: 'dark' }, seed);
      let wrong = 0;
      for (let i = 0; i < img.data.length; i++) {
        if (br.image.data[i] < img.data[i]) wrong++;
        if (dk.image.data[i] > img.data[i]) wrong++;
      }
      expect(wrong).toBe(0);
    }
  });

  it('scratches are long and thin, pinholes small (length and width options)', () => {
    const big = surface(200, 200, 1);
    for (let seed = 0; seed < 5; seed++) {
      const s = randomWalkDefect(
        big,
        { kind: 'scratch', length: 120, width: 2, intensity: 100, softness: 0 },
        seed,
      );
      let n = 0;
      let x0 = 1e9;
      let x1 = -1;
      let y0 = 1e9;
      let y1 = -1;
      for (let p = 0; p < 200 * 200; p++)
        if (s.mask.data[p]) {
          n++;
          const x = p % 200;
          const y = Math.floor(p / 200);
          x0 = Math.min(x0, x);
          x1 = Math.max(x1, x);
          y0 = Math.min(y0, y);
          y1 = Math.max(y1, y);
        }
      const extent = Math.hypot(x1 - x0, y1 - y0);
      // A near-straight 120-step walk that heads into the image spans at least 60 px of a 200 px image.
      expect(extent).toBeGreaterThan(60);
      expect(n).toBeLessThan(120 * 4);
      const ph = randomWalkDefect(big, { kind: 'pinhole' }, seed);
      expect(ph.mask.data.reduce((a, v) => a + (v ? 1 : 0), 0)).toBeLessThanOrEqual(40);
    }
  });

  it('validates kind and contrast', () => {
    expect(() => randomWalkDefect(img, { kind: 'crack' } as never, 1)).toThrow(
      /kind must be one of random, pinhole/,
    );
    // null length/width/momentum mean "the kind decides"; a number means exactly that value.
    const r = randomWalkDefect(img, { kind: 'spot', length: null, width: 6 }, 1);
    expect((r.params.strokes as { width: number }[])[0].width).toBe(6);
    expect(() => randomWalkDefect(img, { intensity: [10, 300] }, 1)).toThrow(
      /intensity must be in \[0, 255\], got 300/,
    );
  });
});

describe('cutPasteDefect specifics', () => {
  const img = inputs[1][1];
  it('normal patches cover about area_ratio of the image; scars are thin', () => {
    const n = img.width * img.height;
    for (let seed = 0; seed < 10; seed++) {
      const r = cutPasteDefect(img, { variant: 'normal', area_ratio: [0.05, 0.1] }, seed);
      const px = r.params.patch as number[];
      expect(px[0] * px[1]).toBeGreaterThan(0.03 * n);
      expect(px[0] * px[1]).toBeLessThan(0.13 * n);
      const m = r.mask.data.reduce((a, v) => a + (v ? 1 : 0), 0);
      expect(m).toBeLessThanOrEqual(px[0] * px[1] + 2);
      const s = cutPasteDefect(img, { variant: 'scar' }, seed);
      const sm = s.mask.data.reduce((a, v) => a + (v ? 1 : 0), 0);
      expect(sm).toBeLessThanOrEqual(16 * 25 + 40);
      expect(s.params.variant).toBe('scar');
    }
  });
});

describe('blurDefect specifics', () => {
  it('changes nothing on a constant image (a blur of a constant is the constant)', () => {
    const flat = createRaster(64, 48, 3, 90);
    const r = blurDefect(flat, {}, 2);
    expect(r.mask.data.some((v) => v === 255)).toBe(true);
    expect(r.image.data).toEqual(flat.data);
  });

  it('keeps blurred values within the local range and smooths (lower total variation inside the mask)', () => {
    const img = tiles[1];
    const r = blurDefect(img, { sigma: [3, 3] }, 4);
    const W = img.width;
    let tvIn = 0;
    let tvOut = 0;
    for (let p = 0; p < img.data.length - 1; p++) {
      if (!r.mask.data[p] || !r.mask.data[p + 1] || (p + 1) % W === 0) continue;
      tvIn += Math.abs(img.data[p + 1] - img.data[p]);
      tvOut += Math.abs(r.image.data[p + 1] - r.image.data[p]);
    }
    expect(tvOut).toBeLessThan(tvIn);
  });
});

describe('registry and region masks', () => {
  it('lists the four generators with their schemas', () => {
    expect(listGenerators().map((g) => g.name)).toEqual(['memseg', 'random_walk', 'cutpaste', 'blur']);
    expect(() => getGenerator('nope')).toThrow(/generator must be one of memseg/);
  });

  it('random Perlin region masks are binary, non-empty and seeded', () => {
    const a = randomPerlinMask(120, 80, {}, 3);
    expect(a.channels).toBe(1);
    expect(a.data.every((v) => v === 0 || v === 255)).toBe(true);
    expect(a.data.some((v) => v === 255)).toBe(true);
    expect(randomPerlinMask(120, 80, {}, 3).data).toEqual(a.data);
    expect(randomPerlinMask(120, 80, {}, 4).data).not.toEqual(a.data);
  });
});
