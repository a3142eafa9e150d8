/** The synth worker: generators run here so a batch of defects never blocks the UI. */
import { exposeEngine } from './host.ts';
import { createSynthEngine } from './synth.engine.ts';

exposeEngine(createSynthEngine());
