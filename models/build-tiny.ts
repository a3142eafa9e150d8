/**
 * `npm run models:tiny`: builds the tiny random-weight ONNX models that tests, benchmarks and `npm start` use
 * (no download needed). Each builder writes `models/tiny/<id>/…` plus its manifest and returns what it wrote.
 */
import { resolve } from 'node:path';
import { buildDiffusionTinyModels } from './builders/diffusion.ts';
import { buildBackboneTinyModels } from './builders/backbone.ts';

const outDir = resolve(import.meta.dirname, 'tiny');
const t0 = Date.now();
const written = [...(await buildDiffusionTinyModels(outDir)), ...(await buildBackboneTinyModels(outDir))];
console.log(`models:tiny wrote ${written.length} files to ${outDir} in ${Date.now() - t0} ms`);
