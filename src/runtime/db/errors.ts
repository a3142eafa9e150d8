import { DefectLabError } from '../../core/errors.ts';

/** The browser refused a write because the origin's storage quota is full. Nothing of that write was kept. */
export class StorageQuotaError extends DefectLabError {
  constructor(what: string, options?: { cause?: unknown }) {
    super(
      'StorageQuotaError',
      `storage quota exceeded while ${what}; this write was rolled back, everything stored before it is intact`,
      'free space (delete datasets or generated samples, clear the feature cache) or allow persistent storage, then retry',
      options,
    );
  }
}

/** Any other failed IndexedDB write or read; the transaction was rolled back. */
export class StorageError extends DefectLabError {
  constructor(what: string, detail: string, options?: { cause?: unknown }) {
    super(
      'StorageError',
      `IndexedDB failed while ${what} (${detail}); the transaction was rolled back`,
      'retry; if it persists, reload the page (another tab may hold an older version of the database open)',
      options,
    );
  }
}

/**
 * This tab's connection was closed because another tab opened the database at a newer version (an update of the
 * app) or deleted it; this tab's code may not know the new schema, so it stops writing instead of guessing.
 */
export class StoreVersionChangedError extends DefectLabError {
  constructor(detail = 'another tab opened the database at a newer version or reset it') {
    super(
      'StoreVersionChangedError',
      `this tab's connection to the database was closed: ${detail}; nothing stored was lost`,
      'reload this tab',
    );
  }
}

/** A record the caller named does not exist. */
export class RecordNotFoundError extends DefectLabError {
  constructor(kind: string, id: string) {
    super(
      'RecordNotFoundError',
      `no ${kind} with id ${JSON.stringify(id)}`,
      `list the ${kind}s again; it may have been deleted in another tab`,
    );
  }
}

/** Maps whatever an IndexedDB write threw into a named error; QuotaExceededError gets its own class. */
export function storageError(e: unknown, what: string): DefectLabError {
  if (e instanceof DefectLabError) return e;
  const name = errorName(e);
  if (name === 'QuotaExceededError') return new StorageQuotaError(what, { cause: e });
  const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new StorageError(what, detail, { cause: e });
}

function errorName(e: unknown): string | undefined {
  if (!e || typeof e !== 'object') return undefined;
  const err = e as { name?: unknown; error?: unknown; target?: { error?: unknown } };
  if (typeof err.name === 'string' && err.name !== 'AbortError' && err.name !== 'Error') return err.name;
  // A failed request aborts its transaction; the real cause sits on `.error` (of the event target or itself).
  const inner = err.error ?? err.target?.error;
  if (inner && typeof inner === 'object' && typeof (inner as { name?: unknown }).name === 'string')
    return (inner as { name: string }).name;
  return typeof err.name === 'string' ? err.name : undefined;
}
