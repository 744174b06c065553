import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "pooler/**/*.test.ts", "app/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Two cores: PostgreSQL, the pooler and the clients share them. Two test files at a time.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
