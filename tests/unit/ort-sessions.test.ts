/**
 * The onnxruntime session count (`src/runtime/ort-sessions.ts`; onnxruntime reports none): a fake runtime whose
 * sessions say when they are really released checks the counter's rules, then both doors — the browser's
 * onnxruntime-web on its WASM backend, which runs in Node too, and onnxruntime-node — and the engines built on
 * them (a backbone loaded twice, a diffusion model loaded and unloaded, with the tiny models of `models/tiny`)
 * must come back to the count they started from.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SessionCounter } from '../../src/runtime/ort-sessions.ts';
import { createSession, liveOrtSessions, nodeBackend } from '../../src/runtime/ort-node.ts';
import * as web from '../../src/runtime/ort-web.ts';
import { env } from '../../src/runtime/env.ts';
import type { ModelManifest } from '../../src/runtime/models/manifest.ts';
import { TINY_MODELS_DIR } from '../../server/diffusion.ts';
import { createDiffusionEngine } from '../../workers/diffusion.engine.ts';
import { FeaturesEngine } from '../../workers/features.engine.ts';

/** A fake onnxruntime: `held` is what it really holds; a session's release can be made to fail once. */
function fakeOrt() {
  const held = new Set<object>();
  return {
    held,
    create: async (model: Uint8Array) => {
      if (model.length === 0) throw new Error('protobuf parsing failed');
      const s = {
        failNextRelease: false,
        async release() {
          await Promise.resolve();
          if (s.failNextRelease) {
            s.failNextRelease = false;
            throw new Error('session is running');
          }
          if (!held.delete(s)) throw new Error('released twice');
        },
      };
      held.add(s);
      return s;
    },
  };
}

describe('SessionCounter', () => {
  it('counts each session until its release resolves, and a second release does not count twice', async () => {
    const ort = fakeOrt();
    const counter = new SessionCounter();
    const seen: number[] = [];
    counter.onChange((n) => seen.push(n));
    const a = await counter.create(() => ort.create(Uint8Array.of(1)));
    const b = await counter.create(() => ort.create(Uint8Array.of(2)));
    expect(counter.live).toBe(2);
    // Released while the first release is still pending, then once more after it resolved.
    await Promise.all([a.release(), a.release()]);
    await a.release();
    expect(counter.live).toBe(1);
    expect(ort.held.size).toBe(1);
    await b.release();
    expect([counter.live, ort.held.size]).toEqual([0, 0]);
    expect(seen).toEqual([1, 2, 1, 0]);
  });

  it('a create that throws counts nothing; a release that throws keeps the session counted', async () => {
    const ort = fakeOrt();
    const counter = new SessionCounter();
    await expect(counter.create(() => ort.create(new Uint8Array(0)))).rejects.toThrow(/protobuf/);
    expect(counter.live).toBe(0);
    const s = await counter.create(() => ort.create(Uint8Array.of(1)));
    s.failNextRelease = true;
    await expect(s.release()).rejects.toThrow('session is running');
    expect([counter.live, ort.held.size]).toEqual([1, 1]);
    await s.release();
    expect([counter.live, ort.held.size]).toEqual([0, 0]);
  });
});

const TINY_RESNET = join(TINY_MODELS_DIR, 'tiny-resnet/model.onnx');

describe('the door and its engines come back to their session count', () => {
  it('ort-node: one per createSession, none after release', async () => {
    const base = liveOrtSessions();
    expect(nodeBackend.liveSessions?.()).toBe(base);
    const bytes = new Uint8Array(readFileSync(TINY_RESNET));
    const a = await createSession(bytes, { name: 'a' });
    const b = await createSession(bytes, { name: 'b' });
    expect(liveOrtSessions()).toBe(base + 2);
    await a.release();
    await a.release();
    expect(liveOrtSessions()).toBe(base + 1);
    await b.release();
    expect(liveOrtSessions()).toBe(base);
    // A graph onnxruntime refuses leaves nothing behind.
    await expect(createSession(bytes.subarray(0, 200), { name: 'cut' })).rejects.toThrow(
      /SessionCreateError/,
    );
    expect(liveOrtSessions()).toBe(base);
  });

  it('ort-web (WASM, as in the browser): one per session, a WebGPU request that falls back counted once', async () => {
    // Node has no Vite-served binaries: onnxruntime-web reads its own from the package folder.
    env.wasm.ortPaths = join(import.meta.dirname, '../../node_modules/onnxruntime-web/dist/');
    const base = web.liveOrtSessions();
    expect(web.webBackend.liveSessions?.()).toBe(base);
    const bytes = new Uint8Array(readFileSync(TINY_RESNET));
    const a = await web.createSession(bytes, { backend: 'wasm', name: 'a' });
    // No WebGPU in Node: the request lands on WASM, with the reason, as one session.
    const b = await web.createSession(bytes, { backend: 'webgpu', name: 'b' });
    expect([a.backend, b.backend]).toEqual(['wasm', 'wasm']);
    expect(b.fallbackReason).toMatch(/WebGPU is not available/);
    expect(web.liveOrtSessions()).toBe(base + 2);
    await Promise.all([a.release(), b.release(), b.release()]);
    expect(web.liveOrtSessions()).toBe(base);
    await expect(web.createSession(bytes.subarray(0, 200), { backend: 'wasm', name: 'cut' })).rejects.toThrow(
      /SessionCreateError/,
    );
    expect(web.liveOrtSessions()).toBe(base);
  });

  it('the features engine: loading the backbone again releases the one it replaces', async () => {
    const engine = new FeaturesEngine({ ort: nodeBackend });
    const base = (await engine.ortSessions())!;
    const bytes = new Uint8Array(readFileSync(TINY_RESNET));
    await engine.loadBackbone({ bytes, name: 'tiny', device: 'cpu' });
    expect(await engine.ortSessions()).toBe(base + 1);
    await engine.loadBackbone({ bytes, name: 'tiny', device: 'cpu' });
    expect(await engine.ortSessions()).toBe(base + 1);
    await engine.releaseBackbone();
    expect(await engine.ortSessions()).toBe(base);
  });

  it('the diffusion engine: one session per component while loaded, none after unload', async () => {
    const engine = createDiffusionEngine({
      ort: nodeBackend,
      readLocal: async (p) => new Uint8Array(await readFile(p)),
    });
    const base = (await engine.ortSessions())!;
    const dir = join(TINY_MODELS_DIR, 'tiny-sd-inpaint');
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
    const info = await engine.load({ manifest, source: { kind: 'dir', dir } });
    const components = Object.keys(info.components).length;
    expect(components).toBeGreaterThanOrEqual(4);
    expect(await engine.ortSessions()).toBe(base + components);
    await engine.unload();
    expect(await engine.ortSessions()).toBe(base);
  });
});
