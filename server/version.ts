/** The server's version: package.json's, read once (shown by /api/health and every job's provenance). */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const SERVER_VERSION: string = (
  JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8')) as { version: string }
).version;
