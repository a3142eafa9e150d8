/**
 * Head option schemas: one per head (limits, defaults, labels). The runtime heads take their defaults from here
 * (`SUPERVISED_DEFAULTS`, `CSE_DEFAULTS`), the Train tab and the experiment runner draw their forms from them,
 * and the grid config's `headOptions` block is checked against them, so each head gets its own defaults
 * everywhere (the CSE head once trained with the BCE head's 50 epochs and lr 1e-4 in the app).
 */
import { schemaDefaults, type FieldSpec, type FormSchema } from '../fields.ts';
import type { HeadChoice } from './types.ts';

/** Seeds as the grid accepts them (signed 32-bit). */
const seedField: FieldSpec = {
  key: 'seed',
  kind: 'number',
  min: -2147483648,
  max: 2147483647,
  integer: true,
  default: 0,
  label: 'Seed',
  help: 'seeds the initial weights, the validation split and the shuffling',
};

const epochsField = (d: number): FieldSpec => ({
  key: 'epochs',
  kind: 'number',
  min: 1,
  max: 1000,
  integer: true,
  default: d,
  label: 'Epochs',
  help: 'passes over the training set (early stopping may end sooner)',
});

const learningRateField = (d: number): FieldSpec => ({
  key: 'learningRate',
  kind: 'number',
  min: 0,
  max: 1,
  exclusiveMin: true,
  default: d,
  label: 'LR',
  help: 'Adam learning rate',
});

/** BCE and spatial: the supervised minibatch loop (`fitBinary`); defaults per issue 5. */
const supervisedFields = (withHidden: boolean): FieldSpec[] => [
  epochsField(50),
  learningRateField(1e-4),
  seedField,
  {
    key: 'batchSize',
    kind: 'number',
    min: 1,
    max: 4096,
    integer: true,
    default: 32,
    label: 'Batch',
    help: 'rows per Adam step',
  },
  ...(withHidden
    ? [
        {
          key: 'hidden',
          kind: 'number',
          min: 0,
          max: 4096,
          integer: true,
          default: 0,
          label: 'Hidden units (0 = linear)',
          help: '0: logistic regression; > 0: one hidden ReLU layer of this width',
        } satisfies FieldSpec,
      ]
    : []),
  {
    key: 'classWeighting',
    kind: 'boolean',
    default: true,
    label: 'class weighting',
    help: 'weight each class by n / (2 · n_class), so an imbalance does not teach "always normal"',
  },
  {
    key: 'validationFraction',
    kind: 'number',
    min: 0,
    max: 0.9,
    default: 0.2,
    label: 'Validation fraction',
    help: 'stratified share held out for early stopping (0 = none)',
    advanced: true,
  },
  {
    key: 'patience',
    kind: 'number',
    min: 1,
    max: 1000,
    integer: true,
    default: 10,
    label: 'Patience',
    help: 'epochs without a validation-loss improvement before stopping',
    advanced: true,
  },
];

export const BCE_FIELDS: FormSchema = supervisedFields(true);
/** The spatial head is a 1×1 conv: it has no hidden layer, but stores `hidden: 0` like the BCE head. */
export const SPATIAL_FIELDS: FormSchema = supervisedFields(false);

/**
 * CSE (Thomine & Snoussi, VISAPP 2024). Recipe defaults follow the authors' code (github.com/SimonThomine/CSE:
 * `trainCSE.py`, `models/fusionEmbedder.py`, `config.yaml`): Adam at 4e-4 with PyTorch's `OneCycleLR`, two fused
 * maps (stride 16 + the upsampled stride 32), a 2 × 2 stride-2 average pool after the embedder, the reconstruction
 * loss on the defect-free image only, and the weights of the epoch with the best validation loss (20 % of the
 * normals held out). Epochs stay at 20 (the authors: 50) for the browser's sake.
 */
export const CSE_FIELDS: FormSchema = [
  epochsField(20),
  {
    ...learningRateField(4e-4),
    help: 'Adam learning rate: the peak of the one-cycle schedule (the paper: 4e-4)',
  },
  seedField,
  {
    key: 'lambda',
    kind: 'number',
    min: 0,
    max: 1000,
    default: 10,
    label: 'λ (reconstruction)',
    help: 'weight of the frozen-decoder reconstruction loss that keeps the embedding from collapsing',
  },
  {
    key: 'k',
    kind: 'number',
    min: 1,
    max: 64,
    integer: true,
    default: 1,
    label: 'k (centroids)',
    help: 'spherical k-means centroids on normal embeddings (k > 1 for textures with several looks)',
  },
  {
    key: 'hidden',
    kind: 'number',
    min: 1,
    max: 4096,
    integer: true,
    default: 128,
    label: 'Hidden units',
    help: 'width of the embedder’s hidden layer',
    advanced: true,
  },
  {
    key: 'embedDim',
    kind: 'number',
    min: 1,
    max: 1024,
    integer: true,
    default: 64,
    label: 'Embedding size',
    help: 'dimension E of the location embeddings',
    advanced: true,
  },
  {
    key: 'stepsPerEpoch',
    kind: 'number',
    min: 1,
    max: 1000,
    integer: true,
    default: 8,
    label: 'Steps per epoch',
    help: 'Adam steps per epoch',
    advanced: true,
  },
  {
    key: 'pairsPerStep',
    kind: 'number',
    min: 1,
    max: 256,
    integer: true,
    default: 8,
    label: 'Pairs per step',
    help: '(normal, normal-or-synthetic) pairs per step, made on the fly',
    advanced: true,
  },
  {
    key: 'margin',
    kind: 'number',
    min: -1,
    max: 1,
    exclusiveMax: true,
    default: 0,
    label: 'Margin',
    help: 'cosine similarity defect locations are pushed below',
    advanced: true,
  },
  {
    key: 'schedule',
    kind: 'enum',
    choices: [
      { value: 'one-cycle', label: 'one-cycle: 30 % cosine warm-up, cosine anneal (the paper)' },
      { value: 'constant', label: 'constant' },
    ],
    default: 'one-cycle',
    label: 'LR schedule',
    help: "PyTorch's OneCycleLR defaults: from lr/25 up to lr, then down to lr/25/1e4",
    advanced: true,
  },
  {
    key: 'fusion',
    kind: 'boolean',
    default: true,
    label: 'two-map fusion',
    help: 'the stride-16 map and the upsampled stride-32 map concatenated (taps s16 + s32, the paper); backbones without those taps use their one spatial map',
  },
  {
    key: 'pool',
    kind: 'number',
    min: 1,
    max: 7,
    integer: true,
    default: 2,
    label: 'avg-pool size',
    help: 'average pooling of the embedding map, p × p with stride p (the paper: 2; 1 = none)',
    advanced: true,
  },
  {
    key: 'reconstruction',
    kind: 'enum',
    choices: [
      { value: 'normal', label: 'defect-free image only (the paper)' },
      { value: 'both', label: 'both images of a pair' },
    ],
    default: 'normal',
    label: 'reconstruction on',
    help: 'which images the reconstruction loss covers (BatchNorm statistics span both either way)',
    advanced: true,
  },
  {
    key: 'bestCheckpoint',
    kind: 'boolean',
    default: true,
    label: 'best-validation checkpoint',
    help: 'keep the weights of the epoch with the lowest validation loss (the paper), not the last',
    advanced: true,
  },
  {
    key: 'validationFraction',
    kind: 'number',
    min: 0,
    max: 0.9,
    default: 0.2,
    label: 'Validation fraction',
    help: 'share of the normals held out for the validation pairs (the paper: 0.2; 0 = no checkpoint)',
    advanced: true,
  },
];

export const KNN_FIELDS: FormSchema = [
  {
    key: 'k',
    kind: 'number',
    min: 1,
    max: 1000,
    integer: true,
    default: 1,
    label: 'k (neighbours)',
    help: 'score = mean cosine distance to the k nearest training normals',
  },
];

/** PatchCore (Roth et al.): the memory bank's size, the local neighbourhood, smoothing and the image score. */
export const PATCHCORE_FIELDS: FormSchema = [
  seedField,
  {
    key: 'coresetRatio',
    kind: 'number',
    min: 0.001,
    max: 1,
    default: 0.1,
    label: 'coreset ratio',
    help: 'share of the normal patches kept in the memory bank (greedy coreset; the paper: 1–10 %)',
  },
  {
    key: 'patchSize',
    kind: 'number',
    min: 1,
    max: 7,
    integer: true,
    default: 3,
    label: 'neighbourhood',
    help: 'locally aware patch features: average over a p × p neighbourhood (the paper: 3)',
  },
  {
    key: 'sigma',
    kind: 'number',
    min: 0,
    max: 32,
    default: 4,
    label: 'σ (map smoothing)',
    help: 'Gaussian smoothing of the anomaly map, in backbone-frame pixels (the paper: 4)',
    advanced: true,
  },
  {
    key: 'neighbours',
    kind: 'number',
    min: 1,
    max: 100,
    integer: true,
    default: 9,
    label: 'b (reweighting neighbours)',
    help: "bank neighbours of the nearest patch in the paper's reweighting",
    advanced: true,
  },
  {
    key: 'imageScore',
    kind: 'enum',
    choices: [
      { value: 'map-max', label: 'maximum of the smoothed map' },
      { value: 'reweighted', label: "the paper's reweighted score" },
    ],
    default: 'map-max',
    label: 'image score',
    help: 'how one image score comes from the patch distances',
    advanced: true,
  },
];

/** The mask-supervised per-location head: trained on synthetic (and masked real) defects' masks as labels. */
export const MASKED_FIELDS: FormSchema = [
  epochsField(30),
  learningRateField(1e-3),
  seedField,
  {
    key: 'hidden',
    kind: 'number',
    min: 0,
    max: 1024,
    integer: true,
    default: 32,
    label: 'hidden units',
    help: 'a hidden 1×1 layer of this width (0: linear)',
  },
];

/** Options of every head of the grid; the mean-distance baseline has none. */
export const HEAD_OPTION_FIELDS: Readonly<Record<HeadChoice, FormSchema>> = {
  bce: BCE_FIELDS,
  spatial: SPATIAL_FIELDS,
  cse: CSE_FIELDS,
  patchcore: PATCHCORE_FIELDS,
  masked: MASKED_FIELDS,
  knn: KNN_FIELDS,
  mean: [],
};

/** Defaults of the supervised heads (the runtime's `SupervisedOptions`; the spatial head keeps `hidden: 0`). */
export interface SupervisedDefaults {
  hidden: number;
  learningRate: number;
  batchSize: number;
  epochs: number;
  classWeighting: boolean;
  seed: number;
  validationFraction: number;
  patience: number;
}

export interface CseDefaults {
  hidden: number;
  embedDim: number;
  lambda: number;
  learningRate: number;
  epochs: number;
  stepsPerEpoch: number;
  pairsPerStep: number;
  margin: number;
  k: number;
  seed: number;
  schedule: 'one-cycle' | 'constant';
  fusion: boolean;
  pool: number;
  reconstruction: 'normal' | 'both';
  bestCheckpoint: boolean;
  validationFraction: number;
}

export const SUPERVISED_DEFAULTS: SupervisedDefaults = schemaDefaults<SupervisedDefaults>(BCE_FIELDS);
export const CSE_DEFAULTS: CseDefaults = schemaDefaults<CseDefaults>(CSE_FIELDS);

/** The form defaults of a head (a fresh object each call: forms edit it). */
export function headDefaults(head: HeadChoice): Record<string, unknown> {
  return schemaDefaults(HEAD_OPTION_FIELDS[head]);
}
