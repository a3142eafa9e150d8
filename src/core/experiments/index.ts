/** The experiment runner's public API (shared by the experiments worker and the Node CLI/server). */
export * from './types.ts';
export * from './grid.ts';
export * from './baselines.ts';
export * from './stream.ts';
export * from './threshold.ts';
export * from './table.ts';
export * from './store.ts';
export * from './runner.ts';
export * from './evaluate.ts';
