// A PostgreSQL 13 of its own for pgbench runs (max_connections = 100, so that 200 clients need the
// pooler), with a `bench` database initialised by `pgbench -i -s 1`, and poolers in front of it.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../pooler/config/index.ts";
import { createLogger } from "../../pooler/log.ts";
import { Pooler } from "../../pooler/pooler.ts";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../../scripts/lib/embedded-postgres.ts";
import { createDatabase } from "../../scripts/lib/migrations.ts";
import { pgbench } from "./clients.ts";
import { freePort } from "./ports.ts";

export interface BenchServer {
  /** direct URL of the `bench` database */
  url: string;
  /** Runs `fn` with the URL of a fresh pooler in front of the bench database (env = PgBouncer names). */
  withPooler<T>(env: Record<string, string>, fn: (url: string) => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

export async function startBenchServer(prefix: string): Promise<BenchServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  let pg: EmbeddedPostgres;
  try {
    pg = await startEmbeddedPostgres({ dataDir, port: await freePort(), settings: { max_connections: 100 } });
    await createDatabase(pg.url(), "bench");
    const init = await pgbench(pg.url("bench"), ["-i", "-s", "1", "-q"]);
    if (!/done/.test(init.output)) throw new Error(`pgbench -i failed: ${init.output}`);
  } catch (err) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: pg.url("bench"),
    async withPooler(env, fn) {
      const { config } = loadConfig({
        env: {
          DATABASE_URL: pg.url("bench"),
          LISTEN_PORT: "0",
          MAX_CLIENT_CONN: "1000",
          LOG_CONNECTIONS: "0",
          LOG_DISCONNECTIONS: "0",
          ...env,
        },
      });
      const pooler = await Pooler.start(config, createLogger(0, fs.createWriteStream("/dev/null")));
      try {
        return await fn(`postgresql://postgres:postgres@127.0.0.1:${pooler.port}/bench`);
      } finally {
        await pooler.shutdown(0);
      }
    },
    async stop() {
      await pg.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
