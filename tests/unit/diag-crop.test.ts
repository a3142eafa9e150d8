/**
 * DIAG's crop-around-mask (diffusers' `padding_mask_crop`): on in the DIAG preset, carried by the runner's
 * diffusion generator into the pipeline request, settable in the grid config (checked by its schema).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffusionGenerator, diffusionSettings } from '../../src/app/generators.ts';
import type { GenerateRequest } from '../../src/core/diffusion/index.ts';
import { DIAG_PRESET } from '../../src/core/diffusion/settings.ts';
import { createRaster } from '../../src/core/image.ts';
import { loadGridConfig } from '../../server/grid-config.ts';

function fakeSource(seen: GenerateRequest[]) {
  return {
    list: async () => [{ id: 'm', name: 'm' }],
    resolve: async () => ({}),
    fix: 'none',
    engine: {
      load: async () => ({}),
      cancel: () => {},
      generate: async (req: GenerateRequest) => {
        seen.push(req);
        return { image: req.image, mask: req.mask };
      },
    },
  };
}

describe('DIAG crop-around-mask', () => {
  it('is on in the DIAG preset and reaches the pipeline request with its padding', async () => {
    expect(DIAG_PRESET).toMatchObject({ onlyMasked: true, padding: 32 });
    const seen: GenerateRequest[] = [];
    const gen = diffusionGenerator(fakeSource(seen));
    const img = createRaster(64, 64, 3);
    const d = diffusionSettings({ model: 'm', masks: 'perlin' });
    expect(d).toMatchObject({ onlyMasked: true, padding: 32 });
    await gen(img, 1, { diffusion: d });
    expect(seen[0].onlyMasked).toEqual({ padding: 32 });
    await gen(img, 2, { diffusion: { ...d, onlyMasked: false } });
    expect(seen[1].onlyMasked).toBeUndefined();
    await gen(img, 3, { diffusion: { ...d, padding: 8 } });
    expect(seen[2].onlyMasked).toEqual({ padding: 8 });
  });

  it('the grid config takes onlyMasked and padding, and names a bad padding', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dl-diag-crop-'));
    const file = join(dir, 'grid.json');
    const base = { generators: ['diffusion'], nAug: [2], seeds: [0], heads: ['bce'] };
    writeFileSync(
      file,
      JSON.stringify({ ...base, diffusion: { model: 'x', onlyMasked: false, padding: 16 } }),
    );
    expect((await loadGridConfig(file)).diffusion).toMatchObject({ onlyMasked: false, padding: 16 });
    writeFileSync(file, JSON.stringify({ ...base, diffusion: { model: 'x', padding: -1 } }));
    await expect(loadGridConfig(file)).rejects.toThrow(/GridConfigError: .*padding/);
  });
});
