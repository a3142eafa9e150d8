// `npm start`: install, build (tiny models + app), serve the production build on http://localhost:4173.
import { execSync } from 'node:child_process';
import { ensureDeps } from './ensure-deps.mjs';

ensureDeps();
const run = (cmd) => execSync(cmd, { stdio: 'inherit' });
run('npm run build');
const port = process.env.PORT ?? '4173';
console.log(`\nDefectLab: open http://localhost:${port} (the sample dataset is created on first visit)\n`);
run(`npx vite preview --port ${port} --strictPort --host localhost`);
