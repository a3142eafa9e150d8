import { readFileSync } from 'node:fs';
import { gunzipSync, strFromU8 } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BOS_TOKEN_ID,
  ClipTokenizer,
  EOS_TOKEN_ID,
  TokenizerFileError,
} from '../../src/core/diffusion/tokenizer.ts';

// Reference data is read in place from ../shared (never copied into the repo).
const SHARED = new URL('../../../shared/reference/', import.meta.url);
const bpeGz = new Uint8Array(readFileSync(new URL('clip/bpe_simple_vocab_16e6.txt.gz', SHARED)));
const golden = JSON.parse(readFileSync(new URL('golden/clip-tokens-golden.json', SHARED), 'utf8')) as {
  cases: { prompt: string; ids: number[] }[];
};

/**
 * Builds tokenizer/vocab.json + merges.txt from the BPE file the way Hugging Face's CLIP conversion does,
 * written out independently of the tokenizer under test (byte table from the GPT-2 paper's description).
 */
function hfFilesFromBpe(gz: Uint8Array): { vocabJson: string; mergesTxt: string } {
  const printable = [
    ...Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => 0x21 + i),
    ...Array.from({ length: 0xac - 0xa1 + 1 }, (_, i) => 0xa1 + i),
    ...Array.from({ length: 0xff - 0xae + 1 }, (_, i) => 0xae + i),
  ];
  const symbols = printable.map((b) => String.fromCharCode(b));
  let extra = 0;
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) symbols.push(String.fromCharCode(256 + extra++));
  const merges = strFromU8(gunzipSync(gz))
    .split('\n')
    .slice(1, 49152 - 256 - 2 + 1);
  const tokens = [...symbols, ...symbols.map((s) => s + '</w>'), ...merges.map((m) => m.split(' ').join(''))];
  tokens.push('<|startoftext|>', '<|endoftext|>');
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  return { vocabJson: JSON.stringify(vocab), mergesTxt: ['#version: 0.2', ...merges].join('\n') + '\n' };
}

describe('ClipTokenizer against the reference CLIP tokenizer (exact ids)', () => {
  let tok: ClipTokenizer;
  beforeAll(() => {
    tok = ClipTokenizer.fromBpeGz(bpeGz);
  });

  it('has the CLIP vocabulary size 49408', () => {
    expect(tok.vocabSize).toBe(49408);
  });

  for (const c of golden.cases) {
    it(`fromBpeGz encodes ${JSON.stringify(c.prompt.slice(0, 40))} exactly`, () => {
      expect(tok.encode(c.prompt)).toEqual(c.ids);
    });
  }

  it('fromVocabMerges (HF vocab.json + merges.txt) gives the same ids for every golden prompt', () => {
    const { vocabJson, mergesTxt } = hfFilesFromBpe(bpeGz);
    const hf = ClipTokenizer.fromVocabMerges(vocabJson, mergesTxt);
    for (const c of golden.cases) expect(hf.encode(c.prompt)).toEqual(c.ids);
  });

  it('encodePadded pads to 77 with EOS by default and with 0 for SDXL tokenizer 2', () => {
    const ids = golden.cases[0].ids;
    const a = tok.encodePadded(golden.cases[0].prompt);
    expect(a.length).toBe(77);
    expect(Array.from(a.slice(0, ids.length))).toEqual(ids);
    expect(Array.from(a.slice(ids.length)).every((v) => v === EOS_TOKEN_ID)).toBe(true);
    const b = tok.encodePadded(golden.cases[0].prompt, { padTokenId: 0 });
    expect(Array.from(b.slice(ids.length)).every((v) => v === 0)).toBe(true);
    expect(b[ids.length - 1]).toBe(EOS_TOKEN_ID);
  });

  it('encodePadded truncates a long prompt to BOS + 75 tokens + EOS', () => {
    const long = golden.cases.find((c) => c.ids.length > 77);
    expect(long).toBeDefined();
    const p = tok.encodePadded(long!.prompt, { maxLength: 77, padTokenId: 0 });
    expect(p.length).toBe(77);
    expect(p[0]).toBe(BOS_TOKEN_ID);
    expect(Array.from(p.slice(1, 76))).toEqual(long!.ids.slice(1, 76));
    expect(p[76]).toBe(EOS_TOKEN_ID);
  });

  it('unescapes HTML entities and collapses whitespace like the reference cleanup', () => {
    expect(tok.encode('rust &amp; dirt')).toEqual(tok.encode('rust & dirt'));
    expect(tok.encode('  Rust \n\t DIRT ')).toEqual(tok.encode('rust dirt'));
  });

  it('names the problem when the files are bad', () => {
    expect(() => ClipTokenizer.fromBpeGz(new Uint8Array([1, 2, 3]))).toThrow(TokenizerFileError);
    expect(() => ClipTokenizer.fromVocabMerges('{not json', 'a b')).toThrow(
      /vocab\.json is not valid JSON .* — fix: /,
    );
    expect(() => ClipTokenizer.fromVocabMerges('{"a": 0}', '#version: 0.2\na b\n')).toThrow(/49406/);
  });
});
