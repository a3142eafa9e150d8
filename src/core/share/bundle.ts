/**
 * A dataset bundle named by a share link (a zip in the export format, by URL, with sha256 and size): reading it
 * with a byte limit and checking it before anything is imported. Pure apart from the streamed body it is given,
 * so Node tests drive it with their own streams.
 */
import { DefectLabError } from '../errors.ts';
import { sha256Hex } from '../hash.ts';
import type { SharedDataset } from './setup.ts';

export class DatasetBundleError extends DefectLabError {
  constructor(url: string, problem: string, fix: string) {
    super('DatasetBundleError', `the dataset bundle ${url} ${problem}`, fix);
  }
}

const FIX_HOST = 'ask the host to share the setup again after re-uploading the bundle; nothing was imported';

/**
 * Reads `body` up to the size the link promised (a longer body stops early: it is not the promised file), reporting
 * bytes as they arrive, then checks size and SHA-256. Returns the bundle's bytes.
 */
export async function readBundle(
  d: SharedDataset,
  body: ReadableStream<Uint8Array>,
  onBytes?: (done: number, total: number) => void,
): Promise<Uint8Array<ArrayBuffer>> {
  const out = new Uint8Array(new ArrayBuffer(d.size));
  let n = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.length > d.size) {
      await reader.cancel();
      throw new DatasetBundleError(d.url, `is larger than the ${d.size} bytes the link says`, FIX_HOST);
    }
    out.set(value, n);
    n += value.length;
    onBytes?.(n, d.size);
  }
  if (n !== d.size)
    throw new DatasetBundleError(
      d.url,
      `ended after ${n} of ${d.size} bytes`,
      'check the network and open the link again; nothing was imported',
    );
  const got = await sha256Hex(out);
  if (got !== d.sha256)
    throw new DatasetBundleError(d.url, `has sha256 ${got}, not the ${d.sha256} the link says`, FIX_HOST);
  return out;
}
