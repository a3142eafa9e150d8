/**
 * The bundle tool's errors: `DefectLabError`s whose message names the file (or tensor, op, flag) and the fix,
 * e.g. `UnsupportedOpError: unet/model.onnx: --quantize int4 cannot handle QLinearConv … — fix: …`.
 */
import { DefectLabError } from '../../src/core/errors.ts';

export class BundleError extends DefectLabError {
  constructor(code: string, problem: string, fix: string) {
    super(code, problem, fix);
  }
}

/** A bad command line: names the flag and what it accepts. */
export class UsageError extends BundleError {
  constructor(problem: string) {
    super(
      'UsageError',
      problem,
      'run npm run models -- help for the commands and flags (docs/models.md has recipes)',
    );
  }
}
