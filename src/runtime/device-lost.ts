/**
 * WebGPU device loss, for the two doors that own a GPUDevice (tfjs in `tf.ts`, onnxruntime in `ort-web.ts`).
 *
 * A device is lost when the GPU process crashes or resets, the driver times a shader out, or something calls
 * `device.destroy()`. Its `lost` promise then resolves and every later submission or read-back fails (or, worse,
 * never settles). So each door watches its device: once `lost` resolves the backend is marked unusable, the job
 * running on it fails with `GpuDeviceLostError` (message + fix) instead of an opaque "mapAsync" error or a hang,
 * and the door's next job starts on a fresh device (tfjs) or on WASM (onnxruntime, whose WebGPU provider keeps
 * one device for the life of its WASM module). Pure logic over a structural device, so it is unit-tested with a
 * fake one (`tests/unit/device-lost.test.ts`).
 */
import { DefectLabError } from '../core/errors.ts';

/** How long an error of a GPU call waits for the device's `lost` promise before it is taken as it is. */
export const LOSS_GRACE_MS = 1500;

/** The part of `GPUDevice` this watch reads: its `lost` promise (structural, so a fake one tests it). */
export interface LosableDevice {
  readonly lost: Promise<{ reason?: string; message?: string }>;
}

/** What the device said when it was lost. */
export interface DeviceLoss {
  /** 'destroyed' (device.destroy() was called) or 'unknown' (GPU process crash, reset, timeout). */
  reason: string;
  message: string;
}

/** A job ran on a WebGPU device that was lost before it finished. */
export class GpuDeviceLostError extends DefectLabError {
  constructor(
    readonly runtime: string,
    readonly loss: DeviceLoss,
    fix: string,
    options?: { cause?: unknown },
  ) {
    super(
      'GpuDeviceLostError',
      `the WebGPU device of ${runtime} was lost (${loss.reason}${loss.message ? `: ${loss.message}` : ''})`,
      fix,
      options,
    );
  }
}

/**
 * What a `GpuDeviceLostError` message says the device reported ("destroyed: …"), read back from the message
 * alone: comlink carries an error across a worker boundary as name and message, without `loss`.
 */
export function lossDetail(message: string): string {
  return /\bwas lost \((.*?)\)(?: — fix: |$)/.exec(message)?.[1] ?? 'unknown';
}

/**
 * Watches one door's current device. `watch(device)` is called with each device the door starts; a loss of an
 * older device (already replaced) is ignored. `lost` stays set until `reset()` (the door started a fresh device).
 */
export class DeviceLossWatch {
  private current: LosableDevice | null = null;
  private loss: DeviceLoss | null = null;
  private waiters: ((l: DeviceLoss) => void)[] = [];

  /**
   * @param runtime named in the error ("tfjs (training heads)")
   * @param fix what the user does next, e.g. "run it again: DefectLab now uses WASM"
   */
  constructor(
    private readonly runtime: string,
    private readonly fix: string,
  ) {}

  /** Starts watching `device` (the door's new current device); clears an earlier loss. */
  watch(device: LosableDevice): void {
    if (this.current === device) return;
    this.current = device;
    this.loss = null;
    device.lost.then(
      (info) => {
        if (this.current !== device) return;
        const loss = { reason: info?.reason ?? 'unknown', message: info?.message ?? '' };
        this.loss = loss;
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters) w(loss);
      },
      () => undefined,
    );
  }

  /**
   * Once a device is lost, the runtime's own pending GPU calls (a `mapAsync` read-back it did not await, a
   * queue submission) reject with nobody listening; the loss was already reported to the job as
   * `GpuDeviceLostError`, so those echoes are not left as "uncaught" errors in the console. Only errors of a
   * GPU call after a loss are quieted (and logged as a warning); anything else still surfaces.
   */
  quietEchoes(scope: Pick<EventTarget, 'addEventListener'> | undefined = globalThis): void {
    if (this.quieting || !scope?.addEventListener) return;
    this.quieting = true;
    scope.addEventListener('unhandledrejection', (ev) => {
      const reason = (ev as PromiseRejectionEvent).reason as { name?: string; message?: string } | undefined;
      // A read-back aborted because its buffer went away mid-map only happens to a destroyed device, and its
      // rejection can land before the device's `lost` promise does: quieted whenever a device is watched.
      if ((this.loss && isGpuEcho(reason)) || (this.current && isLossOnlyEcho(reason))) {
        ev.preventDefault();
        console.warn(`${this.runtime}: after the WebGPU device loss: ${reason?.message ?? ''}`);
      }
    });
  }
  private quieting = false;

  /** Forgets the lost device (the door dropped it and will start another). */
  reset(): void {
    this.current = null;
    this.loss = null;
  }

  /** The loss of the current device, or null while it is alive (or none is watched). */
  get lost(): DeviceLoss | null {
    return this.loss;
  }

  /** The named error for the current loss (`cause`: what the failed call threw, if anything). */
  error(cause?: unknown): GpuDeviceLostError {
    return new GpuDeviceLostError(
      this.runtime,
      this.loss ?? { reason: 'unknown', message: '' },
      this.fix,
      cause === undefined ? undefined : { cause },
    );
  }

  /** Throws `GpuDeviceLostError` when the current device is lost. */
  check(): void {
    if (this.loss) throw this.error();
  }

  /**
   * `work`, unless the device is lost first or while it runs: then it rejects with `GpuDeviceLostError` (a
   * read-back on a lost device may never settle, so the loss itself ends the wait). An error `work` throws after
   * a loss becomes the named error too, with the original as `cause`.
   */
  whileAlive<T>(work: Promise<T>): Promise<T> {
    if (this.loss) {
      work.catch(() => undefined);
      return Promise.reject(this.error());
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      // What `work` threw while waiting the macrotask below: the cause when the loss lands in between.
      let failure: { e: unknown } | null = null;
      const onLoss = () => {
        if (settled) return;
        settled = true;
        reject(this.error(failure?.e));
      };
      this.waiters.push(onLoss);
      work.then(
        (v) => {
          if (settled) return;
          settled = true;
          this.waiters = this.waiters.filter((w) => w !== onLoss);
          resolve(v);
        },
        (e: unknown) => {
          if (settled) return;
          failure = { e };
          // The failure a loss causes can arrive before `lost` resolves (Chromium resolves it tasks later than
          // it aborts a pending read-back): a GPU call's error waits up to LOSS_GRACE_MS for the loss, any other
          // error one macrotask.
          setTimeout(
            () => {
              if (settled) return;
              settled = true;
              this.waiters = this.waiters.filter((w) => w !== onLoss);
              reject(this.loss ? this.error(e) : e);
            },
            mentionsGpuCall(e) ? LOSS_GRACE_MS : 0,
          );
        },
      );
    });
  }
}

/** An error a GPU call of a lost device rejects with (WebGPU's AbortError / OperationError on buffers, queues). */
export function isGpuEcho(reason: { name?: string; message?: string } | undefined): boolean {
  if (!reason) return false;
  const gpuCall = /mapAsync|GPUBuffer|GPUQueue|GPUDevice|device (is |was )?(lost|destroyed)/i.test(
    reason.message ?? '',
  );
  return gpuCall && (reason.name === 'AbortError' || reason.name === 'OperationError');
}

/** A GPU call error only a destroyed buffer or device produces (the runtimes never unmap mid-map themselves). */
export function isLossOnlyEcho(reason: { name?: string; message?: string } | undefined): boolean {
  return (
    reason?.name === 'AbortError' &&
    /unmapped before mapping was resolved|device (is |was )?(lost|destroyed)/i.test(reason.message ?? '')
  );
}

/** Whether an error (perhaps wrapped by the runtime or a trainer) comes from a WebGPU call. */
function mentionsGpuCall(e: unknown): boolean {
  const m = e instanceof Error ? e.message : String(e);
  return /mapAsync|GPUBuffer|GPUQueue|GPUDevice|WebGPU device/i.test(m);
}
