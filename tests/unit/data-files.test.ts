import { describe, expect, it } from 'vitest';
import { fromFileList, isSingleZip, stripCommonRoot, suggestDatasetName } from '../../src/ui/data/files.ts';

const f = (name: string, rel = '') => {
  const file = new File([new Uint8Array([1, 2, 3])], name);
  if (rel) Object.defineProperty(file, 'webkitRelativePath', { value: rel });
  return file;
};

describe('picked files', () => {
  it('uses webkitRelativePath for folder picks and the name for loose files', () => {
    const picked = fromFileList([f('a.png', 'tiles/images/a.png'), f('b.png')]);
    expect(picked.map((p) => p.path)).toEqual(['tiles/images/a.png', 'b.png']);
  });
  it('strips the picked folder so the importer sees its layout (manifest.json at the root)', () => {
    const { files, root } = stripCommonRoot(
      fromFileList([f('manifest.json', 'tiles/manifest.json'), f('a.png', 'tiles/images/a.png')]),
    );
    expect(root).toBe('tiles');
    expect(files.map((p) => p.path)).toEqual(['manifest.json', 'images/a.png']);
    expect(suggestDatasetName(files, root)).toBe('tiles');
  });
  it('keeps paths when there is no single shared folder', () => {
    const picked = fromFileList([f('a.png', 'x/a.png'), f('b.png', 'y/b.png')]);
    expect(stripCommonRoot(picked).root).toBeNull();
    expect(stripCommonRoot(fromFileList([f('a.png')])).root).toBeNull();
  });
  it('recognises a lone zip and names the dataset after it', () => {
    const zip = fromFileList([f('mvtec-bottle.ZIP')]);
    expect(isSingleZip(zip)).toBe(true);
    expect(suggestDatasetName(zip, null)).toBe('mvtec-bottle');
    expect(isSingleZip(fromFileList([f('a.zip'), f('b.zip')]))).toBe(false);
    expect(suggestDatasetName(fromFileList([f('a.png')]), null)).toMatch(
      /^Import \d{4}-\d\d-\d\d \d\d:\d\d$/,
    );
  });
});
