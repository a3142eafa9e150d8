/**
 * A trained BCE head holds its variables and nothing else: train + dispose leaves tfjs's tensor count where it
 * was. The full-size long session (tests/e2e/faults/long-run.spec.ts, `DL_FAULTS_LONG=full`) found 4 tensors
 * left per MLP head trained in a grid: the typed-array trainer's weights were assigned to the variables from
 * tensors nobody disposed.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { trainBceHead } from '../../src/runtime/heads/bce.ts';
import { initTf, tf } from '../../src/runtime/tf.ts';

function rows(n: number, dim: number, seed: number) {
  const rng = new Rng(seed);
  const features = Array.from({ length: n }, (_, i) =>
    Float32Array.from({ length: dim }, () => rng.normal() + (i % 2) * 0.8),
  );
  return { features, labels: features.map((_, i) => i % 2) };
}

describe('BCE head memory', () => {
  for (const hidden of [0, 8])
    it(`train + dispose leaves no tfjs tensor behind (hidden ${hidden})`, async () => {
      await initTf('cpu');
      const { features, labels } = rows(24, 6, hidden);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        const { head } = await trainBceHead(features, labels, { hidden, epochs: 2, seed: i });
        expect((await head.predict(features.slice(0, 2))).length).toBe(2);
        head.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
    });
});
