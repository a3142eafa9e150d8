/**
 * The files "Prepare for offline" fetches beyond the precached shell: the backbones the app serves itself
 * (manifest entries whose source is a path under `models/`). Downloaded and picked models live in the Models tab's
 * own cache and already work offline.
 */
import backbones from '../../../models/manifests/backbones.json';

interface Entry {
  source: { kind: string; path?: string };
}

export function offlineFiles(): string[] {
  return (backbones as Entry[])
    .filter((b) => b.source.kind === 'local' && b.source.path?.startsWith('models/'))
    .map((b) => `/${b.source.path}`);
}
