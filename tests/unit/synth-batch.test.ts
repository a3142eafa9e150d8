/**
 * generateBatch and the synth engine: determinism, regenerating one sample from its recorded seed, per-sample
 * failures, progress, cancel, and the engine across a real comlink message channel (structured clone +
 * transferred result buffers + proxied progress callback).
 */
import * as Comlink from 'comlink';
import { describe, expect, it, vi } from 'vitest';
import { CancelledError, InvalidArgumentError } from '../../src/core/errors.ts';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import type { Progress } from '../../src/core/progress.ts';
import {
  type BatchSample,
  cutPasteDefect,
  generateBatch,
  memsegDefect,
  randomWalkDefect,
  sampleSeed,
} from '../../src/core/synth/index.ts';
import { featherDefect } from '../../src/core/synth/feather.ts';
import { createSynthEngine, type SynthEngineApi } from '../../workers/synth.engine.ts';

function noisy(width: number, height: number, channels: 1 | 3, seed: number): RasterImage {
  const img = createRaster(width, height, channels);
  let s = seed;
  for (let i = 0; i < img.data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    img.data[i] = 60 + (s >>> 25);
  }
  return img;
}

const images = [noisy(64, 48, 3, 1), noisy(40, 40, 1, 2)];

describe('generateBatch', () => {
  it('a resumed batch (skip = the indices already made) makes exactly the rest, identical to the full run', async () => {
    const full = await generateBatch(images, null, 'memseg', { p_texture: 0.5 }, 7, 'resume-1');
    const done = [0, 1, 2, 4];
    const rest = await generateBatch(images, null, 'memseg', { p_texture: 0.5 }, 7, 'resume-1', {
      skip: done,
    });
    expect(rest.samples.map((s) => s.index)).toEqual([3, 5, 6]);
    for (const s of rest.samples) {
      const f = full.samples[s.index];
      expect([s.seed, s.sourceIndex]).toEqual([f.seed, f.sourceIndex]);
      expect(Buffer.from(s.image.data).equals(Buffer.from(f.image.data))).toBe(true);
      expect(Buffer.from(s.mask.data).equals(Buffer.from(f.mask.data))).toBe(true);
    }
  });

  it('is deterministic, uses images round-robin and each sample regenerates from its recorded seed', async () => {
    const a = await generateBatch(images, null, 'memseg', { p_texture: 0.5 }, 5, 'exp-1');
    const b = await generateBatch(images, null, 'memseg', { p_texture: 0.5 }, 5, 'exp-1');
    expect(a.samples.map((s) => s.sourceIndex)).toEqual([0, 1, 0, 1, 0]);
    expect(a.failures).toEqual([]);
    for (let i = 0; i < 5; i++) {
      expect(b.samples[i].image.data).toEqual(a.samples[i].image.data);
      expect(a.samples[i].seed).toBe(sampleSeed('exp-1', i));
      const again = memsegDefect(images[a.samples[i].sourceIndex], { p_texture: 0.5 }, a.samples[i].seed);
      expect(again.image.data).toEqual(a.samples[i].image.data);
      expect(again.mask.data).toEqual(a.samples[i].mask.data);
    }
    const c = await generateBatch(images, null, 'memseg', { p_texture: 0.5 }, 5, 'exp-2');
    expect(c.samples[0].image.data).not.toEqual(a.samples[0].image.data);
  });

  it('applies region masks per image and reports impossible ones per sample without stopping', async () => {
    const region = createRaster(64, 48, 1);
    for (let y = 10; y < 30; y++) for (let x = 20; x < 50; x++) region.data[y * 64 + x] = 255;
    const empty = createRaster(40, 40, 1);
    const r = await generateBatch(images, [region, empty], 'random_walk', {}, 4, 3);
    expect(r.samples.map((s) => s.index)).toEqual([0, 2]);
    expect(r.failures.map((f) => [f.index, f.sourceIndex, f.reason])).toEqual([
      [1, 1, 'MaskUnsatisfiableError'],
      [3, 1, 'MaskUnsatisfiableError'],
    ]);
    for (const s of r.samples)
      for (let p = 0; p < region.data.length; p++) if (s.mask.data[p]) expect(region.data[p]).toBe(255);
    // The recorded seed plus the region reproduce the sample.
    const s0 = r.samples[0];
    expect(randomWalkDefect(images[0], { region_mask: region }, s0.seed).image.data).toEqual(s0.image.data);
  });

  it('reports progress for every sample and stops on cancel between samples', async () => {
    const seen: Progress[] = [];
    await generateBatch(images, null, 'cutpaste', {}, 6, 1, { onProgress: (p) => seen.push(p) });
    expect(seen.map((p) => p.done)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seen.every((p) => p.total === 6 && p.unit === 'items')).toBe(true);

    const ctl = new AbortController();
    const made: number[] = [];
    const run = generateBatch(images, null, 'blur', {}, 50, 1, {
      signal: ctl.signal,
      onSample: (s) => {
        made.push(s.index);
        if (s.index === 2) ctl.abort();
      },
    });
    await expect(run).rejects.toThrow(CancelledError);
    await expect(run).rejects.toThrow(/3 of 50 samples were finished/);
    expect(made).toEqual([0, 1, 2]);
  });

  it('feathers samples inside their region in the batch itself: same labels, σ recorded, outside untouched', async () => {
    const region = createRaster(64, 48, 1);
    for (let y = 8; y < 40; y++) for (let x = 10; x < 54; x++) region.data[y * 64 + x] = 255;
    const plain = await generateBatch([images[0]], [region], 'memseg', {}, 3, 'f');
    const soft = await generateBatch([images[0]], [region], 'memseg', {}, 3, 'f', { feathers: [4] });
    const none = await generateBatch([images[0]], [region], 'memseg', {}, 3, 'f', { feathers: [0] });
    for (let i = 0; i < 3; i++) {
      const want = featherDefect(images[0], plain.samples[i], region, 4);
      expect(soft.samples[i].image.data).toEqual(want.image.data);
      expect(soft.samples[i].mask.data).toEqual(plain.samples[i].mask.data);
      expect(soft.samples[i].params.feather_sigma).toBe(4);
      expect(none.samples[i].image.data).toEqual(plain.samples[i].image.data);
      for (let p = 0; p < 64 * 48; p++)
        if (!region.data[p])
          for (let c = 0; c < 3; c++)
            expect(soft.samples[i].image.data[p * 3 + c]).toBe(images[0].data[p * 3 + c]);
    }
    await expect(generateBatch(images, null, 'memseg', {}, 2, 1, { feathers: [1, 2, 3] })).rejects.toThrow(
      /feathers\.length must be 1 or 2/,
    );
  });

  it('validates its arguments', async () => {
    await expect(generateBatch([], null, 'memseg', {}, 1, 1)).rejects.toThrow(
      /images must be a non-empty list/,
    );
    await expect(generateBatch(images, null, 'memseg', {}, 0, 1)).rejects.toThrow(/n must be an integer/);
    await expect(generateBatch(images, [null, null, null], 'memseg', {}, 1, 1)).rejects.toThrow(
      /masks.length/,
    );
    await expect(generateBatch(images, null, 'nope', {}, 1, 1)).rejects.toThrow(InvalidArgumentError);
    // Bad options are an error for the whole batch, not a per-sample failure.
    await expect(generateBatch(images, null, 'memseg', { blend_factor: 2 }, 2, 1)).rejects.toThrow(
      /blend_factor must be in \[0, 1\], got 2/,
    );
  });
});

describe('synth engine', () => {
  it('lists generators and generates in-thread', async () => {
    const engine = createSynthEngine();
    const names = (await engine.listGenerators()).map((g) => g.name);
    expect(names).toEqual(['memseg', 'random_walk', 'cutpaste', 'blur', 'transplant']);
    const r = await engine.generate({ generator: 'cutpaste', image: images[0], seed: 9 });
    expect(r.image.data).toEqual(cutPasteBytes(9));
  });

  it('works across a comlink message channel: results arrive, progress is proxied, cancel stops a job', async () => {
    const { port1, port2 } = new MessageChannel();
    Comlink.expose(createSynthEngine(), port1 as unknown as Comlink.Endpoint);
    const remote = Comlink.wrap<SynthEngineApi>(port2 as unknown as Comlink.Endpoint);
    try {
      const progress: number[] = [];
      const res = await remote.generateBatch(
        { generator: 'memseg', images, n: 3, seed: 'w' },
        { jobId: 'j1' },
        Comlink.proxy((p: Progress) => progress.push(p.done)),
      );
      expect(res.samples.length).toBe(3);
      expect(res.samples[0].image.data).toBeInstanceOf(Uint8ClampedArray);
      expect(res.samples[0].image.data).toEqual(memsegDefect(images[0], {}, sampleSeed('w', 0)).image.data);
      // Progress travels on the callback's own channel, so it may land after the result: wait for it.
      await vi.waitFor(() => expect(progress).toEqual([1, 2, 3]));

      // Cancel from the progress callback: the engine stops the job between samples.
      const run = remote.generateBatch(
        { generator: 'memseg', images, n: 500, seed: 1 },
        { jobId: 'j2' },
        Comlink.proxy((p: Progress) => {
          if (p.done === 2) void remote.cancel('j2');
        }),
      );
      await expect(run).rejects.toThrow(/cancelled/);
    } finally {
      remote[Comlink.releaseProxy]();
      port1.close();
      port2.close();
    }
  });

  it('streams samples in order, in small groups, before the result; a cancelled batch has delivered what it made', async () => {
    const { port1, port2 } = new MessageChannel();
    Comlink.expose(createSynthEngine(), port1 as unknown as Comlink.Endpoint);
    const remote = Comlink.wrap<SynthEngineApi>(port2 as unknown as Comlink.Endpoint);
    try {
      const groups: BatchSample[][] = [];
      const res = await remote.generateBatch(
        { generator: 'memseg', images, n: 9, seed: 's' },
        { jobId: 'st1' },
        undefined,
        Comlink.proxy((g: BatchSample[]) => void groups.push(g)),
      );
      // Every sample crossed once, through the stream: none in the result, all delivered before it resolved.
      expect(res.samples).toEqual([]);
      const streamed = groups.flat();
      expect(streamed.map((s) => s.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
      expect(Math.max(...groups.map((g) => g.length))).toBeLessThanOrEqual(4);
      expect(groups.length).toBeGreaterThanOrEqual(3);
      for (const s of streamed)
        expect(s.image.data).toEqual(
          memsegDefect(images[s.sourceIndex], {}, sampleSeed('s', s.index)).image.data,
        );

      // Cancel after the 6th sample: the rejection arrives only after every made sample has been handed over.
      const got: number[] = [];
      let doneAtCancel = 0;
      const run = remote.generateBatch(
        { generator: 'memseg', images, n: 500, seed: 't' },
        { jobId: 'st2' },
        Comlink.proxy((p: Progress) => {
          if (p.done === 6 && !doneAtCancel) {
            doneAtCancel = p.done;
            void remote.cancel('st2');
          }
        }),
        Comlink.proxy((g: BatchSample[]) => void got.push(...g.map((s) => s.index))),
      );
      await expect(run).rejects.toThrow(/cancelled/);
      expect(got.length).toBeGreaterThanOrEqual(doneAtCancel);
      expect(got.length).toBeLessThan(500);
      expect(got).toEqual(got.map((_, i) => i));
    } finally {
      remote[Comlink.releaseProxy]();
      port1.close();
      port2.close();
    }
  });

  it('benchmark reports a positive MemSeg rate', async () => {
    const b = await createSynthEngine().benchmark(32, 32, 0.05);
    expect(b.defectsPerSecond).toBeGreaterThan(0);
    expect(b.samples).toBeGreaterThanOrEqual(20);
  });
});

function cutPasteBytes(seed: number): Uint8ClampedArray {
  return cutPasteDefect(images[0], {}, seed).image.data;
}
