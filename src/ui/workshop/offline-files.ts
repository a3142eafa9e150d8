/**
 * What "Prepare for offline" fetches beyond the precached shell (pure: data in, plan out; the fetching is
 * `offline.svelte.ts`):
 * - the backbones the app serves itself (manifest entries whose source is a path under `models/`), whole files
 *   put into the service worker's models cache;
 * - the current setup's diffusion model: every file its manifest lists (graphs, external-data parts, tokenizer,
 *   configs), downloaded by the model manager from the source the Models tab would use, into the same cache the
 *   Models tab and the diffusion worker read (so it loads offline exactly as a downloaded model does).
 * Sizes come from the manifests, so one progress bar can count bytes for all of it before the first byte.
 */
import backbonesJson from '../../../models/manifests/backbones.json';
import { joinUrl } from '../../runtime/models/manager.ts';
import { hubBase, serverBase, totalBytes, type ModelManifest } from '../../runtime/models/manifest.ts';

export interface BackboneEntry {
  id: string;
  source: { kind: string; path?: string; url?: string };
  sizeBytes?: number;
}

/** What the current setup needs: its diffusion model (id and the source the Models tab has for it). */
export interface OfflineNeeds {
  diffusion?: {
    id: string;
    /** 'server' (default), 'hub', 'files' (picked from disk) or a full http(s) base URL (a share link's). */
    source?: string;
  } | null;
}

export interface PlannedFile {
  url: string;
  /** From the manifest when it says; otherwise learnt from the response. */
  bytes: number | null;
  label: string;
}

export interface PlannedModel {
  manifest: ModelManifest;
  /** The base URL the model manager downloads every manifest file from. */
  base: string;
  /** Every file the manager will fetch (manifest order): graphs, external-data parts, tokenizer, configs. */
  urls: string[];
  bytes: number;
  label: string;
}

export interface OfflinePlan {
  files: PlannedFile[];
  models: PlannedModel[];
  /** Bytes known before fetching (files without a declared size add theirs as they arrive). */
  bytes: number;
  /** What the setup names but cannot be fetched ahead, and why (shown to the user). */
  notes: string[];
}

export interface PlanOptions {
  manifests: ModelManifest[];
  /** The app's origin (`location.origin`): the server source's base. */
  origin: string;
  /** The Models tab's custom hub base (a mirror); empty = huggingface.co. */
  hubBase?: string;
  backbones?: BackboneEntry[];
}

/** The served backbone files, as before: small, and any setup may switch to one. */
export function offlineFiles(backbones: BackboneEntry[] = backbonesJson as BackboneEntry[]): PlannedFile[] {
  return backbones
    .filter((b) => b.source.kind === 'local' && b.source.path?.startsWith('models/'))
    .map((b) => ({ url: `/${b.source.path}`, bytes: b.sizeBytes ?? null, label: b.id }));
}

function modelBase(m: ModelManifest, source: string, opts: PlanOptions): string | { note: string } {
  if (source === 'server') return serverBase(m, opts.origin);
  if (source === 'hub')
    return (
      hubBase(m, opts.hubBase || undefined) ?? {
        note: `${m.id}: its manifest names no hub repository — choose the server source in the Models tab`,
      }
    );
  if (source === 'files')
    return {
      note: `${m.id} is read from files picked on this computer: nothing to download, but pick them again after a reload`,
    };
  if (/^https?:\/\//.test(source)) return source.endsWith('/') ? source : `${source}/`;
  return { note: `${m.id}: unknown source "${source}" — choose server or hub in the Models tab` };
}

/** The whole plan for the current setup. */
export function planOffline(needs: OfflineNeeds, opts: PlanOptions): OfflinePlan {
  const files = offlineFiles(opts.backbones);
  const models: PlannedModel[] = [];
  const notes: string[] = [];
  const d = needs.diffusion;
  if (d?.id) {
    const m = opts.manifests.find((x) => x.id === d.id);
    if (!m)
      notes.push(`${d.id}: this app has no manifest for the setup's diffusion model — update DefectLab`);
    else {
      const base = modelBase(m, d.source ?? 'server', opts);
      if (typeof base === 'string')
        models.push({
          manifest: m,
          base,
          urls: m.files.map((f) => joinUrl(base, f.path)),
          bytes: totalBytes(m),
          label: `${m.id} (${m.files.length} files)`,
        });
      else notes.push(base.note);
    }
  }
  const bytes = files.reduce((a, f) => a + (f.bytes ?? 0), 0) + models.reduce((a, m) => a + m.bytes, 0);
  return { files, models, bytes, notes };
}
