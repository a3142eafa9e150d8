// Installs node_modules on a fresh clone. onnxruntime-node's install script downloads CUDA files and fails
// offline; its CPU binary is bundled, so the script is skipped.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

export function ensureDeps() {
  if (existsSync('node_modules/.package-lock.json') && existsSync('node_modules/vite')) return;
  const cmd = existsSync('package-lock.json') ? 'npm ci' : 'npm install';
  console.log(`Installing dependencies (${cmd})…`);
  execSync(`${cmd} --no-audit --no-fund`, {
    stdio: 'inherit',
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
  });
}
