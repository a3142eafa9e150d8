import { describe, expect, it } from 'vitest';
import { buildServer } from '../../server/app.ts';
import { main } from '../../server/cli.ts';
import { createRaster } from '../../src/core/image.ts';
import { TEST_TUNED_WARNING } from '../../src/core/experiments/threshold.ts';
import { decodeImage, encodePng } from '../../src/runtime/decode.ts';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

describe('HTTP API (fastify.inject)', () => {
  it('health', async () => {
    const app = buildServer();
    const r = await app.inject({ method: 'GET', url: '/api/health' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ ok: true });
  });

  it('capabilities report ORT providers and why CUDA fell back to CPU', async () => {
    const app = buildServer();
    const r = await app.inject({ method: 'GET', url: '/api/capabilities' });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.ort.flavour).toBe('node');
    expect(body.ort.cpuWorks).toBe(true);
    expect(body.ort.providers).toContain('cpu');
    // This machine has no CUDA: the session falls back to CPU and says why. Where CUDA exists, it is listed.
    if (!body.ort.providers.includes('cuda')) expect(body.ort.cudaFallbackReason).toMatch(/CUDA|cuda/);
    expect(body.generators).toContain('memseg');
  });

  it('POST /api/metrics computes the scikit-learn numbers and labels the threshold', async () => {
    const app = buildServer();
    const r = await app.inject({
      method: 'POST',
      url: '/api/metrics',
      payload: { scores: [0.1, 0.4, 0.35, 0.8], labels: [0, 0, 1, 1], curves: true },
    });
    expect(r.statusCode).toBe(200);
    const b = r.json();
    expect(b.ap).toBeCloseTo(0.8333333333333333, 12);
    expect(b.auroc).toBeCloseTo(0.75, 12);
    // The one threshold chooser: best F1 on the scored set itself is labelled (and warned) as tuned on test.
    expect(b.thresholdSource).toBe('test (tuned on test)');
    expect(b.warnings).toEqual([TEST_TUNED_WARNING]);
    expect(b.pr.precision.length).toBe(5);
    const given = await app.inject({
      method: 'POST',
      url: '/api/metrics',
      payload: { scores: [0.1, 0.4, 0.35, 0.8], labels: [0, 0, 1, 1], threshold: 0.35 },
    });
    expect(given.json()).toMatchObject({ tp: 2, fp: 1, tn: 1, fn: 0, thresholdSource: 'given' });
  });

  it('rejects a body that breaks the schema with 400 and a fix; single class gives nulls, not errors', async () => {
    const app = buildServer();
    const bad = await app.inject({
      method: 'POST',
      url: '/api/metrics',
      payload: { scores: [1], labels: [2] },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().fix).toMatch(/schema/);
    const mismatch = await app.inject({
      method: 'POST',
      url: '/api/metrics',
      payload: { scores: [1, 2], labels: [1] },
    });
    expect(mismatch.statusCode).toBe(422);
    expect(mismatch.json().message).toMatch(/labels.length.*fix/);
    const single = await app.inject({
      method: 'POST',
      url: '/api/metrics',
      payload: { scores: [1, 2], labels: [0, 0] },
    });
    expect(single.statusCode).toBe(200);
    expect(single.json().auroc).toBeNull();
  });

  it('POST /api/synth/generate returns a defect image and a binary mask', async () => {
    const img = createRaster(64, 64, 1, 128);
    for (let i = 0; i < img.data.length; i++) img.data[i] = 100 + ((i * 7) % 50);
    const app = buildServer();
    const r = await app.inject({
      method: 'POST',
      url: '/api/synth/generate',
      payload: { image: Buffer.from(encodePng(img)).toString('base64'), generator: 'memseg', seed: 3 },
    });
    expect(r.statusCode).toBe(200);
    const b = r.json();
    const mask = (await decodeImage(new Uint8Array(Buffer.from(b.mask, 'base64')), 'mask')).raster;
    expect(mask.width).toBe(64);
    expect([...new Set(mask.data)].every((v) => v === 0 || v === 255)).toBe(true);
    expect(mask.data.some((v) => v === 255)).toBe(true);
    const unknown = await app.inject({
      method: 'POST',
      url: '/api/synth/generate',
      payload: { image: 'AAAA', generator: 'gan' },
    });
    expect(unknown.statusCode).toBe(400);
  });

  it('POST /api/experiments/run runs through the injected runner; diffusion says 503 with a fix', async () => {
    const seen: unknown[] = [];
    const app = buildServer({
      runExperiment: async (b) => {
        seen.push(b);
        return { markdown: '| table |', ap: NaN };
      },
    });
    const r = await app.inject({
      method: 'POST',
      url: '/api/experiments/run',
      payload: { seeds: [0, 1], epochs: 2 },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ markdown: '| table |', ap: null });
    expect(seen).toEqual([{ seeds: [0, 1], epochs: 2 }]);
    const d = await app.inject({
      method: 'POST',
      url: '/api/diffusion/generate',
      payload: { image: 'AAAA', mask: 'AAAA', prompt: 'a crack' },
    });
    expect(d.statusCode).toBe(503);
    expect(d.json().fix).toBeTruthy();
  });
});

describe('CLI', () => {
  it('metrics reads a CSV and prints the metric row', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dl-cli-'));
    const csv = join(dir, 's.csv');
    writeFileSync(csv, 'score,label\n0.1,0\n0.4,0\n0.35,1\n0.8,1\n');
    const lines: string[] = [];
    const log = console.log;
    console.log = (s: string) => lines.push(s);
    try {
      expect(await main(['metrics', '--input', csv, '--threshold', '0.35'])).toBe(0);
    } finally {
      console.log = log;
    }
    const out = JSON.parse(lines.join('\n'));
    expect(out).toMatchObject({ tp: 2, fp: 1, tn: 1, fn: 0, thresholdSource: 'given' });
    expect(out.ap).toBeCloseTo(0.8333333333333333, 12);
  });

  it('generate writes an image and its mask; unknown commands exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dl-cli-'));
    const img = createRaster(48, 48, 3, 90);
    for (let i = 0; i < img.data.length; i++) img.data[i] = 60 + ((i * 13) % 90);
    writeFileSync(join(dir, 'in.png'), encodePng(img));
    const log = console.log;
    console.log = () => {};
    try {
      expect(
        await main([
          'generate',
          '--generator',
          'random-walk',
          '--input',
          join(dir, 'in.png'),
          '--seed',
          '5',
          '--out',
          join(dir, 'out.png'),
        ]),
      ).toBe(0);
    } finally {
      console.log = log;
    }
    const mask = (await decodeImage(new Uint8Array(readFileSync(join(dir, 'out.mask.png'))), 'mask')).raster;
    expect(mask.data.some((v) => v === 255)).toBe(true);
    const err = console.error;
    console.error = () => {};
    try {
      expect(await main(['nope'])).toBe(2);
    } finally {
      console.error = err;
    }
  });
});

/** Runs the CLI, capturing stdout and stderr lines. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (s: string) => out.push(String(s));
  console.error = (s: string) => err.push(String(s));
  try {
    return { code: await main(args), out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** A dataset in the MVTec layout: train/good, test/good, test/scratch, ground_truth/scratch/<stem>_mask.png. */
function mvtecFolder(): string {
  const root = mkdtempSync(join(tmpdir(), 'dl-cli-mvtec-'));
  for (const d of ['train/good', 'test/good', 'test/scratch', 'ground_truth/scratch'])
    mkdirSync(join(root, d), { recursive: true });
  const tile = (seed: number, scratch: boolean) => {
    const img = createRaster(40, 40, 1);
    const mask = createRaster(40, 40, 1);
    for (let i = 0; i < img.data.length; i++) img.data[i] = 110 + ((i * 7919 + seed * 104729) % 23);
    if (scratch)
      for (let y = 8; y < 32; y++)
        for (let x = 10 + (seed % 15); x < 13 + (seed % 15); x++) {
          img.data[y * 40 + x] = 20;
          mask.data[y * 40 + x] = 255;
        }
    return { img, mask };
  };
  for (let i = 0; i < 8; i++) writeFileSync(join(root, `train/good/${i}.png`), encodePng(tile(i, false).img));
  for (let i = 0; i < 4; i++) {
    writeFileSync(join(root, `test/good/${i}.png`), encodePng(tile(50 + i, false).img));
    const t = tile(80 + i, true);
    writeFileSync(join(root, `test/scratch/${i}.png`), encodePng(t.img));
    writeFileSync(join(root, `ground_truth/scratch/${i}_mask.png`), encodePng(t.mask));
  }
  return root;
}

describe('CLI experiment --config', () => {
  it('refuses a config that breaks the schema, naming the file, the field and the fix', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dl-cli-grid-'));
    const file = join(dir, 'grid.json');
    writeFileSync(file, JSON.stringify({ generators: ['memseg'], nAug: ['20'], seeds: [0], heads: ['bce'] }));
    const bad = await cli(['experiment', '--config', file]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/GridConfigError: .*grid\.json: \/nAug\/0 must be integer — fix: edit the file/);
    writeFileSync(file, JSON.stringify({ generators: ['gan'], seeds: [0], heads: ['bce'], epoch: 3 }));
    const two = await cli(['experiment', '--config', file]);
    expect(two.err).toMatch(/grid\.json: \/ has an unknown key "epoch"/);
    expect(two.err).toMatch(/\/generators\/0 must be one of none \| memseg .* \(got "gan"\)/);
    writeFileSync(file, '{ "generators": ["memseg"], ');
    expect((await cli(['experiment', '--config', file])).err).toMatch(/grid\.json: is not valid JSON/);
    const missing = await cli(['experiment', '--config', join(dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/nope\.json: no such file — fix: pass --config/);
    // Semantics beyond the schema come from the core's validateGrid, with the file named too.
    writeFileSync(
      file,
      JSON.stringify({ generators: ['diffusion'], seeds: [0], heads: ['bce'], diffusion: { prompts: [] } }),
    );
    expect((await cli(['experiment', '--config', file])).err).toMatch(
      /grid\.json: \/diffusion\/prompts must NOT have fewer than 1 items/,
    );
  });

  it(
    'runs a grid over an MVTec-layout folder and writes the table with per-class columns',
    { timeout: 300_000 },
    async () => {
      const data = mvtecFolder();
      const dir = mkdtempSync(join(tmpdir(), 'dl-cli-grid-'));
      const file = join(dir, 'grid.json');
      writeFileSync(
        file,
        JSON.stringify({
          data,
          backbone: join(import.meta.dirname, '../../models/tiny/tiny-resnet/model.onnx'),
          generators: ['memseg', 'random-walk'],
          nAug: [6],
          seeds: [0, 1],
          heads: ['bce'],
          epochs: 3,
        }),
      );
      const out = join(dir, 'out');
      const r = await cli(['experiment', '--config', file, '--out', out, '--store', join(dir, 'cells.json')]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/\| memseg ×6 · bce \| 2 \|/);
      expect(r.out).toMatch(/\| random-walk ×6 · bce \| 2 \|/);
      expect(r.out).toMatch(/\| baseline: k-NN cosine distance \| 2 \|/);
      expect(r.out).toMatch(/\| setting \| scratch \(n = 4\) \|/);
      for (const f of ['table.md', 'table.csv', 'cells.csv', 'result.json'])
        expect(existsSync(join(out, f))).toBe(true);
      expect(readFileSync(join(out, 'table.csv'), 'utf8').split('\n')[0]).toContain('class:scratch:ap_mean');
      // The cell store makes a second run resume every cell.
      const again = await cli(['experiment', '--config', file, '--store', join(dir, 'cells.json')]);
      expect(again.out).toMatch(/8 cells \(8 resumed\)/);
    },
  );
});

describe('CLI --device', () => {
  it(
    'refuses an unknown device; cuda falls back to CPU with the reason where CUDA is missing',
    { timeout: 300_000 },
    async () => {
      const bad = await cli(['experiment', '--device', 'gpu', '--config', 'x.json']);
      expect(bad.code).toBe(2);
      expect(bad.err).toMatch(/--device gpu: unknown device — fix: pass --device cuda/);

      const dir = mkdtempSync(join(tmpdir(), 'dl-cli-dev-'));
      const file = join(dir, 'grid.json');
      writeFileSync(
        file,
        JSON.stringify({
          data: mvtecFolder(),
          backbone: join(import.meta.dirname, '../../models/tiny/tiny-resnet/model.onnx'),
          generators: ['memseg'],
          nAug: [4],
          seeds: [0],
          heads: ['bce'],
          epochs: 2,
        }),
      );
      const r = await cli(['experiment', '--config', file, '--device', 'cuda']);
      expect(r.code, r.err).toBe(0);
      // This machine has no CUDA: the run says so and names where it ran. Where CUDA exists it runs there.
      if (/on cpu;/.test(r.out))
        expect(r.err).toMatch(/backbone: CUDA execution provider unavailable .*running on CPU/);
      else expect(r.out).toMatch(/on cuda;/);
    },
  );
});

describe('POST /api/experiments/grid', () => {
  it(
    'refuses a misspelt field with the field named (no silent drop) and runs a real grid',
    { timeout: 300_000 },
    async () => {
      const data = mvtecFolder();
      // The server reads only under its --datasets and --models roots; the request names paths relative to them.
      const app = buildServer({
        options: { datasets: dirname(data), models: join(import.meta.dirname, '../../models/tiny') },
      });
      const bad = await app.inject({
        method: 'POST',
        url: '/api/experiments/grid',
        payload: { generators: ['memseg'], nAug: [4], seeds: [0], heads: ['bce'], epoch: 3 },
      });
      expect(bad.statusCode).toBe(422);
      expect(bad.json()).toMatchObject({ code: 'GridConfigError' });
      expect(bad.json().message).toMatch(/the request body: \/ has an unknown key "epoch"/);
      expect(bad.json().fix).toMatch(/grid config schema/);

      const noData = await app.inject({
        method: 'POST',
        url: '/api/experiments/grid',
        payload: { generators: ['memseg'], nAug: [4], seeds: [0], heads: ['bce'] },
      });
      expect(noData.statusCode).toBe(422);
      expect(noData.json().message).toMatch(/names no dataset/);

      const r = await app.inject({
        method: 'POST',
        url: '/api/experiments/grid',
        payload: {
          data: basename(data),
          backbone: 'tiny-resnet/model.onnx',
          generators: ['memseg'],
          nAug: [6],
          seeds: [0, 1],
          heads: ['bce'],
          epochs: 3,
        },
      });
      expect(r.statusCode, r.body).toBe(200);
      const b = r.json();
      expect(b.markdown).toMatch(/\| memseg ×6 · bce \| 2 \|/);
      expect(b.markdown).toMatch(/\| baseline: k-NN cosine distance \| 2 \|/);
      expect(b.cells.length).toBeGreaterThanOrEqual(2);
      expect(b.cells[0].scores).toBeUndefined();
      const row = b.table.find((t: { label: string }) => t.label === 'memseg ×6 · bce');
      expect(row.seeds).toEqual([0, 1]);
      expect(row.stats.ap.mean).toBeGreaterThanOrEqual(0);
    },
  );
});

describe('spatial/CSE adapter helpers', () => {
  it('map heads bring grid maps onto image pixels with the preprocessing geometry: constants and corners', async () => {
    // The runner's heads use the viewer's own mapping (heatmap.ts); under stretch it is plain bilinear.
    const { heatmapToImage } = await import('../../src/runtime/heads/heatmap.ts');
    const pre = { width: 2, height: 2, resize: 'stretch' as const };
    const upsampleMap = (m: Float32Array, h: number, w: number, H: number, W: number) =>
      heatmapToImage(m, h, w, pre, W, H);
    expect(Array.from(upsampleMap(Float32Array.from([2, 2, 2, 2]), 2, 2, 4, 4))).toEqual(
      new Array(16).fill(2),
    );
    const u = upsampleMap(Float32Array.from([0, 1, 2, 3]), 2, 2, 4, 4);
    expect(u[0]).toBe(0);
    expect(u[15]).toBe(3);
  });
});

describe('diffusion route', () => {
  it(
    'inpaints with the tiny SD-inpaint through the engine; pixels outside the mask are kept',
    { timeout: 120_000 },
    async () => {
      const { tinyDiffusionModels } = await import('../../models/builders/diffusion.ts');
      const { diffusionHandler, nodeDiffusionEngine } = await import('../../server/diffusion.ts');
      const built = (await tinyDiffusionModels()).find((b) => b.manifest.id === 'tiny-sd-inpaint');
      expect(built).toBeDefined();
      const files = new Map(
        [...(built?.files ?? [])].map(([k, v]) => [k, new Blob([v as Uint8Array<ArrayBuffer>])]),
      );
      const app = buildServer({
        diffusion: diffusionHandler(nodeDiffusionEngine(), async () => ({
          manifest: built!.manifest,
          source: { kind: 'files', files },
          backend: 'cpu',
        })),
      });
      const image = createRaster(64, 48, 3);
      for (let i = 0; i < image.data.length; i++) image.data[i] = (i * 37) % 256;
      const mask = createRaster(64, 48, 1);
      for (let y = 8; y < 32; y++) for (let x = 16; x < 40; x++) mask.data[y * 64 + x] = 255;
      const b64 = (r: typeof image) => Buffer.from(encodePng(r)).toString('base64');
      const r = await app.inject({
        method: 'POST',
        url: '/api/diffusion/generate',
        payload: { image: b64(image), mask: b64(mask), prompt: 'a crack', steps: 3, seed: 1 },
      });
      expect(r.statusCode).toBe(200);
      const out = (await decodeImage(new Uint8Array(Buffer.from(r.json().image, 'base64')), 'out')).raster;
      expect([out.width, out.height]).toEqual([64, 48]);
      expect(out.data[0]).toBe(image.data[0]); // far outside the mask: the source's pixel
      const bad = await app.inject({
        method: 'POST',
        url: '/api/diffusion/generate',
        payload: { prompt: 'x' },
      });
      expect(bad.statusCode).toBe(400);
    },
  );
});
