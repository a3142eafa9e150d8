/**
 * Turning what the user gives us (a file input's FileList, a folder picked with webkitdirectory, or a drop that
 * may hold folders) into a flat list of files with their relative paths — the form the importer plans layouts
 * from (`train/good/001.png`, `images/x.png` next to `manifest.json`).
 */

export interface PickedFile {
  /** Path relative to what was picked, with '/' separators (just the name for loose files). */
  path: string;
  file: File;
}

/** Files from an `<input type=file>`; folder pickers fill `webkitRelativePath`. */
export function fromFileList(list: FileList | readonly File[]): PickedFile[] {
  const out: PickedFile[] = [];
  for (const file of Array.from(list)) {
    out.push({ path: file.webkitRelativePath || file.name, file });
  }
  return out;
}

/**
 * Strips the one folder every path shares (a picked or dropped folder's own name), so `tiles/images/a.png` and
 * `tiles/manifest.json` become `images/a.png` and `manifest.json`; returns the stripped name for naming the
 * dataset.
 */
export function stripCommonRoot(files: PickedFile[]): { files: PickedFile[]; root: string | null } {
  if (files.length === 0) return { files, root: null };
  const first = files[0].path.split('/');
  if (first.length < 2) return { files, root: null };
  const root = first[0];
  if (!files.every((f) => f.path.startsWith(`${root}/`))) return { files, root: null };
  return { files: files.map((f) => ({ path: f.path.slice(root.length + 1), file: f.file })), root };
}

function readAllEntries(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  // readEntries returns at most ~100 entries per call; call until it returns none.
  return new Promise((resolve, reject) => {
    const all: FileSystemEntry[] = [];
    const next = () =>
      reader.readEntries((batch) => {
        if (batch.length === 0) resolve(all);
        else {
          all.push(...batch);
          next();
        }
      }, reject);
    next();
  });
}

async function walk(entry: FileSystemEntry, prefix: string, out: PickedFile[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) =>
      (entry as FileSystemFileEntry).file(resolve, reject),
    );
    out.push({ path: prefix + entry.name, file });
  } else if (entry.isDirectory) {
    const children = await readAllEntries((entry as FileSystemDirectoryEntry).createReader());
    for (const c of children) await walk(c, `${prefix}${entry.name}/`, out);
  }
}

/** Files of a drop, descending into dropped folders (entries must be taken synchronously in the drop handler). */
export async function fromDataTransfer(dt: DataTransfer): Promise<PickedFile[]> {
  const entries: FileSystemEntry[] = [];
  const loose: File[] = [];
  for (const item of Array.from(dt.items)) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry?.();
    if (entry) entries.push(entry);
    else {
      const f = item.getAsFile();
      if (f) loose.push(f);
    }
  }
  const out: PickedFile[] = [];
  for (const e of entries) await walk(e, '', out);
  for (const f of loose) out.push({ path: f.name, file: f });
  return out;
}

/** Is this pick a single zip archive (imported as an archive rather than loose files)? */
export function isSingleZip(files: PickedFile[]): boolean {
  return files.length === 1 && /\.zip$/i.test(files[0].path);
}

/** A dataset name from what was picked: the folder's or archive's name, else the date. */
export function suggestDatasetName(files: PickedFile[], root: string | null): string {
  if (root) return root;
  if (isSingleZip(files)) return files[0].path.replace(/\.zip$/i, '');
  return `Import ${new Date().toISOString().slice(0, 16).replace('T', ' ')}`;
}
