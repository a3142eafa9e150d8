/**
 * Main-thread client of the train worker: the same `TrainApi` as `TrainEngine`, through comlink. Epoch reports
 * arrive as progress (`stage: 'train'`, `detail`: the EpochReport) for live curves; `cancel(jobId)` stops
 * training after the current step and the head trained so far is still evaluated and saved.
 */
import type { ProgressFn } from '../src/core/progress.ts';
import type { HeadRecord } from '../src/runtime/db/types.ts';
import { FeaturesClientBase } from './features.client.ts';
import { proxied } from './host.ts';
import type { TrainApi, TrainRequest, TrainResponse } from './train.engine.ts';

export class TrainClient extends FeaturesClientBase<TrainApi> implements TrainApi {
  constructor() {
    super(
      'train',
      () => new Worker(new URL('./train.worker.ts', import.meta.url), { type: 'module', name: 'train' }),
    );
  }
  train(req: TrainRequest, jobId?: string, progress?: ProgressFn): Promise<TrainResponse> {
    return this.conn.guard(this.api.train(req, jobId, proxied(progress)));
  }
  listHeads(datasetId?: string): Promise<Omit<HeadRecord, 'artifacts'>[]> {
    return this.conn.guard(this.api.listHeads(datasetId));
  }
  exportHead(headId: string): Promise<{ name: string; data: Uint8Array }[]> {
    return this.conn.guard(this.api.exportHead(headId));
  }
  deleteHead(headId: string): Promise<void> {
    return this.conn.guard(this.api.deleteHead(headId));
  }
}
