import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Integration suites start Kamailio, namespaces and chroot builds: they
    // share the machine, so files run one or two at a time.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 300_000,
    // The handlers' JSON logs are for CloudWatch; tests read results.
    env: { POWERTOOLS_LOG_LEVEL: 'SILENT' },
  },
});
