/**
 * The Node flavour of the onnxruntime door (server, CLI, tests, benchmarks): onnxruntime-node with the CPU
 * execution provider, or CUDA when asked for and present. onnxruntime-node throws (rather than falling back) when
 * `['cuda', 'cpu']` is requested on a machine without CUDA, so a CUDA request that fails is retried on CPU and
 * the session says why in `fallbackReason`.
 */
import * as ort from 'onnxruntime-node';
import { readFile } from 'node:fs/promises';
import { resolveObjectURL } from 'node:buffer';
import { totalmem } from 'node:os';
import { widenInt8Weights } from './int8-weights.ts';
import { SessionCounter } from './ort-sessions.ts';
import {
  SessionCreateError,
  checkModelPlan,
  messageOf,
  wrapSession,
  type Backend,
  type CreateSessionOptions,
  type ModelPlan,
  type OrtBackend,
  type OrtSession,
  type TensorCtor,
} from './ort.ts';

export * from './ort.ts';

/** Node-only session options on top of the door's. */
export interface NodeSessionOptions extends CreateSessionOptions {
  /**
   * onnxruntime's intra-op threads (a GEMM split across cores: PatchCore's search). Unset: onnxruntime's own
   * default, which is what every other session here has always used.
   */
  intraOpNumThreads?: number;
}

/** Bytes of a model or external-data file given as bytes, an http(s) URL, a `blob:` object URL or a path. */
async function load(model: Uint8Array | string): Promise<Uint8Array> {
  if (typeof model !== 'string') return model;
  if (model.startsWith('blob:')) {
    const blob = resolveObjectURL(model);
    if (!blob) throw new Error(`${model} was revoked or never created`);
    return new Uint8Array(await blob.arrayBuffer());
  }
  if (/^https?:/.test(model)) {
    const res = await fetch(model);
    if (!res.ok) throw new Error(`GET ${model} answered ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  return new Uint8Array(await readFile(model));
}

/** Every session this process creates through the door, counted until released (`ort-sessions.ts`). */
const sessions = new SessionCounter();

/** onnxruntime-node sessions created in this process and not released yet. */
export function liveOrtSessions(): number {
  return sessions.live;
}

async function create(
  bytes: Uint8Array,
  providers: string[],
  opts: NodeSessionOptions,
): Promise<ort.InferenceSession> {
  const externalData = opts.externalData
    ? await Promise.all(
        opts.externalData.map(async (e) => ({
          path: e.path,
          data: typeof e.data === 'string' ? await load(e.data) : e.data,
        })),
      )
    : undefined;
  // onnxruntime's x86 u8·s8 kernels saturate (see int8-weights.ts); the uint8 form of the same weights is exact.
  return sessions.create(() =>
    ort.InferenceSession.create(widenInt8Weights(bytes).bytes, {
      executionProviders: providers,
      graphOptimizationLevel: 'all',
      ...(externalData ? { externalData } : {}),
      ...(opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
    }),
  );
}

/** Creates a session; `backend: 'cuda'` falls back to CPU with a reason when CUDA is missing. */
export async function createSession(
  model: Uint8Array | string,
  opts: NodeSessionOptions = {},
): Promise<OrtSession> {
  const name = opts.name ?? (typeof model === 'string' ? model : 'model');
  const requested: Backend = opts.backend ?? 'cpu';
  const bytes = await load(model);
  let backend: Backend = 'cpu';
  let fallbackReason = requested === 'cpu' ? '' : `${requested} is not available in Node; using CPU`;
  let session: ort.InferenceSession | undefined;
  if (requested === 'cuda') {
    try {
      session = await create(bytes, ['cuda', 'cpu'], opts);
      backend = 'cuda';
      fallbackReason = '';
    } catch (e) {
      fallbackReason = `CUDA execution provider unavailable (${messageOf(e).split('\n')[0]}); running on CPU`;
    }
  }
  if (!session) {
    try {
      session = await create(bytes, ['cpu'], opts);
    } catch (e) {
      throw new SessionCreateError(name, 'cpu', e);
    }
  }
  return wrapSession(session, ort.Tensor as unknown as TensorCtor, { name, backend, fallbackReason });
}

export const nodeBackend: OrtBackend = {
  flavour: 'node',
  version: ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown',
  async availableBackends() {
    return ['cpu'];
  },
  createSession,
  liveSessions: liveOrtSessions,
  // Node has no GPU adapter here (CUDA reports its own out-of-memory); RAM is the limit that matters.
  async preflight(plan: ModelPlan) {
    return checkModelPlan(plan, { totalMemoryBytes: totalmem() });
  },
};
