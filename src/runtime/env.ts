/**
 * The global switches of the runtime doors, in one object (as transformers.js's `env`): set them before the first
 * model or head runs; the doors read them when they start a runtime, so a later change reaches only what starts
 * later. Nothing else in the product keeps a global switch of its own.
 *
 * - `wasm.ortPaths` / `wasm.tfPaths`: where onnxruntime-web and tfjs-backend-wasm load their `.wasm` files from;
 *   `undefined` means the binaries shipped with the build (browser, fingerprinted by Vite) or the package folder
 *   (Node). Set them to serve the binaries from elsewhere (a CDN, an app embedding DefectLab).
 * - `wasm.numThreads`: the WASM threads of onnxruntime-web and tfjs-backend-wasm. 'auto' (default) is
 *   `min(hardwareConcurrency, 8)` when cross-origin isolated, else 1 (`threads.ts`, which also holds the
 *   no-oversubscription policy); a number fixes it.
 * - `backend.preference`: the System panel's choice (auto / WebGPU / WASM) as this context last read it. In the
 *   browser the choice is stored where the page and the workers all read it (`backend-choice.ts` keeps this field in
 *   step); in Node (CLI, server, tests), where nothing is stored, this field is the choice.
 * - `cache.models`: the Cache Storage cache of downloaded models; `cache.settingsPrefix`: the prefix of the
 *   localStorage / settings keys of the backend choice and its benchmarks. Bumping either starts from empty.
 *
 * Imports nothing: every layer above `src/core` may read it.
 */

/** The System panel's choice; 'auto' is the faster backend measured on this device. */
export type BackendPreference = 'auto' | 'webgpu' | 'wasm';

/** A file map (`{ 'name.wasm': url }`) or a URL prefix ending in '/'. */
export type WasmPaths = string | Record<string, string>;

export interface DefectLabEnv {
  wasm: {
    ortPaths: WasmPaths | undefined;
    tfPaths: WasmPaths | undefined;
    numThreads: number | 'auto';
  };
  backend: { preference: BackendPreference };
  cache: { models: string; settingsPrefix: string };
}

export const env: DefectLabEnv = {
  wasm: { ortPaths: undefined, tfPaths: undefined, numThreads: 'auto' },
  backend: { preference: 'auto' },
  cache: { models: 'defectlab-models-v1', settingsPrefix: 'defectlab.backend.' },
};
