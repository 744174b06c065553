// pgbench through the pooler in every pool mode and protocol, against a PostgreSQL 13 of its own
// with max_connections = 100: 200 clients must be served by a pool of 20 with no failures.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../pooler/config/index.ts";
import { createLogger } from "../../pooler/log.ts";
import { Pooler } from "../../pooler/pooler.ts";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../../scripts/lib/embedded-postgres.ts";
import { createDatabase } from "../../scripts/lib/migrations.ts";
import { pgbench } from "../support/clients.ts";
import { freePort } from "../support/ports.ts";

let pg: EmbeddedPostgres;
let dataDir: string;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-pgbench-"));
  pg = await startEmbeddedPostgres({ dataDir, port: await freePort(), settings: { max_connections: 100 } });
  await createDatabase(pg.url(), "bench");
  const init = await pgbench(pg.url("bench"), ["-i", "-s", "1", "-q"]);
  expect(init.output).toMatch(/done/);
}, 120_000);

afterAll(async () => {
  await pg?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function withPooler<T>(mode: string, poolSize: number, fn: (url: string) => Promise<T>): Promise<T> {
  const { config } = loadConfig({
    env: {
      DATABASE_URL: pg.url("bench"),
      LISTEN_PORT: "0",
      POOL_MODE: mode,
      DEFAULT_POOL_SIZE: String(poolSize),
      MAX_CLIENT_CONN: "1000",
      LOG_CONNECTIONS: "0",
      LOG_DISCONNECTIONS: "0",
    },
  });
  const pooler = await Pooler.start(config, createLogger(0, fs.createWriteStream("/dev/null")));
  try {
    return await fn(`postgresql://postgres:postgres@127.0.0.1:${pooler.port}/bench`);
  } finally {
    await pooler.shutdown(0);
  }
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
    const direct = await pgbench(pg.url("bench"), ["-n", "-S", "-c", "200", "-j", "2", "-T", "1"]);
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
