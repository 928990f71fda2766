/**
 * The closing "N passed, N failed" line that CI reads, on a real vitest run of deliberately broken
 * files (test/support/reporter-fixtures): a file that cannot be imported and suites whose beforeAll
 * throws must count as failures even though their tests end "skipped" or are never collected.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './golden.ts';

const run = promisify(execFile);
const CONFIG = path.join(REPO_ROOT, 'test/support/reporter-fixtures/vitest.config.ts');

async function closingLine(filter: string[]): Promise<{ line: string; code: number }> {
  const vitest = path.join(REPO_ROOT, 'node_modules/vitest/vitest.mjs');
  try {
    const { stdout } = await run(process.execPath, [vitest, 'run', '--config', CONFIG, ...filter], { cwd: REPO_ROOT, env: { ...process.env, CI: 'true' } });
    return { line: stdout.trim().split('\n').at(-1)!, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; code: number };
    return { line: e.stdout.trim().split('\n').at(-1)!, code: e.code };
  }
}

describe('summary line', () => {
  it.each([
    [['passing.fixture'], '2 passed, 0 failed', 0],
    [['one-failing.fixture'], '1 passed, 1 failed', 1],
    [['suite-setup.fixture'], '0 passed, 1 failed, 5 skipped', 1],
    [['file-setup.fixture'], '0 passed, 1 failed, 2 skipped', 1],
    [['import-error.fixture'], '0 passed, 1 failed', 1],
    [['skipped.fixture'], '1 passed, 0 failed, 1 skipped', 0],
  ])('%j ends with "%s"', async (filter, want, code) => {
    const got = await closingLine(filter);
    expect(got.line).toBe(want);
    expect(got.code).toBe(code);
  });

  it('counts every broken file of a whole run', async () => {
    expect((await closingLine([])).line).toBe('4 passed, 4 failed, 8 skipped');
  });
});
