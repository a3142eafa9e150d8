/**
 * The share-link codec: setup ⇄ URL fragment `#setup=<token>`, pure and synchronous (Node, worker and page).
 *
 * Token (base64url of): `version` (1 byte) · `bodyLength` (varint) · `inflatedLength` (varint) · CRC-32 of
 * everything before it and the body (4 bytes, big-endian) · body. Version 2's body is deflate (fflate, level 9) of: varint(JSON length) · the
 * setup as UTF-8 JSON, masks replaced by `{ name, feather, w, h, n }` · the masks' run-length bytes (`n` each) in
 * order. Keeping the masks binary beside the JSON (not base64 inside it) lets deflate fold their repeating rows.
 *
 * Everything arrives in the fragment, so nothing reaches a server. Decoding checks, in order: the alphabet, the
 * header, the version, the length (truncated), the checksum (tampered), the inflated size, then every field
 * (`validateSetup`); each failure is its own named error, and a caller applies nothing unless decoding returns.
 */
import { deflateSync, inflateSync } from 'fflate';
import { DefectLabError } from '../errors.ts';
import { crc32, fromBase64Url, pushVarint, readVarint, toBase64Url } from './bytes.ts';
import { decodeMaskRle, encodeMaskRle } from './rle.ts';
import { ShareSetupError, validateSetup, type SharedMask, type WorkshopSetup } from './setup.ts';

export const SHARE_VERSION = 2;
/** The URL fragment key: `https://host/#setup=<token>`. */
export const SHARE_KEY = 'setup';
/** A decoded body larger than this is refused: a link is a setup, never a dataset (those go by URL). */
export const MAX_INFLATED_BYTES = 8 * 1024 * 1024;

const FIX_NEW_LINK =
  'copy the whole link again (or ask the host to press Share setup once more); nothing was changed';

export class ShareLinkMalformedError extends DefectLabError {
  constructor(problem: string) {
    super('ShareLinkMalformedError', `this share link is not readable: ${problem}`, FIX_NEW_LINK);
  }
}
export class ShareLinkTruncatedError extends DefectLabError {
  constructor(have: number, want?: number) {
    super(
      'ShareLinkTruncatedError',
      `this share link is cut short (${want ? `${have} of ${want} bytes` : `only ${have} bytes`} arrived; chat ` +
        'apps and e-mail often cut long links)',
      FIX_NEW_LINK,
    );
  }
}
export class ShareLinkChecksumError extends DefectLabError {
  constructor(detail: string) {
    super('ShareLinkChecksumError', `this share link was altered or damaged (${detail})`, FIX_NEW_LINK);
  }
}
export class ShareLinkVersionError extends DefectLabError {
  constructor(version: number) {
    super(
      'ShareLinkVersionError',
      `this share link has format version ${version}; this DefectLab reads versions 1 to ${SHARE_VERSION}`,
      version > SHARE_VERSION
        ? 'reload the app to get the newest DefectLab (or ask the host which version they run); nothing was changed'
        : FIX_NEW_LINK,
    );
  }
}

interface WireMask {
  name: string;
  feather?: number;
  w: number;
  h: number;
  n: number;
}

/** CRC-32 over the header fields before it and the body, so a changed length is caught like a changed byte. */
function checksum(head: Uint8Array, body: Uint8Array): number {
  const all = new Uint8Array(head.length + body.length);
  all.set(head);
  all.set(body, head.length);
  return crc32(all);
}

function frame(version: number, body: Uint8Array, inflatedLength: number): string {
  const head: number[] = [version];
  pushVarint(head, body.length);
  pushVarint(head, inflatedLength);
  const c = checksum(Uint8Array.from(head), body);
  head.push(c >>> 24, (c >>> 16) & 255, (c >>> 8) & 255, c & 255);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return toBase64Url(out);
}

/** Setup → token (the part after `#setup=`). Deterministic: the same setup gives the same token. */
export function encodeSetup(setup: WorkshopSetup): string {
  const masks: SharedMask[] = setup.masks ?? [];
  const rles = masks.map((m) => encodeMaskRle(m.mask));
  const wire = {
    ...setup,
    masks: setup.masks
      ? masks.map((m, i): WireMask => {
          const w: WireMask = { name: m.name, w: m.mask.width, h: m.mask.height, n: rles[i].length };
          if (m.feather) w.feather = m.feather;
          return w;
        })
      : undefined,
  };
  const json = new TextEncoder().encode(JSON.stringify(wire));
  const lenBytes: number[] = [];
  pushVarint(lenBytes, json.length);
  const plain = new Uint8Array(lenBytes.length + json.length + rles.reduce((s, r) => s + r.length, 0));
  plain.set(lenBytes);
  plain.set(json, lenBytes.length);
  let p = lenBytes.length + json.length;
  for (const r of rles) {
    plain.set(r, p);
    p += r.length;
  }
  return frame(SHARE_VERSION, deflateSync(plain, { level: 9, mem: 8 }), plain.length);
}

/** `${base}#setup=<token>`: `base` is the app's URL without a fragment. */
export function shareUrl(base: string, setup: WorkshopSetup): string {
  return `${base.split('#')[0]}#${SHARE_KEY}=${encodeSetup(setup)}`;
}

/** The token of a location hash (`#setup=…`, other `&key=value` pairs allowed), or null when it has none. */
export function tokenFromHash(hash: string): string | null {
  const h = hash.startsWith('#') ? hash.slice(1) : hash;
  for (const part of h.split('&')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq) === SHARE_KEY) return part.slice(eq + 1);
  }
  return null;
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new ShareLinkMalformedError(`its settings are not JSON (${(e as Error).message})`);
  }
}

/** Token → the setup it carries (migrated to the current version), or a named error; never a partial setup. */
export function decodeSetup(token: string): WorkshopSetup {
  const t = token.trim();
  if (!t) throw new ShareLinkMalformedError('it is empty');
  const decoded = fromBase64Url(t);
  if ('truncated' in decoded) throw new ShareLinkTruncatedError(Math.floor((t.length * 3) / 4));
  if ('badAt' in decoded)
    throw new ShareLinkMalformedError(
      `character ${decoded.badAt + 1} (${JSON.stringify(t[decoded.badAt] ?? '')}) is not part of a link token`,
    );
  const bytes = decoded instanceof Uint8Array ? decoded : decoded.strayBits;
  const version = bytes[0] ?? 0;
  const bodyLen = readVarint(bytes, 1);
  const inflatedLen = bodyLen && readVarint(bytes, bodyLen.next);
  const start = inflatedLen ? inflatedLen.next + 4 : -1;
  if (!bodyLen || !inflatedLen || bytes.length < start) throw new ShareLinkTruncatedError(bytes.length);
  if (version < 1 || version > SHARE_VERSION) throw new ShareLinkVersionError(version);
  const body = bytes.subarray(start);
  if (body.length < bodyLen.value) throw new ShareLinkTruncatedError(bytes.length, start + bodyLen.value);
  if (!(decoded instanceof Uint8Array)) throw new ShareLinkChecksumError('its last character was changed');
  if (body.length > bodyLen.value)
    throw new ShareLinkChecksumError(`${body.length - bodyLen.value} bytes more than it says it holds`);
  const want =
    ((bytes[start - 4] << 24) | (bytes[start - 3] << 16) | (bytes[start - 2] << 8) | bytes[start - 1]) >>> 0;
  const got = checksum(bytes.subarray(0, start - 4), body);
  if (want !== got) throw new ShareLinkChecksumError('its checksum does not match its contents');
  if (inflatedLen.value > MAX_INFLATED_BYTES)
    throw new ShareLinkMalformedError(`it unpacks to ${inflatedLen.value} bytes, over ${MAX_INFLATED_BYTES}`);
  if (version === 1) return migrateV1(parseJson(body));
  let plain: Uint8Array;
  try {
    plain = inflateSync(body, { out: new Uint8Array(inflatedLen.value) });
  } catch (e) {
    throw new ShareLinkMalformedError(`its compressed data is damaged (${(e as Error).message})`);
  }
  if (plain.length !== inflatedLen.value)
    throw new ShareLinkMalformedError(`it unpacks to ${plain.length} bytes, not ${inflatedLen.value}`);
  const jsonLen = readVarint(plain, 0);
  if (!jsonLen || jsonLen.next + jsonLen.value > plain.length)
    throw new ShareLinkMalformedError('its settings block is shorter than its length says');
  const wire = parseJson(plain.subarray(jsonLen.next, jsonLen.next + jsonLen.value)) as Record<
    string,
    unknown
  >;
  if (wire && typeof wire === 'object' && Array.isArray(wire.masks)) {
    let p = jsonLen.next + jsonLen.value;
    wire.masks = (wire.masks as unknown[]).map((m, i) => {
      const field = `setup.masks[${i}]`;
      const w = m as Partial<WireMask>;
      if (!w || typeof w !== 'object' || typeof w.n !== 'number' || !Number.isInteger(w.n) || w.n < 0)
        throw new ShareSetupError(`${field}.n`, 'must be a byte count');
      if (p + w.n > plain.length) throw new ShareSetupError(field, 'points past the end of the mask data');
      const mask = decodeMaskRle(plain.subarray(p, p + w.n), Number(w.w), Number(w.h));
      p += w.n;
      if (typeof mask === 'string') throw new ShareSetupError(field, `is not a mask: ${mask}`);
      const out: Record<string, unknown> = { name: w.name, mask };
      if (w.feather !== undefined) out.feather = w.feather;
      return out;
    });
  }
  validateSetup(wire);
  return wire;
}

/**
 * Version 1 (the first workshop links): the body was the JSON itself, not deflated; one flat object of the Paint
 * tab's settings with the prompts as one text (a prompt a line) and masks as arrays of run lengths.
 */
export interface SetupV1 {
  generator: string;
  count: number;
  seed: number;
  params?: Record<string, unknown>;
  prompts?: string;
  negativePrompt?: string;
  steps?: number;
  guidance?: number;
  strength?: number;
  diffusionSeed?: number;
  masks?: { name: string; width: number; height: number; runs: number[] }[];
}

function migrateV1(v: unknown): WorkshopSetup {
  if (!v || typeof v !== 'object') throw new ShareSetupError('setup', 'must be an object');
  const o = v as Partial<SetupV1>;
  const out: Record<string, unknown> = {
    generate: {
      generator: o.generator,
      count: o.count,
      seed: o.seed,
      ...(o.params ? { optionsFor: o.generator, options: o.params } : {}),
      maskMode: o.masks?.length ? 'library' : 'painted',
    },
  };
  if (o.prompts !== undefined)
    out.diffusion = {
      prompts: String(o.prompts)
        .split('\n')
        .map((p) => p.trim())
        .filter(Boolean),
      negativePrompt: o.negativePrompt ?? '',
      steps: o.steps ?? 30,
      guidanceScale: o.guidance ?? 20,
      strength: o.strength ?? 0.99,
      seed: o.diffusionSeed ?? o.seed,
      mode: 'paired',
      count: 1,
    };
  if (o.masks !== undefined) {
    if (!Array.isArray(o.masks)) throw new ShareSetupError('setup.masks', 'must be a list');
    out.masks = o.masks.map((m, i) => {
      const runs: number[] = [];
      if (!Array.isArray(m?.runs)) throw new ShareSetupError(`setup.masks[${i}].runs`, 'must be a list');
      for (const r of m.runs) {
        if (!Number.isSafeInteger(r) || r < 0)
          throw new ShareSetupError(`setup.masks[${i}].runs`, 'must hold whole pixel counts');
        pushVarint(runs, r);
      }
      const mask = decodeMaskRle(Uint8Array.from(runs), m.width, m.height);
      if (typeof mask === 'string') throw new ShareSetupError(`setup.masks[${i}]`, `is not a mask: ${mask}`);
      return { name: m.name, mask };
    });
  }
  validateSetup(out);
  return out;
}
