// pgbench through the pooler in every pool mode and protocol, against a PostgreSQL 13 of its own
// with max_connections = 100: 200 clients must be served by a pool of 20 with no failures.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBenchServer, type BenchServer } from "../support/bench-server.ts";
import { pgbench } from "../support/clients.ts";

let bench: BenchServer;

beforeAll(async () => {
  bench = await startBenchServer("pooler-pgbench");
}, 120_000);

afterAll(() => bench?.stop());

function withPooler<T>(mode: string, poolSize: number, fn: (url: string) => Promise<T>): Promise<T> {
  return bench.withPooler({ POOL_MODE: mode, DEFAULT_POOL_SIZE: String(poolSize) }, fn);
}

describe.each(["session", "transaction", "statement"])("pgbench in %s mode", (mode) => {
  it.each(["simple", "extended"])("-S -M %s: 0 failed transactions", (protocol) =>
    withPooler(mode, 5, async (url) => {
      const r = await pgbench(url, ["-n", "-S", "-M", protocol, "-c", "8", "-j", "2", "-T", "2"]);
      expect(r.failed, r.output).toBe(0);
      expect(r.processed).toBeGreaterThan(100);
    }),
  );
});

describe("pgbench, heavier", () => {
  it("TPC-B (multi-statement transactions) in transaction mode: 0 failed", () =>
    withPooler("transaction", 5, async (url) => {
      const r = await pgbench(url, ["-n", "-c", "10", "-j", "2", "-T", "3"]);
      expect(r.failed, r.output).toBe(0);
      expect(r.processed).toBeGreaterThan(50);
    }));

  it("-M prepared in session mode: 0 failed", () =>
    withPooler("session", 10, async (url) => {
      const r = await pgbench(url, ["-n", "-S", "-M", "prepared", "-c", "10", "-j", "2", "-T", "2"]);
      expect(r.failed, r.output).toBe(0);
    }));

  it("200 clients on a pool of 20 while the server allows 100 connections: 0 failed", async () => {
    const direct = await pgbench(bench.url, ["-n", "-S", "-c", "200", "-j", "2", "-T", "1"]);
    // the server alone refuses that many clients ...
    expect(direct.output).toMatch(/too many clients|remaining connection slots/);
    // ... the pooler serves them all
    await withPooler("transaction", 20, async (url) => {
      const r = await pgbench(url, ["-n", "-S", "-c", "200", "-j", "2", "-T", "4"]);
      expect(r.failed, r.output).toBe(0);
      expect(r.processed).toBeGreaterThan(1000);
    });
  }, 60_000);
});
