/** Cosine similarity of two equal-length vectors (not a test file: the feature-agreement tests share it). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < a.length; k++) {
    d += a[k] * b[k];
    na += a[k] ** 2;
    nb += b[k] ** 2;
  }
  return d / Math.sqrt(na * nb);
}
