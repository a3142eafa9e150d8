/**
 * Bad input in the browser, and the browser stores themselves:
 * - a corrupted file (same size, one byte flipped) → `ChecksumError` naming the file, nothing of it cached;
 *   a truncated file → `DownloadError` saying it is shorter than the manifest; the dataset is untouched; once the
 *   server is healthy again the same button resumes and completes;
 * - Cache Storage and OPFS stores resume an interrupted download without refetching stored chunks, and hand back
 *   the exact bytes (sha256 = manifest);
 * - a picked export whose unet does not fit the layout (an SD unet, same byte size, under the SDXL manifest) →
 *   `LayoutMismatchError` naming the file and the missing input in the Models tab, the loaded model still loaded;
 * - an empty mask and a mask covering everything → `EmptyMaskError` / `MaskCoversImageError` in the diffusion
 *   panel, nothing staged;
 * each with every store snapshotted before and after: image and mask records, model cache entries (Cache
 * Storage and OPFS) — unchanged.
 */
import { expect, test, type Page } from './fixtures.ts';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { waitForApp } from './helpers.ts';

const ID = 'tiny-sd-inpaint';
const UNET = resolve(process.cwd(), 'models/tiny', ID, 'unet/model.onnx');

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

/** Everything a failed load or generate must not touch: record counts and the model caches' entry names. */
async function storedState(page: Page) {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('defectlab');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const count = (name: string) =>
      new Promise<number>((res, rej) => {
        const r = db.transaction(name).objectStore(name).count();
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
    const cacheKeys: string[] = [];
    for (const name of await caches.keys())
      for (const req of await (await caches.open(name)).keys()) cacheKeys.push(`${name} ${req.url}`);
    const opfs: string[] = [];
    const walk = async (d: FileSystemDirectoryHandle, path: string) => {
      for await (const [name, h] of (
        d as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }
      ).entries()) {
        if (h.kind === 'directory') await walk(h as FileSystemDirectoryHandle, `${path}${name}/`);
        else opfs.push(`${path}${name} ${(await (h as FileSystemFileHandle).getFile()).size}`);
      }
    };
    await walk(await navigator.storage.getDirectory(), '');
    return {
      images: await count('images'),
      masks: await count('masks'),
      cacheKeys: cacheKeys.sort(),
      opfs: opfs.sort(),
    };
  });
}

/** Downloads a model through the Models tab (server source) and loads it on WASM. */
async function downloadAndLoad(page: Page, id: string) {
  await page.locator('[data-tab="models"]').click();
  await page.getByTestId(`model-download-${id}`).click();
  await expect(page.getByTestId(`model-cached-${id}`)).toContainText('✓', { timeout: 120_000 });
  await page.getByTestId('models-backend').selectOption('wasm');
  await page.getByTestId(`model-load-${id}`).click();
  await expect(page.getByTestId('models-loaded')).toContainText(id, { timeout: 120_000 });
}

/**
 * `bytes` grown to exactly `size` by an unknown ModelProto field (number 1000, length-delimited): protobuf
 * readers skip it, so the graph is unchanged — a wrong graph that passes the picked-file size check.
 */
function padOnnx(bytes: Uint8Array, size: number): Uint8Array {
  const key = [0xc2, 0x3e]; // (1000 << 3) | 2 as a varint
  const varint = (n: number) => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return out;
  };
  let payload = size - bytes.length - key.length - 1;
  while (key.length + varint(payload).length + payload > size - bytes.length) payload--;
  const head = [...key, ...varint(payload)];
  const pad = new Uint8Array(size - bytes.length - head.length - payload);
  if (pad.length) throw new Error(`cannot pad ${bytes.length} to ${size} exactly`);
  return Uint8Array.from([...bytes, ...head, ...new Uint8Array(payload)]);
}

test('a picked export whose unet does not fit the layout: LayoutMismatchError named, nothing stored changes', async ({
  page,
}) => {
  const sdxl = resolve(process.cwd(), 'models/tiny/tiny-sdxl-inpaint');
  const dir = join(mkdtempSync(join(tmpdir(), 'dl-bad-')), 'export');
  cpSync(sdxl, dir, { recursive: true });
  const sdxlUnet = readFileSync(join(sdxl, 'unet/model.onnx'));
  const sdUnet = readFileSync(resolve(process.cwd(), 'models/tiny/tiny-sd-inpaint/unet/model.onnx'));
  writeFileSync(join(dir, 'unet/model.onnx'), padOnnx(sdUnet, sdxlUnet.length));

  await page.goto('/');
  await waitForApp(page);
  // A working model is loaded first: the bad one must not replace it.
  await downloadAndLoad(page, 'tiny-sd-inpaint');
  const before = await storedState(page);
  await page.getByTestId('model-source-tiny-sdxl-inpaint').selectOption('files');
  await page.getByTestId('model-folder-tiny-sdxl-inpaint').setInputFiles(dir);
  await expect(page.getByTestId('model-row-tiny-sdxl-inpaint')).toContainText('files picked');
  await page.getByTestId('model-load-tiny-sdxl-inpaint').click();
  const error = page.getByTestId('models-error');
  await expect(error).toContainText(
    'LayoutMismatchError: tiny-sdxl-inpaint/unet/model.onnx does not match the sdxl-inpaint layout',
  );
  await expect(error).toContainText('text_embeds is missing');
  await expect(error).toContainText('— fix:');
  await expect(page.getByTestId('models-loaded')).toContainText('tiny-sd-inpaint');
  expect(await storedState(page)).toEqual(before);
});

for (const kind of ['empty', 'full'] as const)
  test(`${kind} mask: a named error in the diffusion panel, nothing staged, nothing stored changes`, async ({
    page,
  }) => {
    await page.goto('/');
    await waitForApp(page);
    await downloadAndLoad(page, 'tiny-sd-inpaint');
    await page.locator('[data-tab="generate"]').click();
    await expect(page.getByTestId('painter-canvas')).toBeVisible({ timeout: 60_000 });
    await page.getByTestId('painter-clear').click();
    // Clear leaves nothing painted; Invert of nothing paints every pixel.
    if (kind === 'full') await page.getByTestId('painter-invert').click();
    await page.getByTestId('gen-generator').selectOption('diffusion');
    await page.getByTestId('gen-source').selectOption('current');
    await page.getByTestId('gen-mask').selectOption('painted');
    await page.getByTestId('diffusion-use-painting').click();
    const panel = page.getByTestId('diffusion-panel');
    await expect(panel).toBeVisible();
    await panel.getByTestId('diffusion-steps').fill('2');
    // The painting was stored by "use the current painting"; from here on nothing may change.
    const before = await storedState(page);
    if (kind === 'empty') {
      // An empty painting is not stored, so there is no mask to send: Generate stays disabled and the panel
      // says why, in the engine's words (the Node side asserts the engine's own EmptyMaskError).
      await expect(panel.getByTestId('diffusion-generate')).toBeDisabled();
      const hint = panel.getByTestId('diffusion-mask-missing');
      await expect(hint).toContainText('EmptyMaskError: the mask has no painted pixel');
      await expect(hint).toContainText('— fix: paint the region');
      await expect(panel.getByText('0 region mask(s)')).toBeVisible();
      expect(await storedState(page)).toEqual(before);
      return;
    }
    await panel.getByTestId('diffusion-generate').click();
    const error = panel.getByTestId('diffusion-error');
    await expect(error).toContainText('MaskCoversImageError: the mask covers the whole image', {
      timeout: 120_000,
    });
    await expect(error).toContainText('— fix:');
    const pending = page.getByTestId('staging-pending');
    if (await pending.count()) await expect(pending).toHaveText('0 pending');
    expect(await storedState(page)).toEqual(before);
  });

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
              sha256(b: Uint8Array): Promise<string>;
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
        for (const f of m.files) hashesOk.push((await api.sha256(await files.read(f.path))) === f.sha256);
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
        sha256(b: Uint8Array): Promise<string>;
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
          f.sha256 = await api.sha256(bytes);
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
