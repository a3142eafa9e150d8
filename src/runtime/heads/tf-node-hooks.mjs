// Node module hooks that load tfjs as the ES modules Vite and vitest load, so training runs under plain Node/tsx
// too. Why: tfjs-core's Node bundle (`main`) has no gradient registry, and its ES build (`module`) uses
// extensionless and directory-ambiguous specifiers that Node's ESM resolver rejects. Registered by
// `tf-node.ts` before tfjs is first imported.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ENTRIES = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu'];

function esmEntry(pkg) {
  const pj = require.resolve(`${pkg}/package.json`);
  return pathToFileURL(pj.replace(/package\.json$/, 'dist/index.js')).href;
}

export async function resolve(specifier, context, next) {
  const parent = context.parentURL ?? '';
  if (ENTRIES.includes(specifier)) return { url: esmEntry(specifier), format: 'module', shortCircuit: true };
  const inTf = parent.includes('/node_modules/@tensorflow/');
  const deep = /^@tensorflow\/tfjs-(core|backend-cpu)\/dist\//.test(specifier);
  if ((inTf && specifier.startsWith('.')) || deep) {
    const base = deep
      ? pathToFileURL(require.resolve(specifier.split('/dist/')[0] + '/package.json')).href
      : parent;
    const rel = deep ? `./dist/${specifier.split('/dist/')[1]}` : specifier;
    for (const cand of [rel, `${rel}.js`, `${rel}/index.js`]) {
      const url = new URL(cand, base);
      const path = fileURLToPath(url);
      if (path.endsWith('.js') && existsSync(path))
        return { url: url.href, format: 'module', shortCircuit: true };
    }
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url.includes('/node_modules/@tensorflow/') && url.endsWith('.js') && !url.includes('.node.js'))
    return next(url, { ...context, format: 'module' });
  return next(url, context);
}
