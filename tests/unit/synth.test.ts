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
import { blurMask } from '../../src/core/mask/index.ts';
import { AugmentPipeline, gaussianBlur, type StructureOp } from '../../src/core/synth/ops.ts';
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
  featherDefect,
  generatorDefaults,
  getGenerator,
  listGenerators,
  memsegDefect,
  randomPerlinMask,
  randomWalkDefect,
  RegionCoverageError,
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
    const H = img.height;
    // A Gaussian's weights are positive and sum to 1, so each blurred pixel lies in [min, max] of the input over
    // the kernel's support (radius ceil(3σ) = 9, borders replicated); rounding to integers keeps it there.
    const R = 9;
    let outOfRange = 0;
    let checked = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        if (!r.mask.data[y * W + x]) continue;
        let lo = 255;
        let hi = 0;
        for (let j = -R; j <= R; j++)
          for (let i = -R; i <= R; i++) {
            const v = img.data[Math.min(H - 1, Math.max(0, y + j)) * W + Math.min(W - 1, Math.max(0, x + i))];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
          }
        const out = r.image.data[y * W + x];
        checked++;
        if (out < lo || out > hi) outOfRange++;
      }
    expect(checked).toBeGreaterThan(100);
    expect(outOfRange).toBe(0);
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
  it('lists the five generators with their schemas', () => {
    expect(listGenerators().map((g) => g.name)).toEqual([
      'memseg',
      'random_walk',
      'cutpaste',
      'blur',
      'transplant',
    ]);
    expect(() => getGenerator('nope')).toThrow(/generator must be one of memseg/);
  });

  it('random Perlin region masks are binary, seeded, cover min_coverage, and use MemSeg’s draw (2^k, rotation)', () => {
    const a = randomPerlinMask(120, 80, {}, 3);
    expect(a.mask.channels).toBe(1);
    expect([a.mask.width, a.mask.height]).toEqual([120, 80]);
    expect(a.mask.data.every((v) => v === 0 || v === 255)).toBe(true);
    expect(randomPerlinMask(120, 80, {}, 3).mask.data).toEqual(a.mask.data);
    expect(randomPerlinMask(120, 80, {}, 4).mask.data).not.toEqual(a.mask.data);
    for (let seed = 0; seed < 30; seed++) {
      const { mask, params } = randomPerlinMask(64, 48, {}, `lib-${seed}`);
      const on = mask.data.reduce((n, v) => n + (v ? 1 : 0), 0);
      expect(on).toBeGreaterThanOrEqual(Math.ceil(0.005 * 64 * 48)); // default min_coverage 0.5%
      expect(params.coverage).toBeCloseTo(on / (64 * 48), 12);
      // Default lattice exponents k ∈ {0, …, 3}: sizes 1, 2, 4, 8; angle in the default [−90°, 90°].
      for (const sc of params.perlin_scale) expect([1, 2, 4, 8]).toContain(sc);
      expect(Math.abs(params.angle)).toBeLessThanOrEqual(90);
    }
  });

  it('random region masks are rotated: 90° on a square image is the 0° mask turned a quarter', () => {
    const W = 64;
    const base = { perlin_scale: [2, 2] as [number, number], threshold: 0.1, min_coverage: 0 };
    for (const seed of [1, 2, 3]) {
      const m0 = randomPerlinMask(W, W, { ...base, rotation_range: [0, 0] }, seed).mask;
      const m90 = randomPerlinMask(W, W, { ...base, rotation_range: [90, 90] }, seed).mask;
      // Output (x, y) reads the field at R(−90°)·(p − c) + c = (y, W − 1 − x) (column, row).
      let mismatches = 0;
      for (let y = 0; y < W; y++)
        for (let x = 0; x < W; x++) if (m90.data[y * W + x] !== m0.data[(W - 1 - x) * W + y]) mismatches++;
      // cos 90° is 6e-17 in floating point, so a pixel exactly at the threshold could flip; none should.
      expect(mismatches).toBeLessThanOrEqual(2);
      expect(m90.data).not.toEqual(m0.data);
    }
  });

  it('an unreachable region coverage is reported after max_attempts, not looped', () => {
    let err: unknown;
    try {
      // Noise never exceeds 1, so at threshold 0.99 no draw covers 90% of the image.
      randomPerlinMask(32, 32, { threshold: 0.99, min_coverage: 0.9, max_attempts: 5 }, 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegionCoverageError);
    expect((err as RegionCoverageError).attempts).toBe(5);
    expect((err as Error).message).toMatch(/90\.00% of the image .* in 5 attempts — fix:/);
    expect(() => randomPerlinMask(32, 32, { min_coverage: 1.5 }, 1)).toThrow(/min_coverage must be in/);
  });
});

/** Pixels of a mask as [x, y] pairs. */
function maskPoints(m: RasterImage): [number, number][] {
  const pts: [number, number][] = [];
  for (let p = 0; p < m.data.length; p++) if (m.data[p]) pts.push([p % m.width, Math.floor(p / m.width)]);
  return pts;
}

/** Largest distance between two mask pixels (the end-to-end span of a stroke). */
function span(m: RasterImage): number {
  const pts = maskPoints(m);
  let best = 0;
  for (let i = 0; i < pts.length; i++)
    for (let j = i + 1; j < pts.length; j++)
      best = Math.max(best, Math.hypot(pts[i][0] - pts[j][0], pts[i][1] - pts[j][1]));
  return best;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('bounded retries with a non-empty but too-small allowed area', () => {
  /** A single allowed pixel at (x, y). */
  const onePixel = (w: number, h: number, x: number, y: number) => {
    const m = createRaster(w, h, 1);
    m.data[y * w + x] = 255;
    return m;
  };
  const failure = (f: () => unknown): MaskUnsatisfiableError | null => {
    try {
      f();
      return null;
    } catch (e) {
      if (e instanceof MaskUnsatisfiableError) return e;
      throw e;
    }
  };

  it('blur: a 1-px region on a lattice point (noise exactly 0) fails after exactly max_attempts', () => {
    const img = inputs[1][1];
    // Unrotated, pixel (0, 0) reads the field at lattice point (0, 0), where Perlin noise is 0 < threshold.
    const e = failure(() =>
      blurDefect(img, { region_mask: onePixel(80, 72, 0, 0), rotation_range: [0, 0], max_attempts: 9 }, 1),
    );
    expect(e).not.toBeNull();
    expect(e!.attempts).toBe(9);
    expect(e!.allowedPixels).toBe(1);
    expect(e!.message).toMatch(/blur: no non-empty defect mask after 9 attempts \(allowed area 1 px/);
  });

  it('cutpaste: a 1-px area in 256×256 is rarely hit; misses are reported after max_attempts', () => {
    const img = surface(256, 256, 3);
    const region = onePixel(256, 256, 200, 37);
    // Each placement tries 64 random pixels, so it finds the one allowed pixel with p ≈ 64 / 65536.
    for (let seed = 0; seed < 8; seed++) {
      const e = failure(() => cutPasteDefect(img, { region_mask: region, max_attempts: 4 }, seed));
      expect(e).not.toBeNull();
      expect(e!.attempts).toBe(4);
      expect(e!.allowedPixels).toBe(1);
      expect(e!.totalPixels).toBe(256 * 256);
      expect(e!.message).toMatch(/cutpaste: .* after 4 attempts .* — fix:/);
    }
  });

  it('random walk: a 1-px area a faint soft pinhole often misses ends in success or a bounded failure', () => {
    const img = surface(64, 48, 1);
    const region = onePixel(64, 48, 30, 20);
    // Softness 1 and intensity 0.9: only brush centres within ≈ 0.22 px of the pixel mark it (change ≥ 0.5).
    const opts = {
      region_mask: region,
      kind: 'pinhole' as const,
      width: 1,
      softness: 1,
      intensity: 0.9,
      max_attempts: 3,
    };
    let failures = 0;
    let successes = 0;
    for (let seed = 0; seed < 40; seed++) {
      const e = failure(() => {
        const r = randomWalkDefect(img, opts, seed);
        expect(maskPoints(r.mask)).toEqual([[30, 20]]);
        expect(r.params.attempts as number).toBeLessThanOrEqual(3);
        successes++;
      });
      if (e) {
        failures++;
        expect(e.attempts).toBe(3);
        expect(e.allowedPixels).toBe(1);
      }
    }
    expect(failures).toBeGreaterThan(0); // the failure path is exercised …
    expect(successes).toBeGreaterThan(0); // … and so is a walk that does land on the pixel
  });
});

describe('memseg default mask draws', () => {
  it('angles cover [−90°, 90°] about uniformly; lattice exponents k take every value 0…5', () => {
    const img = createRaster(64, 64, 3, 120);
    const angles: number[] = [];
    const kCount = [new Array(8).fill(0), new Array(8).fill(0)];
    const N = 300;
    for (let seed = 0; seed < N; seed++) {
      const p = memsegDefect(img, { p_texture: 1, texture_kinds: ['stripes'] }, seed).params;
      angles.push(p.angle as number);
      (p.perlin_scale as number[]).forEach((sc, axis) => kCount[axis][Math.log2(sc)]++);
    }
    expect(Math.min(...angles)).toBeGreaterThanOrEqual(-90);
    expect(Math.max(...angles)).toBeLessThanOrEqual(90);
    expect(Math.min(...angles)).toBeLessThan(-80);
    expect(Math.max(...angles)).toBeGreaterThan(80);
    // Six 30° bins, expected 50 each (sd ≈ 6.5); a range of ±60° or ±180° would empty or overfill bins.
    const bins = new Array(6).fill(0);
    for (const a of angles) bins[Math.min(5, Math.floor((a + 90) / 30))]++;
    for (const b of bins) {
      expect(b).toBeGreaterThan(25);
      expect(b).toBeLessThan(80);
    }
    for (const axis of kCount) {
      // Only 2^0 … 2^5 (on 64 px no size is clipped); each exponent is drawn (expected ≈ 50 of 300).
      expect(axis.slice(6)).toEqual([0, 0]);
      for (let k = 0; k <= 5; k++) expect(axis[k]).toBeGreaterThan(15);
    }
  });
});

describe('structure op parameter ranges (MemSeg / imgaug)', () => {
  /** Draws `op`'s parameters over many seeds on a small buffer. */
  function draws(op: StructureOp, n = 400, cc: 1 | 3 = 3) {
    const out: Record<string, unknown>[] = [];
    for (let seed = 0; seed < n; seed++) {
      const pipe = new AugmentPipeline({
        width: 6,
        height: 5,
        cc,
        data: new Uint8ClampedArray(6 * 5 * cc).fill(100),
      });
      out.push(pipe.apply(op, new Rng(seed)));
    }
    return out;
  }
  const spread = (xs: number[], lo: number, hi: number, edge: number) => {
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(lo);
    expect(Math.max(...xs)).toBeLessThanOrEqual(hi);
    expect(Math.min(...xs)).toBeLessThan(lo + edge);
    expect(Math.max(...xs)).toBeGreaterThan(hi - edge);
  };

  it('gamma: one γ per channel in [0.5, 2]; the table is 255·(v/255)^γ rounded', () => {
    const gs = draws('gamma').flatMap((d) => d.gamma as number[]);
    expect(gs).toHaveLength(1200);
    spread(gs, 0.5, 2, 0.05);
    const ramp = new Uint8ClampedArray(256).map((_, i) => i);
    const pipe = new AugmentPipeline({ width: 16, height: 16, cc: 1, data: ramp });
    const [g] = pipe.apply('gamma', new Rng(3)).gamma as number[];
    pipe.flush();
    for (let v = 0; v < 256; v++) expect(pipe.buf.data[v]).toBe(Math.round(255 * (v / 255) ** g));
  });

  it('brightness: ×[0.8, 1.2] and ±30; on gray v ↦ clamp(round(v·mul + add))', () => {
    const d = draws('brightness');
    spread(
      d.map((x) => x.mul as number),
      0.8,
      1.2,
      0.02,
    );
    spread(
      d.map((x) => x.add as number),
      -30,
      30,
      2,
    );
    const ramp = new Uint8ClampedArray(256).map((_, i) => i);
    const pipe = new AugmentPipeline({ width: 16, height: 16, cc: 1, data: ramp });
    const { mul, add } = pipe.apply('brightness', new Rng(8)) as { mul: number; add: number };
    pipe.flush();
    for (let v = 0; v < 256; v++)
      expect(pipe.buf.data[v]).toBe(Math.min(255, Math.max(0, Math.round(v * mul + add))));
  });

  it('hue/saturation: integer shifts in [−50, 50] each, reaching both ends', () => {
    const d = draws('hue_saturation');
    for (const key of ['hue', 'saturation']) {
      const xs = d.map((x) => x[key] as number);
      expect(xs.every(Number.isInteger)).toBe(true);
      spread(xs, -50, 50, 5);
    }
  });

  it('rotate: angle in [−45°, 45°]; a bright dot moves to R(angle)·(p − c) + c', () => {
    spread(
      draws('rotate').map((x) => x.angle as number),
      -45,
      45,
      2,
    );
    const W = 41;
    const data = new Uint8ClampedArray(W * W);
    const [px, py] = [30, 20]; // 10 px right of the centre (20, 20)
    data[py * W + px] = 255;
    const pipe = new AugmentPipeline({ width: W, height: W, cc: 1, data });
    const angle = pipe.apply('rotate', new Rng(11)).angle as number;
    // Intensity centroid of the bilinearly rotated dot.
    let sx = 0;
    let sy = 0;
    let sw = 0;
    pipe.buf.data.forEach((v, i) => {
      sx += v * (i % W);
      sy += v * Math.floor(i / W);
      sw += v;
    });
    // rotateBilinear reads the source at (c + cos·dx + sin·dy, c − sin·dx + cos·dy), so a source point moves by
    // the inverse: out = c + (cos·sx − sin·sy, sin·sx + cos·sy) relative to the centre.
    const a = (angle * Math.PI) / 180;
    const ex = 20 + Math.cos(a) * 10;
    const ey = 20 + Math.sin(a) * 10;
    expect(Math.hypot(sx / sw - ex, sy / sw - ey)).toBeLessThan(0.6);
  });
});

describe('random walk: momentum, softness, spots', () => {
  const flat = createRaster(400, 400, 1, 128);

  it('higher momentum → straighter walk (end-to-end span / length, measured on the mask)', () => {
    const straightness = (m: number) =>
      mean(
        Array.from({ length: 10 }, (_, seed) => {
          const r = randomWalkDefect(
            flat,
            {
              kind: 'fiber',
              length: 150,
              width: 1.5,
              momentum: m,
              softness: 0,
              intensity: 100,
              contrast: 'bright',
            },
            seed,
          );
          expect((r.params.strokes as { momentum: number }[])[0].momentum).toBe(m);
          return span(r.mask) / 150;
        }),
      );
    const low = straightness(0.2);
    const mid = straightness(0.8);
    const high = straightness(0.995);
    expect(low).toBeLessThan(mid);
    expect(mid).toBeLessThan(high);
    // A persistent random walk of 150 unit steps spans ≈ √(150·ℓ) with ℓ a few steps; a straight one ≈ 150.
    expect(low).toBeLessThan(0.35);
    expect(high).toBeGreaterThan(0.85);
  });

  it('softness 0 paints the full intensity everywhere in the mask; softness 1 fades towards the edge', () => {
    const opts = { kind: 'spot' as const, length: 1, width: 16, intensity: 60, contrast: 'bright' as const };
    for (let seed = 0; seed < 4; seed++) {
      const hard = randomWalkDefect(flat, { ...opts, softness: 0 }, seed);
      const soft = randomWalkDefect(flat, { ...opts, softness: 1 }, seed);
      expect((hard.params.strokes as { softness: number }[])[0].softness).toBe(0);
      expect((soft.params.strokes as { softness: number }[])[0].softness).toBe(1);
      const changes = (r: DefectResult) =>
        maskPoints(r.mask).map(([x, y]) => r.image.data[y * 400 + x] - 128);
      const h = changes(hard);
      expect(h.length).toBeGreaterThan(150); // a disc of radius 8
      expect(new Set(h)).toEqual(new Set([60]));
      const sv = changes(soft);
      expect(new Set(sv).size).toBeGreaterThan(20);
      expect(sv.filter((v) => v === 60).length).toBeLessThan(0.05 * sv.length);
      expect(Math.max(...sv)).toBeGreaterThanOrEqual(55); // the centre is still (nearly) full strength
      expect(Math.min(...sv)).toBeLessThanOrEqual(5); // the rim fades out
    }
  });

  it('spot: a short walk of a wide soft brush — compact, per-kind widths, lengths and softness', () => {
    for (let seed = 0; seed < 20; seed++) {
      const r = randomWalkDefect(flat, { kind: 'spot', contrast: 'dark' }, seed);
      const st = (r.params.strokes as { kind: string; width: number; length: number; softness: number }[])[0];
      expect(st.kind).toBe('spot');
      expect(st.width).toBeGreaterThanOrEqual(5);
      expect(st.width).toBeLessThanOrEqual(14);
      expect(st.length).toBeGreaterThanOrEqual(2);
      expect(st.length).toBeLessThanOrEqual(8);
      expect(st.softness).toBeGreaterThanOrEqual(0.5);
      expect(st.softness).toBeLessThanOrEqual(1);
      const pts = maskPoints(r.mask);
      const xs = pts.map((p) => p[0]);
      const ys = pts.map((p) => p[1]);
      // Punctual: the mask fits in (length + width) per axis.
      expect(Math.max(...xs) - Math.min(...xs)).toBeLessThanOrEqual(st.length + st.width + 1);
      expect(Math.max(...ys) - Math.min(...ys)).toBeLessThanOrEqual(st.length + st.width + 1);
      expect(pts.length).toBeGreaterThan(5);
      // Soft: the darkening varies inside the spot.
      expect(new Set(pts.map(([x, y]) => r.image.data[y * 400 + x])).size).toBeGreaterThan(3);
    }
  });
});

describe('cutPaste scar rotation', () => {
  /** Orientation (degrees, mod 180) of a mask's long axis from its second moments. */
  function axisAngle(m: RasterImage): number {
    const pts = maskPoints(m);
    const mx = mean(pts.map((p) => p[0]));
    const my = mean(pts.map((p) => p[1]));
    let sxx = 0;
    let syy = 0;
    let sxy = 0;
    for (const [x, y] of pts) {
      sxx += (x - mx) ** 2;
      syy += (y - my) ** 2;
      sxy += (x - mx) * (y - my);
    }
    return ((((0.5 * Math.atan2(2 * sxy, sxx - syy) * 180) / Math.PI) % 180) + 180) % 180;
  }
  const angleDiff = (a: number, b: number) => {
    const d = Math.abs((((a - b) % 180) + 180) % 180);
    return Math.min(d, 180 - d);
  };

  it('a scar is a thin strip whose long axis turns with the drawn angle', () => {
    const img = surface(240, 240, 3);
    for (const a of [-60, -20, 0, 35, 80]) {
      for (let seed = 0; seed < 3; seed++) {
        const r = cutPasteDefect(
          img,
          { variant: 'scar', scar_width: 3, scar_height: 60, rotation_range: [a, a], jitter: 0 },
          seed,
        );
        expect(r.params.angle).toBe(a);
        // The strip's length runs along the patch's y axis: (−sin a, cos a) in the image, i.e. 90° + a.
        expect(angleDiff(axisAngle(r.mask), 90 + a)).toBeLessThan(4);
      }
    }
  });

  it('default scar angles are drawn from [−45°, 45°] and reach both ends', () => {
    const img = inputs[1][1];
    const angles = Array.from(
      { length: 150 },
      (_, seed) => cutPasteDefect(img, { variant: 'scar' }, seed).params.angle as number,
    );
    expect(Math.min(...angles)).toBeGreaterThanOrEqual(-45);
    expect(Math.max(...angles)).toBeLessThanOrEqual(45);
    expect(Math.min(...angles)).toBeLessThan(-40);
    expect(Math.max(...angles)).toBeGreaterThan(40);
  });
});

describe('featherDefect: the painter’s feather as a soft blend edge inside the region', () => {
  const img = tiles[0];
  const W = img.width;
  const H = img.height;
  // A rectangle region in the middle of the tile.
  const region = createRaster(W, H, 1);
  for (let y = 60; y < 200; y++) for (let x = 30; x < 150; x++) region.data[y * W + x] = 255;
  const sigma = 6;
  const soft = blurMask(region, sigma);

  it.each(generators)(
    '%s: mask unchanged and binary, outside untouched, edge scaled by the soft weight',
    (_, fn) => {
      let scaled = 0;
      for (let seed = 0; seed < 4; seed++) {
        const raw = fn(img, { region_mask: region }, seed);
        const f = featherDefect(img, raw, region, sigma);
        checkInvariants(img, f);
        // Byte comparisons (deep equality of 45k-element arrays is slow in vitest).
        const same = (a: Uint8ClampedArray, b: Uint8ClampedArray) => Buffer.from(a).equals(Buffer.from(b));
        expect(same(f.mask.data, raw.mask.data)).toBe(true);
        expect(f.params.feather_sigma).toBe(sigma);
        expect(same(featherDefect(img, raw, region, sigma, soft).image.data, f.image.data)).toBe(true);
        let off = 0;
        for (let p = 0; p < W * H; p++) {
          const w = region.data[p] ? soft.data[p] / 255 : 0;
          for (let c = 0; c < img.channels; c++) {
            const i = p * img.channels + c;
            const expected = img.data[i] + w * (raw.image.data[i] - img.data[i]);
            // Uint8ClampedArray rounds half to even: within 0.5 of the exact blend.
            if (Math.abs(f.image.data[i] - expected) > 0.5) off++;
            if (w > 0 && w < 0.9 && Math.abs(raw.image.data[i] - img.data[i]) > 10) scaled++;
          }
        }
        expect(off).toBe(0);
      }
      // Unless a generator never reaches the region's edge, some edge pixels were actually softened.
      if (fn !== randomWalkDefect) expect(scaled).toBeGreaterThan(0);
    },
  );

  it('σ 0 returns the sample as it is; bad σ and sizes are named', () => {
    const raw = memsegDefect(img, { region_mask: region }, 1);
    expect(featherDefect(img, raw, region, 0)).toBe(raw);
    expect(() => featherDefect(img, raw, region, -1)).toThrow(/feather sigma must be/);
    expect(() => featherDefect(img, raw, createRaster(4, 4, 1), 2)).toThrow(/region size must be/);
    expect(() => featherDefect(inputs[0][1], raw, region, 2)).toThrow(/result.image must be/);
  });
});
