// Makes sure Debian's Chromium is present for the Playwright tests (Playwright cannot download a browser
// offline). Installs it with apt when running as root; otherwise prints the exact command and fails.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

export function ensureChromium() {
  const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (existsSync(path)) return path;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    console.error(
      `Chromium is missing at ${path}. Install it with:\n  sudo apt-get update && sudo apt-get install -y chromium\n` +
        'or point CHROMIUM_PATH at an existing Chromium/Chrome binary.',
    );
    process.exit(1);
  }
  console.log('Installing Chromium with apt-get (needed for the browser tests)…');
  execSync('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium', {
    stdio: 'inherit',
  });
  if (!existsSync(path)) {
    console.error(
      `apt-get finished but ${path} is still missing; set CHROMIUM_PATH to your Chromium binary.`,
    );
    process.exit(1);
  }
  return path;
}

if (import.meta.url === `file://${process.argv[1]}`) ensureChromium();
