/**
 * Named errors whose message says what went wrong and what to do about it, web-llm style:
 * `ModelNotFoundError: tiny-sdxl has no unet.onnx — fix: run npm run models:tiny`.
 * `code` is stable for programs; `fix` is for people.
 */
export class DefectLabError extends Error {
  readonly fix: string;
  readonly code: string;
  constructor(code: string, problem: string, fix: string, options?: { cause?: unknown }) {
    super(`${code}: ${problem}${fix ? ` — fix: ${fix}` : ''}`, options);
    this.name = code;
    this.code = code;
    this.fix = fix;
  }
}

/** Thrown by long jobs when their cancel signal fires; carries what was finished before the stop. */
export class CancelledError extends DefectLabError {
  constructor(what = 'the job', done?: string) {
    super('CancelledError', `${what} was cancelled${done ? `; ${done}` : ''}`, '');
  }
}

/** A bad argument to a core function: names the argument, its allowed range and the value it got. */
export class InvalidArgumentError extends DefectLabError {
  constructor(name: string, expected: string, got: unknown) {
    super(
      'InvalidArgumentError',
      `${name} must be ${expected}, got ${formatValue(got)}`,
      `pass ${name} as ${expected}`,
    );
  }
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v == null) return String(v);
  try {
    return JSON.stringify(v).slice(0, 80);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** Serializable form of an error for crossing the worker boundary (comlink loses subclass identity). */
export interface ErrorInfo {
  code: string;
  message: string;
  fix: string;
}

export function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof DefectLabError) return { code: e.code, message: e.message, fix: e.fix };
  if (e instanceof Error) return { code: e.name || 'Error', message: e.message, fix: '' };
  return { code: 'Error', message: String(e), fix: '' };
}

/** Expected failures are values, not exceptions, where a batch must go on (one bad file in an import). */
export type Result<T> = { ok: true; value: T } | { ok: false; reason: string; message: string };
