/**
 * Import first in Node entry points (CLI, server) that may train tfjs heads. tfjs-core's CJS "main" lacks the
 * gradients training needs, and its ESM build (what Vite and vitest load) has extension-less imports and calls
 * `require('util')` in its Node platform. So: `esm-hooks.mjs` sends the tfjs packages to their ESM build and
 * resolves those imports, and a CommonJS `require` is provided for the platform check.
 */
import { createRequire, register } from 'node:module';

register('./esm-hooks.mjs', import.meta.url);
const g = globalThis as { require?: NodeJS.Require };
g.require ??= createRequire(import.meta.url);
