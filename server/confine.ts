/**
 * Data confinement: a request names a dataset or a model by a path *relative to* a root the operator chose
 * (`--datasets`, `--models`). Absolute paths and `..` are refused before touching the disk (422); a path whose
 * real location (symlinks followed) is outside the root is refused (403). Messages name the rule and the
 * relative name the client sent, never the server's folders.
 */
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, resolve, sep } from 'node:path';
import { DefectLabError } from '../src/core/errors.ts';

export class ConfinementError extends DefectLabError {
  readonly status: 403 | 404 | 422;
  constructor(status: 403 | 404 | 422, problem: string, fix: string) {
    super('ConfinementError', problem, fix);
    this.status = status;
  }
}

/**
 * `rel` under `root` as an absolute real path. `field` names the request field in errors; `rootFlag` the flag
 * that sets the root ('--datasets' / '--models').
 */
export function confinedPath(root: string, rel: string, field: string, rootFlag: string): string {
  const fix = `name a folder relative to the server's ${rootFlag} root, e.g. "magnetic-tile-compact" (GET /api/capabilities lists them)`;
  if (!root)
    throw new ConfinementError(
      403,
      `${field}: this server has no ${rootFlag} root, so it reads no folders`,
      `upload the images in the request, or start the server with ${rootFlag} DIR`,
    );
  if (typeof rel !== 'string' || rel.length === 0 || rel.length > 512 || rel.includes('\0'))
    throw new ConfinementError(422, `${field} must be a non-empty relative path (≤ 512 characters)`, fix);
  if (isAbsolute(rel) || /^[a-zA-Z]:[\\/]/.test(rel) || rel.startsWith('\\') || rel.startsWith('~'))
    throw new ConfinementError(422, `${field} ${JSON.stringify(rel)}: absolute paths are refused`, fix);
  if (rel.split(/[\\/]/).includes('..'))
    throw new ConfinementError(422, `${field} ${JSON.stringify(rel)}: ".." segments are refused`, fix);
  const realRoot = realpathSync(root);
  const abs = resolve(realRoot, rel);
  if (!existsSync(abs))
    throw new ConfinementError(404, `${field} ${JSON.stringify(rel)} does not exist under ${rootFlag}`, fix);
  const real = realpathSync(abs);
  if (real !== realRoot && !real.startsWith(realRoot + sep))
    throw new ConfinementError(
      403,
      `${field} ${JSON.stringify(rel)} leads outside the ${rootFlag} root (a symlink out of it): refused`,
      `copy the data into the ${rootFlag} root instead of linking to it`,
    );
  return real;
}

/**
 * Replaces the server's own folders (and any absolute path left) in a message: errors thrown deep in the core
 * name files for local users, but a remote client must not learn the server's layout.
 */
export function scrubPaths(message: string, roots: { path: string; as: string }[]): string {
  let m = message;
  for (const r of roots.filter((x) => x.path).sort((a, b) => b.path.length - a.path.length))
    m = m
      .split(r.path + sep)
      .join(`${r.as}/`)
      .split(r.path)
      .join(r.as);
  // Absolute POSIX paths under a usual root folder with at least two segments (a JSON pointer such as /data or
  // /generators/0 is left alone), and Windows drive paths.
  return m
    .replace(
      /(?<![\w.])\/(?:home|root|etc|tmp|usr|var|work|opt|srv|mnt|proc|dev|sys|run|Users|private|app|data)(?:\/[^\s"'`)]+)+/g,
      '<path>',
    )
    .replace(/[a-zA-Z]:\\[^\s"'`)]*/g, '<path>');
}
