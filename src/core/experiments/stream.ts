/**
 * ISP-AD mixed supervision: a balanced stream of normal and synthetic-defect samples into which a real defect
 * is injected with probability p per draw (1/32 by default). Returns which pool and which item each draw uses;
 * the trainer consumes the rows in this order.
 */
import { InvalidArgumentError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import type { StreamMode } from './types.ts';

export type { StreamMode };

export type StreamSource = 'normal' | 'synthetic' | 'real';

export interface StreamDraw {
  source: StreamSource;
  index: number;
}

/**
 * `length` draws. With probability `p` (and a non-empty real pool) a real defect; otherwise normal and
 * synthetic alternate in shuffled pairs so the two stay balanced whatever p is. Each pool is walked in a
 * reshuffled order (every item before any repeats). An empty synthetic pool makes the stream normal + real.
 */
export function mixedSupervisionStream(
  pools: { normal: number; synthetic: number; real: number },
  length: number,
  rng: Rng,
  p = 1 / 32,
): StreamDraw[] {
  if (!(p >= 0 && p <= 1)) throw new InvalidArgumentError('p', 'in [0, 1]', p);
  if (!Number.isInteger(length) || length < 0)
    throw new InvalidArgumentError('length', 'an integer ≥ 0', length);
  if (pools.normal <= 0)
    throw new InvalidArgumentError('pools.normal', 'at least 1 normal image', pools.normal);
  const cursors = new Map<StreamSource, { order: number[]; at: number }>();
  const take = (source: StreamSource): StreamDraw => {
    let c = cursors.get(source);
    if (!c || c.at >= c.order.length) {
      c = { order: rng.shuffle(Array.from({ length: pools[source] }, (_, i) => i)), at: 0 };
      cursors.set(source, c);
    }
    return { source, index: c.order[c.at++] };
  };
  const out: StreamDraw[] = [];
  let pair: StreamSource[] = [];
  while (out.length < length) {
    if (pools.real > 0 && rng.bernoulli(p)) {
      out.push(take('real'));
      continue;
    }
    if (pair.length === 0)
      pair = pools.synthetic > 0 ? rng.shuffle<StreamSource>(['normal', 'synthetic']) : ['normal'];
    out.push(take(pair.shift() as StreamSource));
  }
  return out;
}

export interface StreamPools<T> {
  normal: readonly T[];
  synthetic: readonly T[];
  real: readonly T[];
}

export interface StreamOptions {
  mode: StreamMode;
  /** Real-defect probability per draw in `mixed` mode. */
  realProbability?: number;
  /** Draws in `mixed` mode; default 2 × max(normals, synthetic). */
  length?: number;
}

/** Rows and labels (0 normal, 1 defect) of a training set; `sources` says which pool each row came from. */
export function composeTrainingSet<T>(
  pools: StreamPools<T>,
  o: StreamOptions,
  rng: Rng,
): { rows: T[]; labels: number[]; sources: ('normal' | 'synthetic' | 'real')[] } {
  if (o.mode === 'concat') {
    const rows = [...pools.normal, ...pools.synthetic, ...pools.real];
    const sources = [
      ...pools.normal.map(() => 'normal' as const),
      ...pools.synthetic.map(() => 'synthetic' as const),
      ...pools.real.map(() => 'real' as const),
    ];
    return { rows, labels: sources.map((s) => (s === 'normal' ? 0 : 1)), sources };
  }
  const length = o.length ?? 2 * Math.max(pools.normal.length, pools.synthetic.length);
  const draws = mixedSupervisionStream(
    { normal: pools.normal.length, synthetic: pools.synthetic.length, real: pools.real.length },
    length,
    rng,
    o.realProbability ?? 1 / 32,
  );
  return {
    rows: draws.map((d) => pools[d.source][d.index]),
    labels: draws.map((d) => (d.source === 'normal' ? 0 : 1)),
    sources: draws.map((d) => d.source),
  };
}
