export * from './bytes.ts';
export * from './rle.ts';
export * from './setup.ts';
export * from './codec.ts';
export * from './summary.ts';
export * from './bundle.ts';
