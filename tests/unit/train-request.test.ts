/**
 * The Train tab's request builder (`src/ui/train/request.ts`): each head trains with its own schema defaults.
 * The bug it fixes: the tab sent the BCE defaults (50 epochs, lr 1e-4) in `cse`, so `CSE_DEFAULTS` never applied.
 * The reference for "the CSE defaults" is what the CSE head itself resolves with no options (`cseOptions()`).
 */
import { describe, expect, it } from 'vitest';
import { SUPERVISED_DEFAULTS, supervisedOptions } from '../../src/runtime/heads/common.ts';
import { CSE_DEFAULTS, cseOptions } from '../../src/runtime/heads/cse.ts';
import { buildTrainRequest, initialHeadOptions, type TrainForm } from '../../src/ui/train/request.ts';

function form(over: Partial<TrainForm> = {}): TrainForm {
  return {
    datasetId: 'ds',
    head: 'cse',
    tfBackend: 'wasm',
    options: initialHeadOptions(),
    cseGenerators: 'memseg, blur',
    stream: { mode: 'concat', realProbability: 1 / 32, synthetic: true, real: true },
    threshold: { mode: 'val-best-f1', maxFpr: 0.05 },
    backboneId: 'tiny-resnet',
    ...over,
  };
}

describe('Train tab request builder', () => {
  it('a CSE request carries the CSE head’s own defaults, not the BCE ones', () => {
    const req = buildTrainRequest(form());
    expect(req.supervised).toBeUndefined();
    const { generators, ...cse } = req.cse!;
    expect(generators).toEqual(['memseg', 'blur']);
    // What the head trains with equals what it would pick by itself.
    expect(cseOptions(cse)).toEqual(cseOptions());
    expect(cse.epochs).toBe(CSE_DEFAULTS.epochs);
    expect(cse.learningRate).toBe(CSE_DEFAULTS.learningRate);
    expect(cse.epochs).not.toBe(SUPERVISED_DEFAULTS.epochs);
    expect(cse.learningRate).not.toBe(SUPERVISED_DEFAULTS.learningRate);
    expect(req.name).toBe('cse · tiny-resnet · seed 0');
    expect(req.tfBackend).toBe('wasm');
  });

  it('editing the BCE form never leaks into the CSE request (one value set per head)', () => {
    const options = initialHeadOptions();
    options.bce.epochs = 7;
    options.bce.learningRate = 0.5;
    const cse = buildTrainRequest(form({ options })).cse!;
    expect([cse.epochs, cse.learningRate]).toEqual([CSE_DEFAULTS.epochs, CSE_DEFAULTS.learningRate]);
    const bce = buildTrainRequest(form({ head: 'bce', options }));
    expect(bce.cse).toBeUndefined();
    expect(supervisedOptions(bce.supervised)).toEqual({
      ...SUPERVISED_DEFAULTS,
      epochs: 7,
      learningRate: 0.5,
    });
  });

  it('BCE and spatial get the supervised defaults; spatial has no hidden layer to send', () => {
    expect(supervisedOptions(buildTrainRequest(form({ head: 'bce' })).supervised)).toEqual(
      SUPERVISED_DEFAULTS,
    );
    const spatial = buildTrainRequest(form({ head: 'spatial' })).supervised!;
    expect(spatial.hidden).toBeUndefined();
    expect(supervisedOptions(spatial)).toEqual(SUPERVISED_DEFAULTS);
  });

  it('threshold policy from the schema; bad boxes fail with the field’s name before anything is sent', () => {
    expect(buildTrainRequest(form({ threshold: { mode: 'val-fpr', maxFpr: 0.01 } })).threshold).toEqual({
      mode: 'val-fpr',
      maxFpr: 0.01,
    });
    expect(buildTrainRequest(form({ threshold: { mode: 'test-best-f1', maxFpr: 0.01 } })).threshold).toEqual({
      mode: 'test-best-f1',
    });
    const options = initialHeadOptions();
    options.cse.epochs = NaN; // an emptied number box
    expect(() => buildTrainRequest(form({ options }))).toThrow(
      'cse.epochs must be an integer in [1, 1000], got NaN',
    );
    options.cse.epochs = 5;
    options.cse.k = 0;
    expect(() => buildTrainRequest(form({ options }))).toThrow('cse.k must be an integer in [1, 64], got 0');
    expect(() => buildTrainRequest(form({ threshold: { mode: 'val-fpr', maxFpr: 2 } }))).toThrow(
      'threshold.maxFpr must be a number in [0, 1], got 2',
    );
  });

  it('no generators named: the engine’s own default applies (the key is left out)', () => {
    expect(buildTrainRequest(form({ cseGenerators: ' , ' })).cse).not.toHaveProperty('generators');
  });
});
