/** Path helpers for archive / folder entries: always '/'-separated, relative, no '.' segments. */

/** Backslashes to '/', leading './' and '/' runs collapsed. Call `traversalReason` first for untrusted names. */
export function normalizePath(p: string): string {
  return p
    .replace(/\\/g, '/')
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
}

/** Why a name would escape the folder it is unpacked into, or null when it is safe. */
export function traversalReason(name: string): string | null {
  const p = name.replace(/\\/g, '/');
  if (p.startsWith('/')) return `absolute path ${JSON.stringify(name)}`;
  if (/^[A-Za-z]:/.test(p)) return `drive-letter path ${JSON.stringify(name)}`;
  if (p.split('/').some((s) => s === '..')) return `".." segment in ${JSON.stringify(name)}`;
  return null;
}

/** OS litter that is never data (macOS resource forks, Finder / Explorer files, hidden files). */
export function isJunkPath(p: string): boolean {
  const parts = p.split('/');
  const base = parts[parts.length - 1];
  return (
    parts.includes('__MACOSX') ||
    base.startsWith('.') ||
    base === 'Thumbs.db' ||
    base === 'desktop.ini' ||
    base === ''
  );
}

export function basename(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

export function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/** File name without its last extension. */
export function stem(p: string): string {
  const b = basename(p);
  const i = b.lastIndexOf('.');
  return i <= 0 ? b : b.slice(0, i);
}

/** Lower-case extension without the dot ('' when none). */
export function extension(p: string): string {
  const b = basename(p);
  const i = b.lastIndexOf('.');
  return i <= 0 ? '' : b.slice(i + 1).toLowerCase();
}

export const IMAGE_EXTENSIONS = new Set(['png', 'jpg', 'jpeg', 'webp', 'bmp']);

export function looksLikeImage(p: string): boolean {
  return IMAGE_EXTENSIONS.has(extension(p));
}

/** Joins a folder and a relative path (either may be ''). */
export function joinPath(dir: string, rel: string): string {
  return normalizePath(dir ? `${dir}/${rel}` : rel);
}
