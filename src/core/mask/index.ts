/** Pure mask kernels for the painter, the mask library and the generators' region masks (see README.md). */
export * from './stamp.ts';
export * from './morph.ts';
export * from './ops.ts';
export * from './png.ts';
