/**
 * The plan "Prepare for offline" fetches (src/ui/workshop/offline-files.ts): the served backbones, and the current
 * setup's diffusion model with every file its manifest lists — checked against the files the app's `/models/`
 * server really has on disk (models/tiny, built by `npm run models:tiny`), so a plan that missed an external-data
 * part or pointed at a wrong folder fails here.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planOffline, offlineFiles } from '../../src/ui/workshop/offline-files.ts';
import { validateManifest, type ModelManifest } from '../../src/runtime/models/manifest.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const DIR = join(ROOT, 'models/manifests');
const manifests: ModelManifest[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(DIR, f), 'utf8')) as { format?: string })
  .filter((j) => j.format === 'defectlab-model/1')
  .map((j, i) => validateManifest(j, `manifest ${i}`));
const ORIGIN = 'http://localhost:4103';
const byId = (id: string) => manifests.find((m) => m.id === id)!;

/** Every file under a folder, as paths relative to it. */
function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p).map((x) => `${n}/${x}`) : [n];
  });
}

describe('planOffline', () => {
  it('without a diffusion model: only the backbones the app serves itself (no ../shared, no hub files)', () => {
    const plan = planOffline({}, { manifests, origin: ORIGIN });
    expect(plan.models).toEqual([]);
    expect(plan.notes).toEqual([]);
    expect(plan.files.map((f) => f.url)).toEqual(['/models/tiny/tiny-resnet/model.onnx']);
    for (const f of plan.files) expect(existsSync(join(ROOT, f.url.slice(1)))).toBe(true);
    expect(offlineFiles()).toEqual(plan.files);
  });

  it.each(manifests.map((m) => m.id))(
    '%s from the server: every file on disk under its folder, nothing else, sizes summed',
    (id) => {
      const m = byId(id);
      const plan = planOffline({ diffusion: { id, source: 'server' } }, { manifests, origin: ORIGIN });
      expect(plan.models).toHaveLength(1);
      const [pm] = plan.models;
      expect(pm.base).toBe(`${ORIGIN}/models/${m.serverPath}`);
      const folder = join(ROOT, 'models', m.serverPath!);
      // The server's folder holds exactly the files the manifest lists (plus the manifest copy itself).
      const onDisk = walk(folder)
        .filter((p) => p !== 'manifest.json')
        .sort();
      const planned = pm.urls.map((u) => decodeURIComponent(u.slice(pm.base.length))).sort();
      expect(planned).toEqual(onDisk);
      let sum = 0;
      for (const p of planned) sum += statSync(join(folder, p)).size;
      expect(pm.bytes).toBe(sum);
      const backboneBytes = plan.files.reduce((a, f) => a + (f.bytes ?? 0), 0);
      expect(plan.bytes).toBe(sum + backboneBytes);
      for (const u of pm.urls) expect(u.startsWith(pm.base)).toBe(true);
    },
  );

  it('the external-data parts of a model are planned with their graphs', () => {
    const plan = planOffline({ diffusion: { id: 'tiny-sd-inpaint-extdata' } }, { manifests, origin: ORIGIN });
    const urls = plan.models[0].urls;
    for (const c of Object.values(byId('tiny-sd-inpaint-extdata').components))
      for (const part of c?.externalData ?? [])
        expect(urls).toContain(`${ORIGIN}/models/tiny/tiny-sd-inpaint-extdata/${part}`);
    expect(urls.filter((u) => u.endsWith('.onnx_data')).length).toBeGreaterThanOrEqual(2);
  });

  it('other sources: a full URL is used as the base; hub without a repo, picked files and unknown ids are notes', () => {
    const url = planOffline(
      { diffusion: { id: 'tiny-sd-inpaint', source: 'https://models.example.org/tiny' } },
      { manifests, origin: ORIGIN },
    );
    expect(url.models[0].base).toBe('https://models.example.org/tiny/');
    expect(url.models[0].urls[0]).toMatch(/^https:\/\/models\.example\.org\/tiny\//);

    const withHub = manifests.find((m) => m.hub);
    const withoutHub = manifests.find((m) => !m.hub)!;
    if (withHub) {
      const hub = planOffline(
        { diffusion: { id: withHub.id, source: 'hub' } },
        { manifests, origin: ORIGIN, hubBase: 'https://mirror.example.org' },
      );
      expect(hub.models[0].base).toMatch(/^https:\/\/mirror\.example\.org\//);
    }
    for (const [needs, note] of [
      [{ id: withoutHub.id, source: 'hub' }, /no hub repository/],
      [{ id: 'tiny-sd-inpaint', source: 'files' }, /picked on this computer/],
      [{ id: 'no-such-model' }, /no manifest/],
      [{ id: 'tiny-sd-inpaint', source: 'ftp-ish' }, /unknown source/],
    ] as const) {
      const plan = planOffline({ diffusion: needs }, { manifests, origin: ORIGIN });
      expect(plan.models).toEqual([]);
      expect(plan.notes).toHaveLength(1);
      expect(plan.notes[0]).toMatch(note);
      expect(plan.files).toHaveLength(1); // the backbones are still planned
    }
  });
});
