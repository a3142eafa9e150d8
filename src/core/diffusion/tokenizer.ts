import { gunzipSync, strFromU8 } from 'fflate';
import { DefectLabError, InvalidArgumentError } from '../errors.ts';
import type { TokenizerLike } from './types.ts';

/**
 * CLIP's byte-level BPE tokenizer (openai/CLIP `simple_tokenizer.py`, the one both SDXL text encoders use).
 *
 * Written here rather than taken from a library because it is small, the pipeline needs it synchronously in a
 * worker and in Node with no model download, and it must match the reference ids exactly
 * (`../shared/reference/golden/clip-tokens-golden.json`).
 *
 * Text cleanup as the reference, minus ftfy (its mojibake repair is the identity on ordinary prompts): HTML
 * entities unescaped twice, whitespace runs collapsed, trimmed, lower-cased; then split with the CLIP pattern
 * (`'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`), each piece mapped byte → printable unicode and BPE-merged.
 */
export const BOS_TOKEN_ID = 49406;
export const EOS_TOKEN_ID = 49407;
const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';

/** Number of merges the reference keeps from the BPE file (49152 − 256 − 2). */
const CLIP_MERGES = 49152 - 256 - 2;

const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;

export class TokenizerFileError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('TokenizerFileError', problem, fix);
  }
}

/**
 * GPT-2/CLIP's reversible map from the 256 byte values to printable unicode characters, so BPE never sees
 * whitespace or control characters: printable Latin-1 bytes map to themselves, the rest to U+0100 onward.
 */
export function bytesToUnicode(): string[] {
  const { bytes, chars } = byteTable();
  const out = new Array<string>(256);
  for (let i = 0; i < bytes.length; i++) out[bytes[i]] = chars[i];
  return out;
}

/** Byte values and their symbols, in the reference's insertion order (the vocabulary lists them in this order). */
function byteTable(): { bytes: number[]; chars: string[] } {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  const codes = bytes.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      codes.push(256 + n);
      n++;
    }
  }
  return { bytes, chars: codes.map((c) => String.fromCharCode(c)) };
}

const NAMED_ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
};

/**
 * Python's `html.unescape` for numeric entities and the common named ones (the full HTML5 table is 2k names
 * that prompts do not use; unknown names are left as typed, as Python does for unknown ones).
 */
function unescapeHtml(s: string): string {
  return s.replace(/&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);/g, (m, body: string) => {
    if (body[0] === '#') {
      const code =
        body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      if (!Number.isFinite(code) || code > 0x10ffff || code === 0) return '\ufffd';
      return String.fromCodePoint(code);
    }
    return NAMED_ENTITIES[body] ?? m;
  });
}

/** The reference's `whitespace_clean(basic_clean(text)).lower()`. */
export function cleanText(text: string): string {
  const t = unescapeHtml(unescapeHtml(text)).trim();
  return t.replace(/\s+/gu, ' ').trim().toLowerCase();
}

export class ClipTokenizer implements TokenizerLike {
  readonly vocabSize: number;
  readonly bosTokenId = BOS_TOKEN_ID;
  readonly eosTokenId = EOS_TOKEN_ID;
  private readonly encoder: Map<string, number>;
  /** Rank of a merge, keyed "first second" (the space never occurs inside a byte-encoded symbol). */
  private readonly ranks: Map<string, number>;
  private readonly byteEncoder = bytesToUnicode();
  private readonly cache = new Map<string, string[]>();
  private readonly utf8 = new TextEncoder();

  private constructor(encoder: Map<string, number>, merges: readonly string[]) {
    this.encoder = encoder;
    this.vocabSize = encoder.size;
    this.ranks = new Map(merges.map((m, i) => [m, i]));
    if (encoder.get(BOS) !== BOS_TOKEN_ID || encoder.get(EOS) !== EOS_TOKEN_ID)
      throw new TokenizerFileError(
        `the vocabulary maps ${BOS} to ${encoder.get(BOS)} and ${EOS} to ${encoder.get(EOS)}, not ${BOS_TOKEN_ID}/${EOS_TOKEN_ID}`,
        'use the CLIP vocabulary (tokenizer/vocab.json of an SD/SDXL model, or bpe_simple_vocab_16e6.txt.gz)',
      );
  }

  /**
   * From openai/CLIP's `bpe_simple_vocab_16e6.txt.gz` (gzip of a header line and one merge "a b" per line).
   * The vocabulary is built as the reference does: 256 byte symbols, the same with `</w>`, one token per merge,
   * then BOS and EOS (49408 in all).
   */
  static fromBpeGz(bytes: Uint8Array): ClipTokenizer {
    let text: string;
    try {
      text = strFromU8(gunzipSync(bytes));
    } catch (e) {
      throw new TokenizerFileError(
        `the BPE file is not valid gzip (${(e as Error).message})`,
        'pass the bytes of bpe_simple_vocab_16e6.txt.gz unchanged',
      );
    }
    const lines = text.split('\n').slice(1, CLIP_MERGES + 1);
    if (lines.length < CLIP_MERGES)
      throw new TokenizerFileError(
        `the BPE file has ${lines.length} merges, CLIP needs ${CLIP_MERGES}`,
        'pass the complete bpe_simple_vocab_16e6.txt.gz',
      );
    const merges = lines.map((l) => l.split(/\s+/).filter(Boolean).join(' '));
    const vocab: string[] = [];
    const ordered = byteTable().chars;
    vocab.push(...ordered, ...ordered.map((v) => `${v}</w>`));
    for (const m of merges) vocab.push(m.replace(' ', ''));
    vocab.push(BOS, EOS);
    return new ClipTokenizer(new Map(vocab.map((v, i) => [v, i])), merges);
  }

  /** From a Hugging Face `tokenizer/vocab.json` (token → id) and `merges.txt` ("#version" header, "a b" lines). */
  static fromVocabMerges(vocabJson: string, mergesTxt: string): ClipTokenizer {
    let parsed: unknown;
    try {
      parsed = JSON.parse(vocabJson);
    } catch (e) {
      throw new TokenizerFileError(
        `vocab.json is not valid JSON (${(e as Error).message})`,
        'pass the text of tokenizer/vocab.json',
      );
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new TokenizerFileError(
        'vocab.json must be an object mapping tokens to ids',
        'pass the text of tokenizer/vocab.json',
      );
    const encoder = new Map<string, number>();
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof v !== 'number')
        throw new TokenizerFileError(
          `vocab.json maps ${JSON.stringify(k)} to a non-number`,
          'pass an unmodified vocab.json',
        );
      encoder.set(k, v);
    }
    const merges = mergesTxt
      .split('\n')
      .filter((l, i) => !(i === 0 && l.startsWith('#version')))
      .map((l) => l.trim().split(/\s+/).filter(Boolean))
      .filter((p) => p.length === 2)
      .map((p) => p.join(' '));
    if (merges.length === 0)
      throw new TokenizerFileError('merges.txt holds no merges', 'pass the text of tokenizer/merges.txt');
    return new ClipTokenizer(encoder, merges);
  }

  /** Token ids with BOS 49406 first and EOS 49407 last; no padding, no truncation. */
  encode(text: string): number[] {
    if (typeof text !== 'string') throw new InvalidArgumentError('text', 'a string', text);
    const ids = [BOS_TOKEN_ID];
    for (const m of cleanText(text).matchAll(PATTERN)) {
      let piece = '';
      for (const b of this.utf8.encode(m[0])) piece += this.byteEncoder[b];
      for (const sym of this.bpe(piece)) {
        const id = this.encoder.get(sym);
        if (id === undefined)
          throw new TokenizerFileError(
            `the symbol ${JSON.stringify(sym)} has no id`,
            'the vocabulary and merges do not belong together; load both from the same model',
          );
        ids.push(id);
      }
    }
    ids.push(EOS_TOKEN_ID);
    return ids;
  }

  /**
   * Ids of length `maxLength` (77): truncated to BOS + (maxLength − 2) tokens + EOS, then padded with
   * `padTokenId` (default EOS — SDXL's first tokenizer; its second pads with 0).
   */
  encodePadded(text: string, options: { maxLength?: number; padTokenId?: number } = {}): Int32Array {
    const maxLength = options.maxLength ?? 77;
    const pad = options.padTokenId ?? EOS_TOKEN_ID;
    if (!Number.isInteger(maxLength) || maxLength < 2)
      throw new InvalidArgumentError('maxLength', 'an integer ≥ 2', maxLength);
    let ids = this.encode(text);
    if (ids.length > maxLength) ids = [...ids.slice(0, maxLength - 1), EOS_TOKEN_ID];
    const out = new Int32Array(maxLength).fill(pad);
    out.set(ids);
    return out;
  }

  /** Merges one byte-encoded word by rank, lowest first, until no adjacent pair has a rank. */
  private bpe(token: string): string[] {
    if (token === BOS || token === EOS) return [token];
    const cached = this.cache.get(token);
    if (cached) return cached;
    const chars = Array.from(token);
    let word = [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best];
      const second = word[best + 1];
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]);
          i += 1;
        }
      }
      word = merged;
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(token, word);
    return word;
  }
}
