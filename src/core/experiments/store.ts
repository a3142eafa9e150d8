/** Cell stores: where finished cells live so a run resumes where it stopped. */
import type { CellResult, CellStore } from './types.ts';

/** In memory (tests, one-shot CLI runs). */
export class MemoryCellStore implements CellStore {
  readonly cells = new Map<string, CellResult>();
  async get(id: string): Promise<CellResult | undefined> {
    return this.cells.get(id);
  }
  async put(r: CellResult): Promise<void> {
    this.cells.set(r.id, structuredClone(r));
  }
  async list(): Promise<CellResult[]> {
    return [...this.cells.values()];
  }
}

/** The slice of `DefectLabStore` a run store needs (so the core does not import the runtime). */
export interface RunStoreLike {
  putRun(run: {
    id: string;
    datasetId: string;
    kind: 'train' | 'evaluate' | 'experiment';
    config: Record<string, unknown>;
    status: 'running' | 'done' | 'failed' | 'cancelled';
    metrics?: Record<string, number>;
    result?: unknown;
    createdAt: number;
    finishedAt?: number;
  }): Promise<void>;
  getRun(id: string): Promise<{ result?: unknown; config: Record<string, unknown> } | undefined>;
  listRuns(datasetId: string): Promise<{ id: string; kind: string; result?: unknown }[]>;
}

/**
 * Cells as `RunRecord`s of kind 'experiment' in the app's store (IndexedDB), one record per cell, keyed
 * `<experimentId>/<cellId>`, so a reload resumes the experiment.
 */
export class RunRecordCellStore implements CellStore {
  constructor(
    private readonly store: RunStoreLike,
    private readonly datasetId: string,
    private readonly experimentId: string,
  ) {}
  private key(id: string): string {
    return `${this.experimentId}/${id}`;
  }
  async get(id: string): Promise<CellResult | undefined> {
    return (await this.store.getRun(this.key(id)))?.result as CellResult | undefined;
  }
  async put(r: CellResult): Promise<void> {
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(r.metrics ?? {})) if (typeof v === 'number') metrics[k] = v;
    await this.store.putRun({
      id: this.key(r.id),
      datasetId: this.datasetId,
      kind: 'experiment',
      config: { ...r.config, experimentId: this.experimentId },
      status: r.status,
      metrics,
      result: r,
      createdAt: r.finishedAt - r.ms,
      finishedAt: r.finishedAt,
    });
  }
  async list(): Promise<CellResult[]> {
    const runs = await this.store.listRuns(this.datasetId);
    return runs
      .filter((r) => r.kind === 'experiment' && r.id.startsWith(`${this.experimentId}/`))
      .map((r) => r.result as CellResult);
  }
}
