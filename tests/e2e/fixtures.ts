import { test as base, expect } from '@playwright/test';

/**
 * Every e2e test fails on an uncaught error in the page or one of its workers (a comlink "Unserializable return
 * value", a rejected promise nobody awaited): such errors do not break the flow under test, so nothing else would
 * notice them, yet users see them in the console and they hide real bugs.
 */
export const test = base.extend<{ pageErrors: string[] }>({
  pageErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(`${e.name}: ${e.message}`));
      await use(errors);
      expect(errors, 'uncaught errors in the page or its workers').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
export type { Locator, Page } from '@playwright/test';
