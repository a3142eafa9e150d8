/**
 * Node only (CLI, server, benchmarks run by tsx): call `await prepareTfForNode()` before the first dynamic
 * `import()` of `src/runtime/tf.ts` or a head. tfjs-core's Node bundle has no gradient registry, so training
 * needs its ES build, which plain Node cannot resolve; `tf-node-hooks.mjs` resolves it the way Vite does.
 * vitest and the browser need none of this.
 */
import { createRequire, register } from 'node:module';

let done = false;

export function prepareTfForNode(): void {
  if (done) return;
  done = true;
  // tfjs's ES build still calls require('util') on Node; give ES module scope one.
  const g = globalThis as { require?: NodeJS.Require };
  g.require ??= createRequire(import.meta.url);
  register('./tf-node-hooks.mjs', import.meta.url);
}
