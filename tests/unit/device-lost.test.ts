import { describe, expect, it, vi } from 'vitest';
import { DeviceLossWatch, GpuDeviceLostError, lossDetail } from '../../src/runtime/device-lost.ts';

/** A fake GPUDevice whose `lost` promise resolves when the test calls `lose()` (as `destroy()` would). */
function fakeDevice() {
  let lose!: (info: { reason: string; message: string }) => void;
  const lost = new Promise<{ reason: string; message: string }>((r) => (lose = r));
  return {
    lost,
    lose: (reason = 'destroyed', message = 'Device was destroyed.') => lose({ reason, message }),
  };
}
const tick = () => new Promise((r) => setTimeout(r, 5));

describe('DeviceLossWatch', () => {
  it('marks the device lost once its lost promise resolves, and names runtime, reason and fix', async () => {
    const w = new DeviceLossWatch('tfjs', 'run it again: DefectLab now uses WASM');
    const d = fakeDevice();
    w.watch(d);
    expect(w.lost).toBeNull();
    expect(() => w.check()).not.toThrow();
    d.lose();
    await tick();
    expect(w.lost).toEqual({ reason: 'destroyed', message: 'Device was destroyed.' });
    expect(() => w.check()).toThrow(GpuDeviceLostError);
    const e = w.error();
    expect(e.code).toBe('GpuDeviceLostError');
    expect(e.message).toBe(
      'GpuDeviceLostError: the WebGPU device of tfjs was lost (destroyed: Device was destroyed.) — fix: run it again: DefectLab now uses WASM',
    );
  });

  it('rejects a job that is still running when the device is lost (a read-back that never settles)', async () => {
    const w = new DeviceLossWatch('onnxruntime', 'retry');
    const d = fakeDevice();
    w.watch(d);
    const hanging = new Promise<number>(() => undefined);
    const job = w.whileAlive(hanging);
    d.lose('unknown', 'GPU process crashed');
    await expect(job).rejects.toThrow(/device of onnxruntime was lost \(unknown: GPU process crashed\)/);
  });

  it('turns the error a loss causes into GpuDeviceLostError with the original as cause', async () => {
    const w = new DeviceLossWatch('tfjs', 'retry');
    const d = fakeDevice();
    w.watch(d);
    const original = new Error('mapAsync: device lost');
    // The failed call rejects in the same turn as the loss, before `lost` has resolved.
    const failing = Promise.reject(original);
    const job = w.whileAlive(failing);
    d.lose();
    const e = await job.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GpuDeviceLostError);
    expect((e as Error).cause).toBe(original);
  });

  it('waits for a loss that lands after the GPU call it broke (lost resolves tasks later)', async () => {
    const w = new DeviceLossWatch('tfjs', 'retry');
    const d = fakeDevice();
    w.watch(d);
    const original = new Error("Failed to execute 'mapAsync' on 'GPUBuffer': Buffer was unmapped");
    const job = w.whileAlive(Promise.reject(original));
    setTimeout(() => d.lose(), 50);
    const e = await job.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GpuDeviceLostError);
    expect((e as Error).cause).toBe(original);
  });

  it('passes results and unrelated errors through while the device is alive', async () => {
    const w = new DeviceLossWatch('tfjs', 'retry');
    w.watch(fakeDevice());
    await expect(w.whileAlive(Promise.resolve(42))).resolves.toBe(42);
    const other = new RangeError('bad shape');
    await expect(w.whileAlive(Promise.reject(other))).rejects.toBe(other);
  });

  it('fails a job started after the loss at once, and forgets the loss when a fresh device is watched', async () => {
    const w = new DeviceLossWatch('tfjs', 'retry');
    const old = fakeDevice();
    w.watch(old);
    old.lose();
    await tick();
    await expect(w.whileAlive(Promise.resolve(1))).rejects.toBeInstanceOf(GpuDeviceLostError);
    const fresh = fakeDevice();
    w.watch(fresh);
    expect(w.lost).toBeNull();
    await expect(w.whileAlive(Promise.resolve(2))).resolves.toBe(2);
    w.reset();
    expect(w.lost).toBeNull();
  });

  it('ignores the loss of a device it no longer watches', async () => {
    const w = new DeviceLossWatch('tfjs', 'retry');
    const old = fakeDevice();
    w.watch(old);
    w.watch(fakeDevice());
    old.lose();
    await tick();
    expect(w.lost).toBeNull();
  });
});

describe('DeviceLossWatch.quietEchoes', () => {
  function scope() {
    let listener: ((ev: { reason: unknown; preventDefault: () => void }) => void) | null = null;
    return {
      addEventListener: (_: string, l: unknown) => (listener = l as typeof listener),
      fire(reason: unknown) {
        let prevented = false;
        listener!({ reason, preventDefault: () => (prevented = true) });
        return prevented;
      },
    };
  }
  const echo = Object.assign(new Error("Failed to execute 'mapAsync' on 'GPUBuffer': Buffer is invalid"), {
    name: 'OperationError',
  });
  const lossOnly = Object.assign(
    new Error(
      "Failed to execute 'mapAsync' on 'GPUBuffer': Buffer was unmapped before mapping was resolved.",
    ),
    { name: 'AbortError' },
  );

  it('quiets a GPU call rejected after the loss, and nothing else', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const w = new DeviceLossWatch('onnxruntime', 'retry');
    const d = fakeDevice();
    w.watch(d);
    const s = scope();
    w.quietEchoes(s as unknown as EventTarget);
    // Before the loss a GPU error is a real one and surfaces; a read-back aborted mid-map (only a destroyed
    // device does that, and it can land before `lost`) is quieted already.
    expect(s.fire(echo)).toBe(false);
    expect(s.fire(lossOnly)).toBe(true);
    d.lose();
    await tick();
    expect(s.fire(echo)).toBe(true);
    expect(s.fire(lossOnly)).toBe(true);
    expect(s.fire(new TypeError('x is undefined'))).toBe(false);
    expect(s.fire(Object.assign(new Error('network'), { name: 'AbortError' }))).toBe(false);
  });

  it('reads what the device said back from the message alone (an error that crossed a worker boundary)', () => {
    const e = new GpuDeviceLostError(
      'onnxruntime',
      { reason: 'destroyed', message: 'Device (x) was destroyed.' },
      'run it again (on WASM)',
    );
    expect(lossDetail(e.message)).toBe('destroyed: Device (x) was destroyed.');
    expect(lossDetail(new GpuDeviceLostError('tfjs', { reason: 'unknown', message: '' }, '').message)).toBe(
      'unknown',
    );
    expect(lossDetail('SessionRunError: running unet failed')).toBe('unknown');
  });
});
