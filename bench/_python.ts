/**
 * The Python that has a module, for the references under tests/reference: `DL_PYTHON` if set, else `python3` on
 * the PATH, else Debian's `/usr/bin/python3` (a virtual environment on the PATH may lack Debian's python3-torch or
 * python3-sklearn). Answers the interpreter or why none fits.
 */
import { execFileSync } from 'node:child_process';

export function pythonWith(module: string): { python: string } | { skipped: string } {
  const candidates = [process.env.DL_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => !!c);
  for (const python of candidates) {
    try {
      execFileSync(python, ['-c', `import ${module}`], { stdio: 'ignore', timeout: 60_000 });
      return { python };
    } catch {
      // Try the next interpreter.
    }
  }
  return {
    skipped: `python3 -c "import ${module}" failed for ${candidates.join(', ')} (install python3-${module === 'sklearn' ? 'sklearn' : module}, or set DL_PYTHON)`,
  };
}
