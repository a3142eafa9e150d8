import { DefectLabError } from '../errors.ts';

/** Why an import item was refused; stable for programs and tests (the message is for people). */
export type ImportRejectKind =
  | 'empty'
  | 'not-image'
  | 'unsupported'
  | 'truncated'
  | 'corrupt'
  | 'too-large'
  | 'zip-bomb'
  | 'zip-corrupt'
  | 'path-traversal'
  | 'missing-file'
  | 'mask-size'
  | 'mask-invalid'
  | 'manifest-invalid'
  | 'not-in-layout';

/**
 * One file of an import that cannot be taken. The message names the file and the reason:
 * `ImportError: test/crack/003.png: truncated PNG (no IEND chunk) — fix: re-export or re-copy the file`.
 * An import collects these per item and goes on with the rest of the batch.
 */
export class ImportError extends DefectLabError {
  readonly file: string;
  readonly reason: string;
  readonly kind: ImportRejectKind;
  constructor(
    file: string,
    kind: ImportRejectKind,
    reason: string,
    fix: string,
    options?: { cause?: unknown },
  ) {
    super('ImportError', `${file}: ${reason}`, fix, options);
    this.file = file;
    this.reason = reason;
    this.kind = kind;
  }
}

/** A rejected item in an import report (plain data: crosses the worker boundary). */
export interface Rejected {
  file: string;
  kind: ImportRejectKind;
  reason: string;
  /** The full `ImportError: file: reason — fix: …` message. */
  message: string;
}

export function rejected(e: ImportError): Rejected {
  return { file: e.file, kind: e.kind, reason: e.reason, message: e.message };
}
