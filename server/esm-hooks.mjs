// Node ESM resolve hook for tfjs under tsx. tfjs-core's ESM build (which `register_all_gradients` needs, and
// which the heads train with) uses extension-less and directory imports that only bundlers resolve, and its
// CJS "main" has no gradients. This hook sends the tfjs packages to their ESM entry and, for files inside
// @tensorflow packages only, retries a failed relative import as `<spec>.js` then `<spec>/index.js` — what Vite
// and vitest do. Registered by `register.ts` before anything imports tfjs.
const ESM_ENTRY = {
  '@tensorflow/tfjs-core': '@tensorflow/tfjs-core/dist/index.js',
  '@tensorflow/tfjs-backend-cpu': '@tensorflow/tfjs-backend-cpu/dist/index.js',
};

export async function resolve(specifier, context, next) {
  if (ESM_ENTRY[specifier]) return next(ESM_ENTRY[specifier], context);
  const fromTf = context.parentURL?.includes('/node_modules/@tensorflow/');
  if (!fromTf) return next(specifier, context);
  if (specifier.startsWith('@tensorflow/') && specifier.includes('/dist/') && !specifier.endsWith('.js')) {
    try {
      return await next(`${specifier}.js`, context);
    } catch {
      /* fall through */
    }
  }
  try {
    return await next(specifier, context);
  } catch (e) {
    if (!specifier.startsWith('.')) throw e;
    for (const alt of [`${specifier}.js`, `${specifier}/index.js`]) {
      try {
        return await next(alt, context);
      } catch {
        /* try the next form */
      }
    }
    throw e;
  }
}
