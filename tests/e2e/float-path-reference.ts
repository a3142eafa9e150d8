/**
 * The Node side of `float-path.spec.ts`, run with tsx (Playwright's loader cannot import the JSON manifest
 * that backbone.ts reads): decodes the given magnetic tiles, runs the float path of the real MobileNetV2-int8
 * on onnxruntime-node CPU and prints one JSON line with the decoded rasters (base64) and their features.
 *   npx tsx tests/e2e/float-path-reference.ts <file>…   (paths relative to ../shared/data/magnetic-tile-compact)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Backbone, findBackbone, manifestLoadOptions } from '../../src/runtime/backbone.ts';
import { decodeImage } from '../../src/runtime/decode.ts';
import { nodeBackend } from '../../src/runtime/ort-node.ts';

const SHARED = path.resolve(import.meta.dirname, '../../../shared');
const DATA = path.join(SHARED, 'data/magnetic-tile-compact');
const files = process.argv.slice(2);
const rasters = await Promise.all(
  files.map(async (f) => (await decodeImage(readFileSync(path.join(DATA, f)), f)).raster),
);
const bb = await Backbone.load(
  new Uint8Array(readFileSync(path.join(SHARED, 'models/mobilenetv2-12-int8.onnx'))),
  {
    ...manifestLoadOptions(findBackbone('mobilenetv2-12-int8')!),
    ort: nodeBackend,
    floatPath: 'fp32',
  },
);
const f = await bb.extract(rasters);
await bb.release();
console.log(
  JSON.stringify({
    images: rasters.map((r) => ({
      width: r.width,
      height: r.height,
      channels: r.channels,
      b64: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength).toString('base64'),
    })),
    pooled: f.pooled.map((p) => Array.from(p)),
    spatial: f.spatial.map((s) => Array.from(s.data)),
  }),
);
