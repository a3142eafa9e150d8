/**
 * The mask-supervised per-location head (`src/runtime/heads/masked.ts`) as the runner's `HeadTrainer`: normal
 * rows give all-zero cell labels; synthetic and real defect rows give their masks mapped onto the feature grid
 * through the backbone's preprocessing geometry (`maskToGrid`). A row carries its mask as `loadMask` (the
 * runner's synthetic rows know it from their generator, real defects from the dataset); a defect row without
 * one is left out, because an image label says nothing about where the defect is. The trained head scores rows
 * and draws heat maps like PatchCore's (`src/app/patchcore.ts`).
 *
 * Imports `src/core` and `src/runtime` only, touches no Node API.
 */
import { InvalidArgumentError } from '../core/errors.ts';
import type { HeadSample, HeadTrainer, TrainedHead } from '../core/experiments/types.ts';
import type { RasterImage } from '../core/image.ts';
import { patchGrid } from '../core/patchcore/features.ts';
import type { CancelSignal } from '../core/progress.ts';
import type { EpochReport, HeadArtifacts } from '../runtime/heads/common.ts';
import { MASKED_DEFAULTS, MaskedHead, type MaskedOptions, trainMaskedHead } from '../runtime/heads/masked.ts';
import { maskToGrid } from '../runtime/heads/stream.ts';
import { ensureTf } from '../runtime/tf.ts';
import { frameMapHead, type ImageHeatMap, type TapMaps } from './patchcore.ts';

/** A runner row that may carry its defect mask (binary, the image's size). */
export type MaskedRow = HeadSample & { loadMask?: () => Promise<RasterImage | null> };

export interface MaskedTrained extends TrainedHead {
  heatMaps(rows: HeadSample[]): Promise<ImageHeatMap[]>;
  gridMaps(rows: HeadSample[]): Promise<{ h: number; w: number; maps: Float32Array[] }>;
  toImage(map: Float32Array, gh: number, gw: number, width: number, height: number): Float32Array;
  artifacts(): Promise<HeadArtifacts>;
  readonly head: MaskedHead;
  readonly training?: {
    history: EpochReport[];
    stopped: 'completed' | 'early' | 'cancelled';
    defectCells: number;
  };
  dispose(): void;
}

export function maskedResult(
  head: MaskedHead,
  maps: TapMaps,
  signal?: CancelSignal,
  training?: MaskedTrained['training'],
): MaskedTrained {
  const pre = maps.source.preprocess;
  const taps = head.options.taps;
  const predict = async (rows: HeadSample[]) =>
    head.predict((await maps.of(rows, taps, signal)).map((m) => ({ maps: m, frame: pre })));
  return {
    head,
    training,
    ...frameMapHead(predict, pre),
    artifacts: () => head.toArtifacts(),
    dispose: () => head.dispose(),
  };
}

export function maskedTrainer(maps: TapMaps, defaults: Partial<MaskedOptions> = {}): HeadTrainer {
  return {
    kind: 'masked',
    async train(rows: MaskedRow[], o): Promise<TrainedHead> {
      await ensureTf();
      const opts = {
        ...MASKED_DEFAULTS,
        ...defaults,
        ...o.extra,
        seed: o.seed,
        ...(o.epochs ? { epochs: o.epochs } : {}),
      } as Partial<MaskedOptions> & { generator?: unknown };
      delete opts.generator;
      const taps = opts.taps ?? MASKED_DEFAULTS.taps!;
      const pre = maps.source.preprocess;
      const used: MaskedRow[] = [];
      const masks: (RasterImage | null)[] = [];
      for (const r of rows) {
        if (r.label === 0) {
          used.push(r);
          masks.push(null);
          continue;
        }
        const m = r.loadMask ? await r.loadMask() : null;
        if (!m) continue;
        used.push(r);
        masks.push(m);
      }
      if (!masks.some(Boolean))
        throw new InvalidArgumentError(
          'masked head training rows',
          'defect rows with masks (loadMask: synthetic defects and masked real defects)',
          `${rows.length - used.length} defect rows without a mask`,
        );
      const tapMaps = await maps.of(used, taps, o.signal);
      const [h, w] = patchGrid(tapMaps[0]);
      const samples = tapMaps.map((m, i) => ({
        maps: m,
        cells: masks[i] ? maskToGrid(masks[i]!, pre, h, w) : new Float32Array(h * w),
      }));
      const { head, history, stopped, defectCells } = await trainMaskedHead(
        samples,
        { ...opts, taps },
        [pre.height, pre.width],
        {
          signal: o.signal,
          onEpoch: (e) =>
            o.onProgress?.({
              stage: 'train',
              done: e.epoch,
              total: e.epochs,
              unit: 'epochs',
              detail: { loss: e.loss },
            }),
        },
      );
      return maskedResult(head, maps, o.signal, { history, stopped, defectCells });
    },
  };
}

/** A saved masked head as a "trainer" (re-evaluation). */
export function savedMaskedTrainer(a: HeadArtifacts, maps: TapMaps): HeadTrainer {
  return {
    kind: 'masked',
    unsupervised: true,
    async train(_rows, o): Promise<TrainedHead> {
      await ensureTf();
      return maskedResult(MaskedHead.fromArtifacts(a), maps, o.signal);
    },
  };
}
