/**
 * The one door to tfjs. Heads (`src/runtime/heads/`) import `tf` from here, never from '@tensorflow/…'
 * directly, so backend selection happens in one place:
 *
 * - browser: WebGPU → WASM → CPU (first that initializes);
 * - Node (tests, CLI, bench): WASM (SIMD, ~10× the pure-JS CPU kernels), then CPU.
 *
 * tfjs-backend-wasm hangs under COOP/COEP in a Vite build unless `WASM_HAS_MULTITHREAD_SUPPORT` is false before
 * `setBackend` (DEVELOPERS.md), so the WASM path sets it first, every time.
 */
import * as tf from '@tensorflow/tfjs-core';
// Training needs the gradient registry, which tfjs-core leaves out of its default entry point.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { DefectLabError } from '../core/errors.ts';

export { tf };

export type TfBackendName = 'webgpu' | 'wasm' | 'cpu';
export type TfBackendPreference = TfBackendName | 'auto';

export class TfBackendError extends DefectLabError {
  constructor(backend: string, cause: unknown) {
    super(
      'TfBackendError',
      `the tfjs ${backend} backend could not start (${cause instanceof Error ? cause.message : String(cause)})`,
      backend === 'webgpu'
        ? 'choose the WASM backend in the train tab, or use a browser with WebGPU enabled'
        : 'choose another backend (auto picks the first that works)',
      { cause },
    );
  }
}

const isBrowserLike =
  typeof window !== 'undefined' ||
  typeof (globalThis as { importScripts?: unknown }).importScripts === 'function';

async function register(name: TfBackendName): Promise<void> {
  if (name === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
  } else if (name === 'webgpu') {
    if (!(globalThis.navigator as Navigator & { gpu?: GPU })?.gpu)
      throw new Error('navigator.gpu is missing');
    await import('@tensorflow/tfjs-backend-webgpu');
  } else {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (isBrowserLike) {
      const { wasmPaths } = await import('./heads/tf-wasm-paths.ts');
      wasm.setWasmPaths(wasmPaths);
    } else {
      // Node reads the binaries from the package folder (hoisted node_modules next to src/).
      wasm.setWasmPaths(
        new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url).pathname,
      );
    }
  }
}

async function tryBackend(name: TfBackendName): Promise<void> {
  await register(name);
  if (name === 'wasm') tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`setBackend('${name}') returned false`);
  await tf.ready();
  // A tiny op proves kernels run (WebGPU can register yet fail on the first dispatch).
  const probe = tf.sum(tf.tensor1d([1, 2, 3]));
  const v = (await probe.data())[0];
  probe.dispose();
  if (v !== 6) throw new Error(`the ${name} backend computed 1+2+3 = ${v}`);
}

let active: { pref: TfBackendPreference; name: Promise<TfBackendName> } | null = null;

/**
 * Selects (once per preference) and returns the tfjs backend. `auto` tries WebGPU, then WASM, then CPU in the
 * browser and WASM, then CPU, in Node; an explicit choice that fails throws `TfBackendError` instead of silently falling back,
 * so a user (or a test) that asked for WASM knows it got WASM.
 */
export function initTf(pref: TfBackendPreference = 'auto'): Promise<TfBackendName> {
  if (active && active.pref === pref) return active.name;
  const name = (async (): Promise<TfBackendName> => {
    if (pref !== 'auto') {
      try {
        await tryBackend(pref);
      } catch (e) {
        throw new TfBackendError(pref, e);
      }
      return pref;
    }
    const order: TfBackendName[] = isBrowserLike ? ['webgpu', 'wasm', 'cpu'] : ['wasm', 'cpu'];
    let last: unknown;
    for (const b of order) {
      try {
        await tryBackend(b);
        return b;
      } catch (e) {
        last = e;
      }
    }
    throw new TfBackendError(order.join('/'), last);
  })();
  active = { pref, name };
  name.catch(() => {
    if (active?.name === name) active = null;
  });
  return name;
}

/**
 * The backend already chosen by an earlier `initTf` (whatever its preference), else `initTf('auto')`. For code
 * that trains inside a run whose caller picked the backend: calling `initTf('auto')` there would switch away
 * from an explicit choice such as 'wasm' while the run still reports it.
 */
export function ensureTf(): Promise<TfBackendName> {
  return active ? active.name : initTf('auto');
}

/** The backend tfjs is using now (after `initTf`). */
export function currentTfBackend(): string {
  return tf.getBackend();
}
