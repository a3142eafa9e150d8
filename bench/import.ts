/**
 * Import benchmark: 2,331 generated 632×224 RGB PNGs (the size and count of KSDD2) through the import engine
 * into fake-indexeddb in Node — decode, SHA-256, thumbnail, batched transactions — the same code the import
 * worker runs in the browser. Prints seconds, images/s, MB read, MB stored and peak JS heap (`heapUsed`; typed-array bytes are in
 * `peakExternalMB`) and RSS.
 *
 * The files: 12 procedural surfaces, each file made unique by a tEXt chunk carrying its index, so every file has
 * its own SHA-256 (no duplicate short-cuts) and full decoding cost, without spending minutes encoding 2,331 PNGs.
 * `DL_BENCH_IMPORT_N` overrides the count.
 */
import 'fake-indexeddb/auto';
import { crop } from '../src/core/image.ts';
import { Rng } from '../src/core/rng.ts';
import { renderSurface, SURFACE_FAMILIES } from '../src/core/sample-data/index.ts';
import { deleteStore, openStore } from '../src/runtime/db/store.ts';
import { encodePng } from '../src/runtime/decode.ts';
import { ImportEngine, type ImportSource } from '../workers/import.engine.ts';

const WIDTH = 632;
const HEIGHT = 224;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The PNG with a `tEXt` chunk (keyword "id") inserted after IHDR: same pixels, different bytes. */
function withTextChunk(png: Uint8Array, text: string): Uint8Array {
  const data = new TextEncoder().encode(`id\u0000${text}`);
  const chunk = new Uint8Array(12 + data.length);
  const dv = new DataView(chunk.buffer);
  dv.setUint32(0, data.length);
  chunk.set([0x74, 0x45, 0x58, 0x74], 4); // "tEXt"
  chunk.set(data, 8);
  dv.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
  const at = 8 + 25; // signature + IHDR chunk
  const out = new Uint8Array(png.length + chunk.length);
  out.set(png.subarray(0, at));
  out.set(chunk, at);
  out.set(png.subarray(at), at + chunk.length);
  return out;
}

export async function run(): Promise<Record<string, unknown>> {
  const n = Number(process.env.DL_BENCH_IMPORT_N ?? 2331);
  const tGen = performance.now();
  const bases: Uint8Array[] = [];
  for (let i = 0; i < 12; i++) {
    const family = SURFACE_FAMILIES[i % SURFACE_FAMILIES.length];
    const square = renderSurface(family, WIDTH, new Rng(`bench-import-${i}`));
    bases.push(encodePng(crop(square, { x: 0, y: 0, width: WIDTH, height: HEIGHT })));
  }
  const entries: ImportSource[] = Array.from({ length: n }, (_, i) => ({
    path: `ksdd2-like/train/${String(i).padStart(5, '0')}.png`,
    data: withTextChunk(bases[i % bases.length], String(i)),
  }));
  const inputBytes = entries.reduce((s, e) => s + (e.data as Uint8Array).length, 0);
  const generateSeconds = (performance.now() - tGen) / 1000;

  const name = `bench-import-${process.pid}`;
  const store = await openStore(name);
  const engine = new ImportEngine(store);
  const dataset = await store.createDataset({ name: 'bench', source: 'files' });
  let peakHeap = 0;
  let peakRss = 0;
  let peakExternal = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed);
    peakRss = Math.max(peakRss, m.rss);
    // Typed-array bytes (the files, decoded pixels) live outside the JS heap proper.
    peakExternal = Math.max(peakExternal, m.external);
  };
  const timer = setInterval(sample, 50);
  const t0 = performance.now();
  const report = await engine.importFiles(dataset.id, { entries }, { batchSize: 32, onProgress: sample });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  sample();

  let storedBytes = 0;
  let thumbBytes = 0;
  for (const r of await store.listImages(dataset.id)) {
    storedBytes += r.blob.size;
    thumbBytes += r.thumbnail.size;
  }
  store.close();
  await deleteStore(name);
  const MB = 1024 * 1024;
  return {
    images: n,
    size: `${WIDTH}x${HEIGHT} RGB PNG`,
    added: report.added,
    rejected: report.rejected.length,
    seconds,
    imagesPerSecond: report.added / seconds,
    inputMB: inputBytes / MB,
    storedMB: (storedBytes + thumbBytes) / MB,
    thumbnailsMB: thumbBytes / MB,
    peakHeapMB: peakHeap / MB,
    peakExternalMB: peakExternal / MB,
    peakRssMB: peakRss / MB,
    generateSeconds,
    store: 'fake-indexeddb (Node); browser IndexedDB differs',
  };
}
