/**
 * Where the views meet the share link. Each view publishes its shareable settings into `published` while it is
 * mounted (the last values stay after it unmounts, so "Share setup" works from any tab), and takes what an opened
 * link set from `pending` the next time it mounts (or at once, when it is mounted): tabs unmount when hidden, so a
 * setup cannot be pushed into a view that is not there.
 */
import type { GridSpec } from '../../core/experiments/grid.ts';
import type { SharedDiffusion, SharedGenerate, SharedTrain } from '../../core/share/setup.ts';

export const published = $state({
  generate: null as SharedGenerate | null,
  diffusion: null as SharedDiffusion | null,
  train: null as SharedTrain | null,
  /** The experiment grid of the Train tab's experiments panel. */
  grid: null as GridSpec | null,
  /** Where the chosen diffusion model comes from and its size (its manifest's files), published by its panel. */
  diffusionModel: null as { source: string; bytes: number } | null,
});

export const pending = $state({
  generate: null as SharedGenerate | null,
  diffusion: null as SharedDiffusion | null,
  train: null as SharedTrain | null,
  grid: null as GridSpec | null,
});

/** Takes (and clears) one pending section: a view applies a link's settings once, then the user owns them. */
export function takePending<K extends keyof typeof pending>(key: K): (typeof pending)[K] {
  const v = pending[key];
  if (v) pending[key] = null;
  return v ? ($state.snapshot(v) as (typeof pending)[K]) : null;
}
