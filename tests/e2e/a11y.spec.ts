/**
 * Accessibility of every main view with axe-core (WCAG 2 A/AA rules, colour contrast included) at 1280×720 in the
 * light and the dark theme: zero serious or critical violations. Also: every tab is reachable with the keyboard
 * and shows a visible focus ring, and a file name that looks like HTML is rendered as text.
 */
import AxeBuilder from '@axe-core/playwright';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encode } from 'fast-png';
import { expect, test, type Page } from './fixtures.ts';
import { importIntoNewDataset, waitForApp } from './helpers.ts';

const VIEWS = ['data', 'generate', 'models', 'train', 'system'] as const;

async function seriousViolations(page: Page): Promise<string[]> {
  const r = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return r.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) =>
        `${v.id} (${v.impact}): ${v.nodes
          .map((n) => n.target.join(' '))
          .slice(0, 4)
          .join(' | ')}`,
    );
}

for (const scheme of ['light', 'dark'] as const) {
  test(`axe: no serious or critical violation on any main view, ${scheme} theme, 1280×720`, async ({
    page,
  }) => {
    await page.setViewportSize({ width: 1280, height: 720 });
    await page.emulateMedia({ colorScheme: scheme });
    await page.goto('/');
    await waitForApp(page);
    const found: Record<string, string[]> = {};
    for (const v of VIEWS) {
      await page.locator(`[data-tab="${v}"]`).click();
      if (v === 'generate') await expect(page.getByTestId('painter-canvas')).toBeVisible({ timeout: 60_000 });
      if (v === 'data') await expect(page.getByTestId('count-total')).toBeVisible();
      // Let late content (lists, capability rows) settle before the scan.
      await page.waitForTimeout(300);
      const bad = await seriousViolations(page);
      if (bad.length) found[v] = bad;
    }
    expect(found).toEqual({});
  });
}

test('every tab is reachable by keyboard with a visible focus ring', async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.goto('/');
  await waitForApp(page);
  const reached = new Set<string>();
  for (let i = 0; i < 40 && reached.size < VIEWS.length; i++) {
    await page.keyboard.press('Tab');
    const info = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      if (!el) return null;
      const s = getComputedStyle(el);
      return {
        tab: el.getAttribute('data-tab'),
        ring: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none',
      };
    });
    if (info?.tab) {
      expect(info.ring, `focus ring on tab ${info.tab}`).toBe(true);
      reached.add(info.tab);
    }
  }
  expect([...reached].sort()).toEqual([...VIEWS].sort());
  await page.keyboard.press('Enter');
  await expect(page.locator('[aria-current="page"]')).toBeFocused();
});

test('a file name containing <img src=x onerror=alert(1)> renders as text', async ({ page }) => {
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto('/');
  await waitForApp(page);
  const name = '<img src=x onerror=alert(1)>.png';
  const dir = mkdtempSync(path.join(tmpdir(), 'dl-xss-'));
  const file = path.join(dir, name);
  writeFileSync(
    file,
    encode({ width: 16, height: 16, channels: 1, depth: 8, data: new Uint8Array(256).fill(128) }),
  );
  await importIntoNewDataset(page, 'import-files', file, 1);
  await page.locator('[data-tab="generate"]').click();
  const select = page.getByTestId('paint-image');
  await expect(select.locator('option').first()).toContainText('<img src=x onerror=alert(1)>');
  await page.locator('[data-tab="data"]').click();
  await expect(page.getByText('<img src=x onerror=alert(1)>', { exact: false }).first()).toBeAttached();
  expect(await page.locator('img[src="x"]').count()).toBe(0);
  expect(dialogs).toEqual([]);
});
