import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites start real processes and bind real ports; two cores.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ["default"],
    setupFiles: ["test/support/fast-check-setup.ts"],
    // The process tests run dist/cli/main.js; compile src/ once before any suite.
    // The partition suite needs iproute2 and iptables, the clock suite libfaketime: installed (as root) or a failure.
    globalSetup: ["test/support/build-once.ts", "test/support/netns-tools.ts", "test/support/faketime.ts"],
  },
});
