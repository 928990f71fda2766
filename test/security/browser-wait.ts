import type { Page } from 'playwright-core';

/**
 * Polls an expression from here until it is true. page.waitForFunction compiles its predicate
 * inside the page, with the eval that the editor's Content-Security-Policy refuses; page.evaluate
 * goes through the debugger, which the policy does not govern, and the page keeps its policy.
 */
export async function waitUntil(page: Page, expression: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await page.evaluate(expression).catch(() => false)) !== true) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
