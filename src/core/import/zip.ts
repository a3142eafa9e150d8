/**
 * Guarded zip extraction (fflate). Zip archives come from users and the web, so before and while inflating:
 * - the central directory's declared sizes are checked first: an entry that expands more than `maxRatio`× its
 *   compressed size, or an archive whose entries add up to more than `maxTotalBytes` (or `maxRatio`× the archive),
 *   is a zip bomb and is not inflated at all;
 * - inflation is streamed in small input chunks and the output is counted, so an entry whose header lies about
 *   its size is stopped as soon as it passes the declared size, and the archive as soon as the total passes
 *   `maxTotalBytes`;
 * - names with `..` segments, absolute paths or drive letters are refused (path traversal) and never inflated.
 * Bad entries become `Rejected` items; the good ones are returned.
 */
import { Unzip, UnzipInflate, unzipSync, type UnzipFile, type UnzipFileInfo } from 'fflate';
import { ImportError, rejected, type Rejected } from './errors.ts';
import type { ImportEntry } from './plan.ts';
import { isJunkPath, normalizePath, traversalReason } from './paths.ts';

export interface ZipLimits {
  /** Largest accepted expansion ratio (uncompressed / compressed), per entry and for the whole archive. */
  maxRatio: number;
  /** Largest accepted total uncompressed size in bytes. */
  maxTotalBytes: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = { maxRatio: 100, maxTotalBytes: 2 * 1024 ** 3 };

/** Input chunk size while inflating: deflate expands at most ~1032×, so one push yields at most ~16 MB. */
const CHUNK = 16 * 1024;

export interface UnzipResult {
  entries: ImportEntry[];
  rejected: Rejected[];
}

const FIX_BOMB =
  'unpack the archive with a trusted tool and import the folder, or split it into smaller zips';

/**
 * Extracts the files of a zip archive (directories and OS junk such as `__MACOSX/` skipped).
 * `archiveName` is used in messages (`data.zip: …`, `data.zip/../evil.png: …`).
 * Throws `ImportError` only when the archive as a whole cannot be read; bombs are refused entry by entry.
 */
export function unzipArchive(
  bytes: Uint8Array,
  archiveName: string,
  limits: ZipLimits = DEFAULT_ZIP_LIMITS,
): UnzipResult {
  const out: UnzipResult = { entries: [], rejected: [] };
  const reject = (e: ImportError) => out.rejected.push(rejected(e));
  const label = (name: string) => `${archiveName}/${name}`;

  // 1. The central directory, without inflating anything. fflate walks it without checking record signatures,
  //    so a damaged end record or directory reads as no entries or as nameless garbage ones: an archive that
  //    imported nothing and said nothing. Its structure is checked here first.
  const damaged = centralDirectoryProblem(bytes);
  if (damaged)
    throw new ImportError(
      archiveName,
      'zip-corrupt',
      `damaged zip archive (${damaged})`,
      're-download or re-create the archive',
    );
  const infos: UnzipFileInfo[] = [];
  try {
    unzipSync(bytes, {
      filter: (f) => {
        infos.push(f);
        return false;
      },
    });
  } catch (e) {
    throw new ImportError(
      archiveName,
      'zip-corrupt',
      `not a readable zip archive (${e instanceof Error ? e.message : String(e)})`,
      're-download or re-create the archive',
      { cause: e },
    );
  }
  const accepted = new Map<string, UnzipFileInfo>();
  let declaredTotal = 0;
  for (const f of infos) {
    if (f.name.endsWith('/')) continue;
    const traversal = traversalReason(f.name);
    if (traversal) {
      reject(
        new ImportError(
          label(f.name),
          'path-traversal',
          `unsafe path in archive (${traversal})`,
          'the archive tries to write outside its folder; do not use it, or re-create it with relative paths',
        ),
      );
      continue;
    }
    const path = normalizePath(f.name);
    if (isJunkPath(path)) continue;
    const ratio = f.size > 0 ? f.originalSize / f.size : f.originalSize > 0 ? Infinity : 0;
    if (ratio > limits.maxRatio) {
      reject(
        new ImportError(
          label(f.name),
          'zip-bomb',
          `zip bomb: ${fmtBytes(f.size)} expands to ${fmtBytes(f.originalSize)} (ratio ${ratio.toFixed(0)} > ${limits.maxRatio})`,
          FIX_BOMB,
        ),
      );
      continue;
    }
    if (f.compression !== 0 && f.compression !== 8) {
      reject(
        new ImportError(
          label(f.name),
          'unsupported',
          `compression method ${f.compression} is not supported (stored or deflate only)`,
          're-create the archive with standard (deflate) compression',
        ),
      );
      continue;
    }
    // Every entry within the ratio keeps the archive within it too, so the archive-wide check is the total.
    if (declaredTotal + f.originalSize > limits.maxTotalBytes) {
      reject(
        new ImportError(
          label(f.name),
          'zip-bomb',
          `zip bomb: the archive expands past the ${fmtBytes(limits.maxTotalBytes)} limit (declared ${fmtBytes(declaredTotal + f.originalSize)} by this entry); not inflated`,
          FIX_BOMB,
        ),
      );
      continue;
    }
    declaredTotal += f.originalSize;
    accepted.set(f.name, f);
  }

  if (infos.every((f) => f.name.endsWith('/')) && out.rejected.length === 0)
    throw new ImportError(
      archiveName,
      'empty',
      infos.length ? 'the archive holds only folders, no files' : 'the archive is empty (no files in it)',
      'check that you picked the right archive, or re-create it with the images inside',
    );

  // 2. Inflate the accepted entries in a stream, counting what comes out.
  let total = 0;
  let stopAll: ImportError | null = null;
  const done = new Set<string>();
  const uz = new Unzip((file: UnzipFile) => {
    const info = accepted.get(file.name);
    if (!info || done.has(file.name) || stopAll) return;
    done.add(file.name);
    const parts: Uint8Array[] = [];
    let size = 0;
    let failed = false;
    file.ondata = (err, chunk, final) => {
      if (failed || stopAll) return;
      if (err) {
        failed = true;
        reject(
          new ImportError(
            label(file.name),
            'zip-corrupt',
            `corrupt entry (${err.message})`,
            're-create the archive',
          ),
        );
        return;
      }
      size += chunk.length;
      total += chunk.length;
      if (size > info.originalSize) {
        failed = true;
        file.terminate();
        reject(
          new ImportError(
            label(file.name),
            'zip-bomb',
            `zip bomb: entry expands past its declared ${fmtBytes(info.originalSize)} (stopped at ${fmtBytes(size)})`,
            FIX_BOMB,
          ),
        );
        return;
      }
      if (total > limits.maxTotalBytes) {
        failed = true;
        file.terminate();
        stopAll = new ImportError(
          label(file.name),
          'zip-bomb',
          `zip bomb: the archive expanded past the ${fmtBytes(limits.maxTotalBytes)} limit while inflating this entry; it and the entries after it were not imported`,
          FIX_BOMB,
        );
        reject(stopAll);
        return;
      }
      parts.push(chunk);
      if (final) out.entries.push({ path: normalizePath(file.name), bytes: concat(parts, size) });
    };
    try {
      file.start();
    } catch (e) {
      failed = true;
      reject(
        new ImportError(
          label(file.name),
          'unsupported',
          `cannot inflate entry (${e instanceof Error ? e.message : String(e)})`,
          're-create the archive with standard (deflate) compression',
        ),
      );
    }
  });
  uz.register(UnzipInflate);
  try {
    for (let at = 0; at < bytes.length && !stopAll; at += CHUNK) {
      const end = Math.min(bytes.length, at + CHUNK);
      uz.push(bytes.subarray(at, end), end === bytes.length);
    }
  } catch (e) {
    throw new ImportError(
      archiveName,
      'zip-corrupt',
      `corrupt zip archive (${e instanceof Error ? e.message : String(e)})`,
      're-download or re-create the archive',
      { cause: e },
    );
  }
  // Entries listed in the central directory that the stream never produced completely.
  const got = new Set(out.entries.map((e) => e.path));
  const failedNames = new Set(out.rejected.map((r) => r.file));
  for (const name of accepted.keys()) {
    if (got.has(normalizePath(name)) || failedNames.has(label(name))) continue;
    reject(
      stopAll
        ? new ImportError(
            label(name),
            'zip-bomb',
            'not inflated: the archive had already expanded past the size limit',
            FIX_BOMB,
          )
        : new ImportError(
            label(name),
            'zip-corrupt',
            'entry is listed but its data is missing or cut short',
            're-create the archive',
          ),
    );
  }
  return out;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;

/**
 * What is wrong with the end record and central directory (each record's signature and lengths), or null when
 * they hold together. A missing end record is left to fflate, which names it; Zip64 archives are left to it too.
 */
export function centralDirectoryProblem(b: Uint8Array): string | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let e = b.length - 22;
  const stop = Math.max(0, b.length - 65558);
  while (e >= stop && dv.getUint32(e, true) !== SIG_END) e--;
  if (e < stop) return null;
  const count = dv.getUint16(e + 8, true);
  const offset = dv.getUint32(e + 16, true);
  if (count === 0xffff || offset === 0xffffffff) return null;
  if (count === 0)
    return b.length >= 4 && dv.getUint32(0, true) === SIG_LOCAL
      ? 'its end record lists no entries, but it holds file data'
      : null;
  let p = offset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > e || dv.getUint32(p, true) !== SIG_CENTRAL)
      return i === 0
        ? `its central directory is not at offset ${offset}, where the end record says`
        : `entry ${i + 1} of ${count} of its central directory is missing or damaged`;
    const nameLen = dv.getUint16(p + 28, true);
    if (nameLen === 0) return `entry ${i + 1} of its central directory has no name`;
    p += 46 + nameLen + dv.getUint16(p + 30, true) + dv.getUint16(p + 32, true);
    if (p > e) return `entry ${i + 1} of its central directory runs past the end record`;
  }
  return null;
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
