/**
 * The Train tab's float-path choice reaches the features worker: the real MobileNetV2-int8 (../shared) picked
 * as a file and loaded on WASM with "fp32" runs its float path — as the worker reports it
 * (`BackboneInfo.floatPath`), shown beside the choice. ("auto"'s measurement and its reason are
 * float-path.spec.ts's; the outcome line's wording is tests/unit/float-path-choice.test.ts's.)
 */
import { expect, test } from './fixtures.ts';
import { MOBILENET_INT8, waitForApp } from './helpers.ts';

test('the float-path choice is sent with the load and the outcome says what runs', async ({ page }) => {
  await page.goto('/');
  await waitForApp(page);
  await page.locator('[data-tab="train"]').click();
  await page.getByTestId('backbone-file').setInputFiles(MOBILENET_INT8);
  await page.getByTestId('backbone-device').selectOption('wasm');
  const choice = page.getByTestId('backbone-floatpath-choice');
  await expect(choice).toHaveValue('auto');
  const outcome = page.getByTestId('backbone-floatpath-outcome');

  // One load keeps it cheap: "auto" would have timed both candidates and said "auto picked …"; a plain "runs its
  // float path (fp32)" is the choice reaching the worker.
  await choice.selectOption('fp32');
  await page.getByTestId('backbone-load').click();
  await expect(outcome).toHaveAttribute('data-path', 'fp32', { timeout: 120_000 });
  await expect(outcome).toHaveText('runs its float path (fp32)');
  await expect(page.getByTestId('backbone-backend')).toHaveText('wasm');
});
