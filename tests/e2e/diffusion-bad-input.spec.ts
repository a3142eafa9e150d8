/**
 * Bad input in the browser, and the browser stores themselves:
 * - a corrupted file (same size, one byte flipped) → `ChecksumError` naming the file, nothing of it cached;
 *   a truncated file → `DownloadError` saying it is shorter than the manifest; the dataset is untouched; once the
 *   server is healthy again the same button resumes and completes;
 * - Cache Storage and OPFS stores resume an interrupted download without refetching stored chunks, and hand back
 *   the exact bytes (sha256 = manifest).
 */
import { expect, test, type Page } from './fixtures.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ID = 'tiny-sd-inpaint';
const UNET = resolve(process.cwd(), 'models/tiny', ID, 'unet/model.onnx');

async function waitForApp(page: Page) {
  await expect(page.getByRole('heading', { name: 'DefectLab' })).toBeVisible();
  await expect(page.getByTestId('app-busy')).toHaveCount(0, { timeout: 120_000 });
}

async function imageCount(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('defectlab');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    return new Promise<number>((res, rej) => {
      const r = db.transaction('images').objectStore('images').count();
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
  });
}

test('corrupted and truncated files are named, not cached, the dataset is untouched, and Resume completes', async ({
  page,
}) => {
  const good = readFileSync(UNET);
  const corrupted = Buffer.from(good);
  corrupted[corrupted.length >> 1] ^= 0xff;
  let serve: Buffer = corrupted;
  await page.route(`**/models/tiny/${ID}/unet/model.onnx`, (route) =>
    route.fulfill({ status: 200, body: serve, contentType: 'application/octet-stream' }),
  );
  await page.goto('/');
  await waitForApp(page);
  const before = await imageCount(page);
  await page.locator('[data-tab="models"]').click();

  await page.getByTestId(`model-download-${ID}`).click();
  await expect(page.getByTestId('models-error')).toContainText(
    `ChecksumError: ${ID}/unet/model.onnx has sha256`,
    { timeout: 60_000 },
  );
  await expect(page.getByTestId('models-error')).toContainText('— fix:');
  await expect(page.getByTestId(`model-cached-${ID}`)).toContainText('partial');
  await expect(page.getByTestId(`model-load-${ID}`)).toBeDisabled();

  serve = good.subarray(0, good.length - 100);
  await page.getByTestId(`model-download-${ID}`).click();
  await expect(page.getByTestId('models-error')).toContainText(`DownloadError: ${ID}/unet/model.onnx`);
  await expect(page.getByTestId('models-error')).toContainText('shorter than the manifest says');
  expect(await imageCount(page)).toBe(before);

  serve = good;
  await expect(page.getByTestId(`model-download-${ID}`)).toHaveText('Resume');
  await page.getByTestId(`model-download-${ID}`).click();
  await expect(page.getByTestId('model-download-done')).toContainText('Downloaded 100%');
  await expect(page.getByTestId(`model-cached-${ID}`)).toContainText('✓');
  await expect(page.getByTestId('models-error')).toHaveCount(0);
  expect(await imageCount(page)).toBe(before);
});

for (const kind of ['CacheStorageFileStore', 'OpfsFileStore'] as const)
  test(`${kind}: an interrupted download resumes without refetching and reads back the exact bytes`, async ({
    page,
  }) => {
    await page.goto('/');
    await page.waitForFunction(() => '__defectlabModels' in globalThis);
    const r = await page.evaluate(
      async ({ kind, id }) => {
        type Store = object;
        type Manager = {
          download(m: unknown, base: string, o: unknown): Promise<void>;
          storedBytes(m: unknown): Promise<{ complete: boolean; bytes: number }>;
          open(m: unknown, s: unknown): { read(p: string): Promise<Uint8Array> };
          purge(id: string): Promise<void>;
        };
        const api = (
          globalThis as unknown as {
            __defectlabModels: {
              manifests: { id: string; files: { path: string; sha256: string }[] }[];
              classes: Record<string, new (...a: unknown[]) => unknown>;
              sha256(b: Uint8Array): string;
              serverBase(m: unknown, origin: string): string;
            };
          }
        ).__defectlabModels;
        const m = api.manifests.find((x) => x.id === id)!;
        const store = new api.classes[kind](`e2e-${kind}`) as Store;
        const ranges: string[] = [];
        const fetchFn = (url: string, init: RequestInit) => {
          ranges.push(`${url.split('/').slice(-2).join('/')} ${new Headers(init.headers).get('range')}`);
          return fetch(url, init);
        };
        const base = api.serverBase(m, location.origin);
        const ctl = new AbortController();
        let n = 0;
        const first = new api.classes.ModelManager(store, fetchFn) as Manager;
        const err = await first
          .download(m, base, {
            chunkBytes: 1000,
            signal: ctl.signal,
            onProgress: () => {
              if (++n === 6) ctl.abort();
            },
          })
          .then(
            () => 'finished',
            (e: Error) => e.name,
          );
        const partial = await first.storedBytes(m);
        const firstRanges = [...ranges];
        ranges.length = 0;
        // "Reload": a fresh manager over a fresh store object on the same storage.
        const second = new api.classes.ModelManager(new api.classes[kind](`e2e-${kind}`), fetchFn) as Manager;
        await second.download(m, base, { chunkBytes: 1000 });
        const done = await second.storedBytes(m);
        const files = second.open(m, { kind: 'cache' });
        const hashesOk: boolean[] = [];
        for (const f of m.files) hashesOk.push(api.sha256(await files.read(f.path)) === f.sha256);
        const refetched = ranges.filter((x) => firstRanges.slice(0, 5).includes(x));
        await second.purge(id);
        const purged = await second.storedBytes(m);
        return { err, partial, done, hashesOk, refetched, secondRequests: ranges.length, purged };
      },
      { kind, id: ID },
    );
    expect(r.err).toBe('CancelledError');
    expect(r.partial).toEqual({ complete: false, bytes: 5000 });
    expect(r.done.complete).toBe(true);
    expect(r.hashesOk.every(Boolean)).toBe(true);
    expect(r.refetched).toEqual([]);
    expect(r.purged).toEqual({ complete: false, bytes: 0 });
  });

test('an fp16 graph on an adapter without shader-f16 (SwiftShader) is refused before loading, with a way out', async ({
  page,
}) => {
  const { GraphBuilder } = await import('../../models/builders/graph.ts');
  const { floatToHalf } = await import('../../src/core/tensor.ts');
  // An fp16 VAE decoder with the right signature: fp32 in/out, fp16 weights and compute inside.
  const g = new GraphBuilder('vae_decoder_fp16');
  const z = g.input('latent_sample', 'float32', ['batch', 4, 'h', 'w']);
  const zh = g.op('Cast', [z], { to: 10 });
  const w = g.init(
    'w',
    Uint16Array.from({ length: 3 * 4 }, (_, i) => floatToHalf((i % 5) / 10)),
    [3, 4, 1, 1],
    'float16',
  );
  const y = g.op('Conv', [zh, w], {
    kernel_shape: [1, 1],
    pads: [0, 0, 0, 0],
    strides: [1, 1],
    dilations: [1, 1],
    group: 1,
  });
  const up = g.op('Resize', [y, '', g.init('scales', Float32Array.of(1, 1, 8, 8), [4])], { mode: 'nearest' });
  g.output(g.op('Cast', [up], { to: 1 }, 'sample'), 'float32', ['batch', 3, 'H', 'W']);
  const fp16 = Array.from(g.toModel({ opset: 18 }));

  await page.goto('/');
  await page.waitForFunction(() => '__defectlabModels' in globalThis);
  const message = await page.evaluate(
    async ({ id, fp16 }) => {
      type Api = {
        manifests: { id: string; files: { path: string; bytes: number; sha256: string }[] }[];
        serverBase(m: unknown, origin: string): string;
        sha256(b: Uint8Array): string;
        client(): { load(r: unknown): Promise<unknown> };
      };
      const api = (globalThis as unknown as { __defectlabModels: Api }).__defectlabModels;
      const manifest = JSON.parse(JSON.stringify(api.manifests.find((m) => m.id === id)));
      const base = api.serverBase(manifest, location.origin);
      const files = new Map<string, Blob>();
      for (const f of manifest.files as { path: string; bytes: number; sha256: string }[]) {
        if (f.path === 'vae_decoder/model.onnx') {
          const bytes = Uint8Array.from(fp16);
          f.bytes = bytes.length;
          f.sha256 = api.sha256(bytes);
          files.set(f.path, new Blob([bytes]));
        } else files.set(f.path, await (await fetch(base + f.path)).blob());
      }
      try {
        await api.client().load({ manifest, source: { kind: 'files', files }, backend: 'webgpu' });
        return 'loaded';
      } catch (e) {
        return (e as Error).message;
      }
    },
    { id: ID, fp16 },
  );
  expect(message).toMatch(
    /GpuLimitError: tiny-sd-inpaint\/vae_decoder computes in fp16 but this GPU adapter lacks the shader-f16 feature — fix: .*WASM backend.*server backend/,
  );
});
