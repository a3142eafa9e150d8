/** A `CellStore` in a JSON file, so a CLI run stopped with Ctrl-C resumes where it stopped. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CellResult, CellStore } from '../src/core/experiments/index.ts';

export class JsonFileCellStore implements CellStore {
  private cells: Record<string, CellResult>;
  constructor(readonly path: string) {
    this.cells = existsSync(path)
      ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, CellResult>)
      : {};
  }
  async get(id: string): Promise<CellResult | undefined> {
    return this.cells[id];
  }
  async put(r: CellResult): Promise<void> {
    this.cells[r.id] = r;
    mkdirSync(dirname(this.path), { recursive: true });
    // Write-then-rename: an interrupted write never leaves a half file that would lose earlier cells.
    const tmp = `${this.path}.tmp`;
    writeFileSync(
      tmp,
      JSON.stringify(this.cells, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)),
    );
    renameSync(tmp, this.path);
  }
  async list(): Promise<CellResult[]> {
    return Object.values(this.cells);
  }
}
