/**
 * The Train tab's form → `TrainRequest`, pure. Every head keeps its own option values, started from its own
 * schema defaults (`core/experiments/head-options.ts`), and only the chosen head's options travel: the CSE head
 * gets CSE's defaults (20 epochs, lr 1e-3), never the BCE head's 50 epochs and lr 1e-4.
 */
import { HEAD_OPTION_FIELDS, headDefaults } from '../../core/experiments/head-options.ts';
import { thresholdPolicy } from '../../core/experiments/threshold-policy.ts';
import { resolveFields } from '../../core/fields.ts';
import type { SupervisedOptions } from '../../runtime/heads/common.ts';
import type { CseOptions } from '../../runtime/heads/cse.ts';
import type { PatchCoreOptions } from '../../runtime/heads/patchcore.ts';
import type { HeadKind, TrainRequest } from '../../../workers/train.engine.ts';

export const TRAIN_HEADS: readonly { value: HeadKind; label: string }[] = [
  { value: 'bce', label: 'BCE classifier (pooled)' },
  { value: 'spatial', label: 'Spatial (1×1 conv, heat map)' },
  { value: 'cse', label: 'CSE (no real defects needed)' },
  { value: 'patchcore', label: 'PatchCore (normals only, heat map)' },
  { value: 'masked', label: 'Mask-supervised (synthetic masks as pixel labels)' },
];

/**
 * CSE's on-the-fly defect kinds, the paper's three with probability 1/3 each (the train engine's own default):
 * MemSeg's structure source, its texture source, and blur.
 */
export const CSE_GENERATORS_DEFAULT = 'structure,texture,blur';

export type HeadOptionValues = Record<HeadKind, Record<string, unknown>>;

/** Each head's form values, at its schema defaults. */
export function initialHeadOptions(): HeadOptionValues {
  return {
    bce: headDefaults('bce'),
    spatial: headDefaults('spatial'),
    cse: headDefaults('cse'),
    patchcore: headDefaults('patchcore'),
    masked: headDefaults('masked'),
  };
}

export interface TrainForm {
  datasetId: string;
  head: HeadKind;
  tfBackend?: TrainRequest['tfBackend'];
  /** Form values per head; only `options[head]` is read. */
  options: HeadOptionValues;
  /** CSE's generators, comma separated. */
  cseGenerators: string;
  stream: NonNullable<TrainRequest['stream']>;
  threshold: { mode: string; maxFpr: number };
  /** Names the run (`cse · mobilenetv2-12-int8 · seed 0`). */
  backboneId: string;
}

/**
 * The request the Train button sends. Options are checked against the head's schema first, so an empty or
 * out-of-range box fails here with the field's name (`cse.epochs must be an integer in [1, 1000]`).
 */
export function buildTrainRequest(f: TrainForm): TrainRequest {
  const options = resolveFields(HEAD_OPTION_FIELDS[f.head], f.options[f.head], f.head);
  const seed = options.seed as number;
  const req: TrainRequest = {
    datasetId: f.datasetId,
    head: f.head,
    tfBackend: f.tfBackend,
    stream: { ...f.stream },
    threshold: thresholdPolicy(f.threshold.mode, f.threshold.maxFpr),
    name: `${f.head} · ${f.backboneId} · seed ${seed}`,
  };
  if (f.head === 'cse') {
    const generators = f.cseGenerators
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    req.cse = { ...(options as Partial<CseOptions>), ...(generators.length ? { generators } : {}) };
  } else if (f.head === 'patchcore') req.patchcore = options as Partial<PatchCoreOptions>;
  else req.supervised = options as Partial<SupervisedOptions>;
  return req;
}
