import type { Reporter, SerializedError, TestModule } from 'vitest/node';

export interface RunCounts {
  passed: number;
  /** Failed tests, plus every file or suite that failed on its own (import, beforeAll, afterAll) and every unhandled error. */
  failed: number;
  skipped: number;
}

/**
 * Counts a run for the closing line. A file that fails to import, or a suite whose beforeAll throws,
 * leaves its tests "skipped" or never collected: such a file or suite counts as one failure, so a
 * run with broken files can never end in "0 failed".
 */
export function countRun(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError> = []): RunCounts {
  const counts: RunCounts = { passed: 0, failed: unhandledErrors.length, skipped: 0 };
  for (const module of modules) {
    for (const test of module.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') counts.passed++;
      else if (state === 'failed') counts.failed++;
      else counts.skipped++;
    }
    let own = module.errors().length > 0 ? 1 : 0;
    for (const suite of module.children.allSuites()) if (suite.errors().length > 0) own++;
    // A file reported failed with no failing test and no error of its own still failed.
    if (own === 0 && module.state() === 'failed' && !hasFailedTest(module)) own = 1;
    counts.failed += own;
  }
  return counts;
}

function hasFailedTest(module: TestModule): boolean {
  for (const test of module.children.allTests()) if (test.result().state === 'failed') return true;
  return false;
}

/** Ends the run with the plain "N passed, N failed" line that CI reads. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    const { passed, failed, skipped } = countRun(modules, unhandledErrors);
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  }
}
