/** Builds the tiny ResNet-shaped backbone ONNX model (owned by the features work). */
export async function buildBackboneTinyModels(_outDir: string): Promise<string[]> {
  return [];
}
