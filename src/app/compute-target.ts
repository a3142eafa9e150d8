/**
 * Where the app's long work runs: "This browser" (the workers) or a DefectLab server (`server-client.ts`).
 * Stored in the store's settings, and only after a health check passed, so a wrong URL or token never replaces a
 * working choice.
 */
import type { DefectLabStore } from '../runtime/db/types.ts';
import { ServerClient, type ServerCapabilities, type ServerHealth } from './server-client.ts';

export interface ComputeTarget {
  mode: 'browser' | 'server';
  url: string;
  token: string;
}

export const COMPUTE_SETTING = 'compute.target';
export const DEFAULT_TARGET: ComputeTarget = { mode: 'browser', url: 'http://127.0.0.1:8787', token: '' };

export async function loadComputeTarget(store: Pick<DefectLabStore, 'getSetting'>): Promise<ComputeTarget> {
  const t = await store.getSetting<ComputeTarget>(COMPUTE_SETTING);
  return t && (t.mode === 'browser' || t.mode === 'server')
    ? { ...DEFAULT_TARGET, ...t }
    : { ...DEFAULT_TARGET };
}

export interface ServerCheck {
  health: ServerHealth;
  capabilities: ServerCapabilities;
}

/**
 * Saves a target; a server target is health-checked first and not saved when the check fails (the error, with
 * its fix, is thrown to the caller).
 */
export async function chooseComputeTarget(
  store: Pick<DefectLabStore, 'setSetting'>,
  t: ComputeTarget,
): Promise<ServerCheck | null> {
  const check = t.mode === 'server' ? await new ServerClient(t).check() : null;
  await store.setSetting(COMPUTE_SETTING, t);
  return check;
}
