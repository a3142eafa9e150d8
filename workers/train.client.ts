/**
 * Main-thread client of the train worker: the same `TrainApi` as `TrainEngine`, through comlink. Epoch reports
 * arrive as progress (`stage: 'train'`, `detail`: the EpochReport) for live curves; `cancel(jobId)` stops
 * training after the current step and the head trained so far is still evaluated and saved. `evaluateHead`
 * re-scores a saved head on its dataset's test split.
 */
import type { ProgressFn } from '../src/core/progress.ts';
import type { HeadRecord } from '../src/runtime/db/types.ts';
import { FeaturesClientBase } from './features.client.ts';
import { proxied } from './host.ts';
import type { ExportedFile } from '../src/runtime/heads/export.ts';
import type {
  EvaluateResponse,
  ThresholdPolicy,
  TrainApi,
  TrainRequest,
  TrainResponse,
} from './train.engine.ts';

export class TrainClient extends FeaturesClientBase<TrainApi> implements TrainApi {
  constructor() {
    super(
      'train',
      () => new Worker(new URL('./train.worker.ts', import.meta.url), { type: 'module', name: 'train' }),
    );
  }
  train(req: TrainRequest, jobId?: string, progress?: ProgressFn): Promise<TrainResponse> {
    return this.withBackbone((api) => api.train(req, jobId, proxied(progress)));
  }
  evaluateHead(
    headId: string,
    threshold?: ThresholdPolicy,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<EvaluateResponse> {
    return this.withBackbone((api) => api.evaluateHead(headId, threshold, jobId, proxied(progress)));
  }
  listHeads(datasetId?: string): Promise<Omit<HeadRecord, 'artifacts'>[]> {
    return this.conn.guard(this.api.listHeads(datasetId));
  }
  exportHead(headId: string): Promise<ExportedFile[]> {
    return this.conn.guard(this.api.exportHead(headId));
  }
  deleteHead(headId: string): Promise<void> {
    return this.conn.guard(this.api.deleteHead(headId));
  }
}
