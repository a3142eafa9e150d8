import { describe, expect, it } from 'vitest';
import { currentTfBackend, ensureTf, initTf, tf } from '../../src/runtime/tf.ts';

describe('tfjs door (Node)', () => {
  it("'auto' picks WASM in Node, gradients are registered, and an explicit CPU choice is honoured", async () => {
    expect(await initTf('auto')).toBe('wasm');
    expect(currentTfBackend()).toBe('wasm');
    // Training needs gradients, which tfjs-core leaves out of its default entry point.
    const g = tf.grad((x: tf.Tensor) => tf.div(tf.sum(tf.square(x)), 2))(tf.tensor1d([1, 2, 3]));
    expect(Array.from(await g.data())).toEqual([1, 2, 3]);
    expect(await initTf('cpu')).toBe('cpu');
    expect(currentTfBackend()).toBe('cpu');
    // A trainer inside a run keeps the caller's explicit choice ('auto' here would switch back to WASM).
    expect(await ensureTf()).toBe('cpu');
    expect(currentTfBackend()).toBe('cpu');
  });

  it('an explicit backend that cannot start is a named error, not a silent fallback', async () => {
    await expect(initTf('webgpu')).rejects.toThrow(
      /TfBackendError: the tfjs webgpu backend could not start.*fix:/,
    );
  });
});
