/**
 * The fuzz harness's own checks can fail: the store digest sees a changed, removed or added record (a mask's
 * bytes changed in place included), and the named-error check refuses what the project does not call named.
 */
import 'fake-indexeddb/auto';
import { openDB } from 'idb';
import { describe, expect, it } from 'vitest';
import { DefectLabError, InvalidArgumentError } from '../../src/core/errors.ts';
import { ImportError } from '../../src/core/import/errors.ts';
import { deleteStore, openStore } from '../../src/runtime/db/store.ts';
import { compareDigests, digestHash, storeDigest } from './digest.ts';
import { namedErrorProblem } from './entries.ts';

describe('fuzz harness', () => {
  it('the store digest names changed, removed and added records, Blob contents included', async () => {
    const name = `harness-${process.pid}`;
    const store = await openStore(name);
    const ds = await store.createDataset({ name: 'd', source: 'files' });
    const mask = await store.putMask({
      datasetId: ds.id,
      kind: 'library',
      name: 'm',
      width: 2,
      height: 1,
      blob: new Blob([new Uint8Array([0, 255])]),
    } as Parameters<typeof store.putMask>[0]);
    await store.putRun({ id: 'r1', datasetId: ds.id } as unknown as Parameters<typeof store.putRun>[0]);
    store.close();
    const before = await storeDigest(name);
    expect(digestHash(await storeDigest(name))).toBe(digestHash(before));

    const db = await openDB(name);
    const m = await db.get('masks', mask.id);
    await db.put('masks', { ...m, blob: new Blob([new Uint8Array([255, 255])]) });
    await db.delete('runs', 'r1');
    await db.put('settings', 1, 'k');
    db.close();
    const d = compareDigests(before, await storeDigest(name));
    expect(d.changed).toEqual([`masks ${JSON.stringify(mask.id)}`]);
    expect(d.removed).toEqual(['runs "r1"']);
    expect(d.added).toEqual([{ store: 'settings', key: '"k"' }]);
    await deleteStore(name);
  });

  it('named errors: a DefectLabError with one fix passes; bare, fixless, double-fix and wrapped bugs do not', () => {
    expect(namedErrorProblem(new ImportError('a.png', 'corrupt', 'bad', 're-export it'))).toBeNull();
    expect(namedErrorProblem(new TypeError('x is undefined'))).toMatch(/^unnamed error TypeError/);
    expect(namedErrorProblem(new DefectLabError('XError', 'bad', ''))).toMatch(/without a fix/);
    expect(namedErrorProblem(new DefectLabError('XError', 'bad — fix: a', 'b'))).toMatch(/two fixes/);
    expect(namedErrorProblem(new InvalidArgumentError('width', 'a positive integer', -1))).toBeNull();
    let bug: unknown;
    try {
      // A TypeError thrown from this file, as a bug in product code would be.
      String((undefined as unknown as { x: number }).x);
    } catch (e) {
      bug = e;
    }
    const wrapped = new ImportError('a.png', 'corrupt', 'bad', 're-export it', { cause: bug });
    expect(namedErrorProblem(wrapped)).toMatch(/wraps a bug of ours: TypeError/);
  });
});
