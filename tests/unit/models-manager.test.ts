/* eslint-disable @typescript-eslint/no-explicit-any -- the validation cases mutate manifests into invalid shapes on purpose */
/**
 * The model manager's pure parts under Node: manifest validation, layout check, resume bookkeeping, and the
 * download → verify → commit path against an in-memory store and a fake Range-capable server built from the
 * tiny models. Bad input (wrong sha256, truncated .onnx, mismatched graph) must name the file and leave the
 * store without a complete entry for it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { tinyDiffusionModels } from '../../models/builders/diffusion.ts';
import {
  validateManifest,
  ManifestError,
  hubBase,
  serverBase,
  totalBytes,
  type ModelManifest,
} from '../../src/runtime/models/manifest.ts';
import { layoutProblems, LayoutMismatchError } from '../../src/runtime/models/layout.ts';
import { inspectOnnx, TruncatedModelError } from '../../src/runtime/models/onnx-inspect.ts';
import {
  ChecksumError,
  DownloadError,
  joinUrl,
  ModelManager,
  nextRange,
  overallProgress,
  type DownloadProgress,
} from '../../src/runtime/models/manager.ts';
import { MemoryFileStore } from '../../src/runtime/models/store.ts';
import { sha256Hex } from '../../src/runtime/models/sha256.ts';
import { createHash } from 'node:crypto';

let sdxl: { manifest: ModelManifest; files: Map<string, Uint8Array> };
let sd: { manifest: ModelManifest; files: Map<string, Uint8Array> };
beforeAll(async () => {
  const all = await tinyDiffusionModels();
  sdxl = all.find((m) => m.manifest.id === 'tiny-sdxl-inpaint')!;
  sd = all.find((m) => m.manifest.id === 'tiny-sd-inpaint')!;
});

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));

/** A server holding `files` under `base`, honouring Range; `failAfter` requests it starts failing. */
function fakeServer(
  files: Map<string, Uint8Array>,
  opts: { failAfter?: number; ignoreRange?: boolean } = {},
) {
  const requests: string[] = [];
  const fetchFn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const range = new Headers(init?.headers).get('range') ?? '';
    requests.push(`${url.replace('http://srv/m/', '')} ${range}`);
    if (opts.failAfter !== undefined && requests.length > opts.failAfter) throw new TypeError('network down');
    const path = decodeURIComponent(url.replace('http://srv/m/', ''));
    const body = files.get(path);
    if (!body) return new Response('not found', { status: 404 });
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (!m || opts.ignoreRange) return new Response(body.slice() as Uint8Array<ArrayBuffer>, { status: 200 });
    const start = Number(m[1]);
    const end = Math.min(m[2] ? Number(m[2]) : body.length - 1, body.length - 1);
    if (start >= body.length) return new Response(null, { status: 416 });
    return new Response(body.slice(start, end + 1) as Uint8Array<ArrayBuffer>, {
      status: 206,
      headers: { 'content-range': `bytes ${start}-${end}/${body.length}` },
    });
  }) as typeof fetch;
  return { fetchFn, requests };
}

describe('manifest validation', () => {
  it('accepts the tiny manifests and rejects each broken field by name', () => {
    expect(validateManifest(clone(sdxl.manifest)).id).toBe('tiny-sdxl-inpaint');
    const cases: [(m: Record<string, any>) => void, RegExp][] = [
      [(m) => (m.format = 'x'), /format must be "defectlab-model\/1"/],
      [(m) => (m.layout = 'sd3'), /layout must be/],
      [(m) => (m.resolution = 100), /resolution must be a positive multiple of 8/],
      [(m) => (m.files[0].sha256 = 'ABC'), /files\[0\]\.sha256 must be 64 lowercase hex/],
      [(m) => (m.files[1].bytes = -1), /files\[1\]\.bytes must be a positive integer/],
      [(m) => (m.files[2].path = '../etc/passwd'), /files\[2\]\.path must be a relative path/],
      [
        (m) => delete m.components.text_encoder_2,
        /components\.text_encoder_2 is required by the sdxl-inpaint layout/,
      ],
      [(m) => (m.components.unet.file = 'nope.onnx'), /components\.unet\.file must name one of files/],
      [(m) => (m.tokenizer.vocab = 'missing.json'), /tokenizer names missing\.json/],
      [(m) => (m.files[3] = { ...m.files[0] }), /is listed twice/],
    ];
    for (const [mutate, re] of cases) {
      const m = clone(sdxl.manifest) as unknown as Record<string, any>;
      mutate(m);
      expect(() => validateManifest(m, 'x.json')).toThrow(ManifestError);
      expect(() => validateManifest(m, 'x.json')).toThrow(re);
    }
    // SD layout needs no second encoder.
    expect(validateManifest(clone(sd.manifest)).components.text_encoder_2).toBeUndefined();
  });
});

describe('source URLs', () => {
  // Hugging Face serves a file of a repo at https://huggingface.co/{repo_id}/resolve/{revision}/{filename}
  // (huggingface_hub's hf_hub_url); the expected strings below are that template filled in by hand.
  it('hub base: Hugging Face resolve/<revision>/ style, main by default, a mirror base without double slashes', () => {
    const m = { ...clone(sdxl.manifest), hub: { repo: 'defectlab/sdxl-inpaint-onnx' } };
    expect(hubBase(m)).toBe('https://huggingface.co/defectlab/sdxl-inpaint-onnx/resolve/main/');
    expect(hubBase({ ...m, hub: { repo: 'org/model', revision: 'v1.2' } })).toBe(
      'https://huggingface.co/org/model/resolve/v1.2/',
    );
    expect(hubBase(m, 'https://hf-mirror.example/')).toBe(
      'https://hf-mirror.example/defectlab/sdxl-inpaint-onnx/resolve/main/',
    );
    expect(hubBase(clone(sd.manifest))).toBeNull();
    // A file URL: the base joined with the manifest path, each segment percent-encoded, slashes kept.
    expect(joinUrl(hubBase(m)!, 'unet/model.onnx_data')).toBe(
      'https://huggingface.co/defectlab/sdxl-inpaint-onnx/resolve/main/unet/model.onnx_data',
    );
    expect(joinUrl('https://huggingface.co/o/r/resolve/main', 'tokenizer 2/vocab#1.json')).toBe(
      'https://huggingface.co/o/r/resolve/main/tokenizer%202/vocab%231.json',
    );
    expect(serverBase(sd.manifest, 'http://localhost:4173')).toBe(
      'http://localhost:4173/models/tiny/tiny-sd-inpaint/',
    );
  });
});

describe('layout check', () => {
  it('passes matching graphs and names every mismatch', () => {
    const sdUnet = inspectOnnx(sd.files.get('unet/model.onnx')!);
    expect(layoutProblems('sd-inpaint', 'unet', sdUnet)).toEqual([]);
    const p = layoutProblems('sdxl-inpaint', 'unet', sdUnet);
    expect(p).toEqual(
      expect.arrayContaining([
        'input encoder_hidden_states has 768 at dimension 2, expected 2048',
        expect.stringMatching(/^input text_embeds is missing/),
        expect.stringMatching(/^input time_ids is missing/),
      ]),
    );
    // The SD encoder has no hidden_states.*: SDXL needs the penultimate layer.
    expect(
      layoutProblems('sdxl-inpaint', 'text_encoder', inspectOnnx(sd.files.get('text_encoder/model.onnx')!)),
    ).toEqual([expect.stringMatching(/hidden_states\.\* are missing/)]);
    // A VAE decoder is not a UNet.
    expect(
      layoutProblems('sd-inpaint', 'unet', inspectOnnx(sd.files.get('vae_decoder/model.onnx')!))[0],
    ).toMatch(/input sample is missing/);
  });
});

describe('resume bookkeeping', () => {
  it('plans ranges from what is stored', () => {
    expect(nextRange(0, 10, 4)).toEqual([0, 3]);
    expect(nextRange(8, 10, 4)).toEqual([8, 9]);
    expect(nextRange(10, 10, 4)).toBeNull();
  });
  it('computes overall bytes, rate and ETA from manifest sizes', () => {
    const total = totalBytes(sdxl.manifest);
    const stored = new Map([[sdxl.manifest.files[0].path, sdxl.manifest.files[0].bytes]]);
    const p = overallProgress(sdxl.manifest, stored, 0, 0, 2000, 'x');
    expect(p.done).toBe(sdxl.manifest.files[0].bytes);
    expect(p.total).toBe(total);
    expect(p.rate).toBeCloseTo(p.done / 2, 6);
    expect(p.etaSeconds).toBeCloseTo((total - p.done) / p.rate, 6);
    // Bytes found on disk at start do not inflate the rate.
    expect(overallProgress(sdxl.manifest, stored, p.done, 0, 2000, 'x').rate).toBe(0);
  });
});

describe('ModelManager download', () => {
  it('downloads, verifies, lists, opens and purges; progress reaches 100 %', async () => {
    const store = new MemoryFileStore();
    const { fetchFn, requests } = fakeServer(sdxl.files);
    const mgr = new ModelManager(store, fetchFn);
    const seen: DownloadProgress[] = [];
    await mgr.download(sdxl.manifest, 'http://srv/m/', { chunkBytes: 4096, onProgress: (p) => seen.push(p) });
    const last = seen[seen.length - 1];
    expect(last.done).toBe(last.total);
    expect(last.total).toBe(totalBytes(sdxl.manifest));
    expect(seen.map((p) => p.done)).toEqual([...seen.map((p) => p.done)].sort((a, b) => a - b));
    // One request per 4 KiB chunk of every file.
    const expected = sdxl.manifest.files.reduce((a, f) => a + Math.ceil(f.bytes / 4096), 0);
    expect(requests.length).toBe(expected);
    const cached = await mgr.listCached();
    expect(cached.map((c) => [c.manifest.id, c.bytes])).toEqual([
      ['tiny-sdxl-inpaint', totalBytes(sdxl.manifest)],
    ]);
    const unet = await mgr.open(sdxl.manifest, { kind: 'cache' }).read('unet/model.onnx');
    expect(await sha256Hex(unet)).toBe(sdxl.manifest.files.find((f) => f.path === 'unet/model.onnx')!.sha256);
    // A second download is a no-op: everything is cached.
    await mgr.download(sdxl.manifest, 'http://srv/m/');
    expect(requests.length).toBe(expected);
    await mgr.purge('tiny-sdxl-inpaint');
    expect(store.dump()).toEqual({ complete: [], partial: [] });
    expect(await mgr.listCached()).toEqual([]);
  });

  it('resumes after an interruption without refetching stored bytes', async () => {
    const store = new MemoryFileStore();
    const first = fakeServer(sdxl.files, { failAfter: 5 });
    const mgr1 = new ModelManager(store, first.fetchFn);
    await expect(mgr1.download(sdxl.manifest, 'http://srv/m/', { chunkBytes: 2048 })).rejects.toThrow(
      DownloadError,
    );
    const before = await mgr1.storedBytes(sdxl.manifest);
    expect(before.complete).toBe(false);
    expect(before.bytes).toBeGreaterThan(0);
    // "Reload": a new manager over the same store and a healthy server.
    const second = fakeServer(sdxl.files);
    const mgr2 = new ModelManager(store, second.fetchFn);
    const seen: DownloadProgress[] = [];
    await mgr2.download(sdxl.manifest, 'http://srv/m/', {
      chunkBytes: 2048,
      onProgress: (p) => seen.push(p),
    });
    expect(seen[0].resumedFrom).toBe(before.bytes);
    const all = sdxl.manifest.files.reduce((a, f) => a + Math.ceil(f.bytes / 2048), 0);
    expect(second.requests.length).toBe(all - 5);
    // No range that the first attempt stored is asked again.
    for (const r of first.requests.slice(0, 5)) expect(second.requests).not.toContain(r);
    expect((await mgr2.storedBytes(sdxl.manifest)).complete).toBe(true);
  });

  it('storage quota: refuses before the first request when the rest cannot fit, counting a resume', async () => {
    const store = new MemoryFileStore();
    const total = totalBytes(sd.manifest);
    const { fetchFn, requests } = fakeServer(sd.files);
    // The browser grants 1000 bytes fewer than the model needs.
    const tight = async () => ({ quota: total - 1000 + 500, usage: 500 });
    await expect(
      new ModelManager(store, fetchFn, tight).download(sd.manifest, 'http://srv/m/'),
    ).rejects.toThrow(
      /MemoryLimitError: tiny-sd-inpaint needs .* more of storage but the browser grants this site .* free.*— fix:/,
    );
    expect(requests).toEqual([]);
    expect(store.dump()).toEqual({ complete: [], partial: [] });
    // With 2000 bytes already stored (a resume), the same quota suffices: only the rest is counted.
    const cut = fakeServer(sd.files, { failAfter: 2 });
    await expect(
      new ModelManager(store, cut.fetchFn, async () => ({ quota: total })).download(
        sd.manifest,
        'http://srv/m/',
        {
          chunkBytes: 1000,
        },
      ),
    ).rejects.toThrow(DownloadError);
    const usedByPartial = async () => ({ quota: total - 1000 + 2000, usage: 2000 });
    await new ModelManager(store, fetchFn, usedByPartial).download(sd.manifest, 'http://srv/m/', {
      chunkBytes: 1000,
    });
    expect((await new ModelManager(store, fetchFn).storedBytes(sd.manifest)).complete).toBe(true);
  });

  it('works with a server that ignores Range', async () => {
    const store = new MemoryFileStore();
    const { fetchFn } = fakeServer(sd.files, { ignoreRange: true });
    await new ModelManager(store, fetchFn).download(sd.manifest, 'http://srv/m/', { chunkBytes: 1000 });
    expect((await new ModelManager(store, fetchFn).storedBytes(sd.manifest)).complete).toBe(true);
  });

  it('wrong sha256: ChecksumError naming the file; nothing of it is cached, other models untouched', async () => {
    const store = new MemoryFileStore();
    const { fetchFn } = fakeServer(sd.files);
    const mgr = new ModelManager(store, fetchFn);
    await mgr.download(sd.manifest, 'http://srv/m/');
    const before = store.dump();
    const bad = clone(sdxl.manifest);
    const unet = bad.files.find((f) => f.path === 'unet/model.onnx')!;
    unet.sha256 = createHash('sha256').update('something else').digest('hex');
    const server2 = fakeServer(sdxl.files);
    const err = await new ModelManager(store, server2.fetchFn).download(bad, 'http://srv/m/').catch((e) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect(err.message).toMatch(/ChecksumError: tiny-sdxl-inpaint\/unet\/model\.onnx has sha256 .* — fix:/);
    const after = store.dump();
    expect(after.complete).not.toContain('tiny-sdxl-inpaint/unet/model.onnx');
    expect(after.complete).not.toContain('tiny-sdxl-inpaint/.manifest.json');
    expect(after.partial).not.toContain('tiny-sdxl-inpaint/unet/model.onnx');
    for (const k of before.complete) expect(after.complete).toContain(k);
    expect((await mgr.listCached()).map((c) => c.manifest.id)).toEqual(['tiny-sd-inpaint']);
  });

  it('truncated .onnx: a short server file is a DownloadError, a manifest describing cut bytes a TruncatedModelError', async () => {
    const cut = new Map(sd.files);
    const full = sd.files.get('unet/model.onnx')!;
    const short = full.slice(0, full.length - 100);
    cut.set('unet/model.onnx', short);
    const store = new MemoryFileStore();
    const e1 = await new ModelManager(store, fakeServer(cut).fetchFn)
      .download(sd.manifest, 'http://srv/m/', { chunkBytes: 1024 })
      .catch((e) => e);
    expect(e1).toBeInstanceOf(DownloadError);
    expect(e1.message).toMatch(/tiny-sd-inpaint\/unet\/model\.onnx: the server has fewer bytes .*truncated/);
    // A manifest that (wrongly) describes the cut file passes sha256 but not the graph check.
    const m = clone(sd.manifest);
    const entry = m.files.find((f) => f.path === 'unet/model.onnx')!;
    entry.bytes = short.length;
    entry.sha256 = await sha256Hex(short);
    const store2 = new MemoryFileStore();
    const e2 = await new ModelManager(store2, fakeServer(cut).fetchFn)
      .download(m, 'http://srv/m/')
      .catch((e) => e);
    expect(e2).toBeInstanceOf(TruncatedModelError);
    expect(e2.message).toMatch(/tiny-sd-inpaint\/unet\/model\.onnx is not a complete ONNX model/);
    expect(store2.dump().complete).not.toContain('tiny-sd-inpaint/unet/model.onnx');
  });

  it('mismatched graph: a VAE served as the unet is a LayoutMismatchError and is not cached', async () => {
    const swapped = new Map(sd.files);
    const vae = sd.files.get('vae_decoder/model.onnx')!;
    swapped.set('unet/model.onnx', vae);
    const m = clone(sd.manifest);
    const entry = m.files.find((f) => f.path === 'unet/model.onnx')!;
    entry.bytes = vae.length;
    entry.sha256 = await sha256Hex(vae);
    const store = new MemoryFileStore();
    const err = await new ModelManager(store, fakeServer(swapped).fetchFn)
      .download(m, 'http://srv/m/')
      .catch((e) => e);
    expect(err).toBeInstanceOf(LayoutMismatchError);
    expect(err.message).toMatch(
      /tiny-sd-inpaint\/unet\/model\.onnx does not match the sd-inpaint layout: input sample is missing/,
    );
    expect(store.dump().complete).not.toContain('tiny-sd-inpaint/unet/model.onnx');
  });

  it('cancel keeps the stored chunks for resuming', async () => {
    const store = new MemoryFileStore();
    const ctl = new AbortController();
    const { fetchFn } = fakeServer(sdxl.files);
    let n = 0;
    const err = await new ModelManager(store, fetchFn)
      .download(sdxl.manifest, 'http://srv/m/', {
        chunkBytes: 1024,
        signal: ctl.signal,
        onProgress: () => {
          if (++n === 4) ctl.abort();
        },
      })
      .catch((e) => e);
    expect(err.name).toBe('CancelledError');
    expect((await new ModelManager(store, fetchFn).storedBytes(sdxl.manifest)).bytes).toBe(3 * 1024);
  });
});

describe('incremental sha256', () => {
  it('equals node:crypto for every length around the block boundaries, fed in odd pieces', async () => {
    const { createSha256 } = await import('../../src/runtime/models/sha256.ts');
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_001]) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 131 + 7) & 255);
      const h = await createSha256();
      for (let i = 0; i < n;) {
        const k = Math.min(n - i, 1 + ((i * 7) % 97));
        h.update(data.subarray(i, i + k));
        i += k;
      }
      expect(h.hex(), `length ${n}`).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });
});

describe('manifestFromExport', () => {
  it('re-derives files, sha256 and graph I/O of an export folder, and refuses a wrong layout', async () => {
    const { mkdtemp, mkdir, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join, dirname } = await import('node:path');
    const { manifestFromExport } = await import('../../src/runtime/models/from-export.ts');
    const dir = await mkdtemp(join(tmpdir(), 'dl-export-'));
    try {
      for (const [p, b] of sdxl.files) {
        await mkdir(dirname(join(dir, p)), { recursive: true });
        await writeFile(join(dir, p), b);
      }
      const m = await manifestFromExport(dir, {
        id: 'tiny-sdxl-inpaint',
        layout: 'sdxl-inpaint',
        resolution: 64,
      });
      const byPath = (fs: { path: string }[]) => [...fs].sort((a, b) => a.path.localeCompare(b.path));
      expect(byPath(m.files)).toEqual(byPath(sdxl.manifest.files));
      expect(m.components).toEqual(sdxl.manifest.components);
      expect(m.dtype).toBe('float32');
      await expect(manifestFromExport(dir, { id: 'x', layout: 'sd-inpaint' })).resolves.toBeTruthy(); // SD needs a subset
      const sdDir = await mkdtemp(join(tmpdir(), 'dl-export-sd-'));
      for (const [p, b] of sd.files) {
        await mkdir(dirname(join(sdDir, p)), { recursive: true });
        await writeFile(join(sdDir, p), b);
      }
      await expect(manifestFromExport(sdDir, { id: 'x', layout: 'sdxl-inpaint' })).rejects.toThrow(
        /LayoutMismatchError: x\/text_encoder\/model\.onnx .*hidden_states/,
      );
      await rm(sdDir, { recursive: true });
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
