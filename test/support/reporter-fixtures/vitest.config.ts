// A run of deliberately broken files, driven by test/support/summary-reporter.test.ts.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['*.fixture.ts'],
    pool: 'forks',
    reporters: ['../summary-reporter.ts'],
  },
});
