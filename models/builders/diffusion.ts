/** Builds the tiny SDXL-inpaint / SD-inpaint ONNX models (owned by the diffusion work). */
export async function buildDiffusionTinyModels(_outDir: string): Promise<string[]> {
  return [];
}
