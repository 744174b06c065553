// npm run bench:web: the web app under autocannon at 200 concurrent HTTP clients against a PostgreSQL 13
// with max_connections = 100, (a) through our pooler (transaction mode, pool 20) and (b) direct, each
// with the app's pool at 10 and at 100 connections (its maximum). Prints requests/s, p99 latency and failures.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { startEmbeddedPostgres } from "../scripts/lib/embedded-postgres.ts";
import { applyMigrations, createDatabase } from "../scripts/lib/migrations.ts";
import { freePort } from "../test/support/ports.ts";
import { POOLER_NODE_FLAGS } from "../scripts/lib/pooler-node-flags.ts";

const CONNECTIONS = 200;
const DURATION = 15;

function node(entry: string, env: NodeJS.ProcessEnv, flags: readonly string[] = []): ChildProcess {
  return spawn(process.execPath, [...flags, entry], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer`);
}

async function load(url: string): Promise<string> {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: DURATION });
  const failed = r.non2xx + r.errors + r.timeouts;
  return `${r.requests.average.toFixed(0)} req/s, p99 ${r.latency.p99} ms, ${r.requests.total} requests, ${failed} failed`;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-web-"));
  fs.chmodSync(work, 0o755);
  const pg = await startEmbeddedPostgres({
    dataDir: path.join(work, "pg"),
    port: await freePort(),
    settings: { max_connections: 100 },
  });
  const children: ChildProcess[] = [];
  try {
    await createDatabase(pg.url(), "app");
    await applyMigrations(pg.url("app"), "prisma/migrations", () => undefined);
    const poolerPort = await freePort();
    children.push(
      node(
        "dist/pooler/main.js",
        {
          DATABASE_URL: pg.url("app"),
          LISTEN_PORT: String(poolerPort),
          POOL_MODE: "transaction",
          DEFAULT_POOL_SIZE: "20",
          MAX_CLIENT_CONN: "1000",
          LOG_CONNECTIONS: "0",
          LOG_DISCONNECTIONS: "0",
        },
        POOLER_NODE_FLAGS,
      ),
    );
    const targets = {
      pooler: `postgresql://postgres:postgres@127.0.0.1:${poolerPort}/app`,
      direct: pg.url("app"),
    };
    for (const dbPoolMax of [10, 100]) {
      for (const [name, databaseUrl] of Object.entries(targets)) {
        const port = await freePort();
        const app = node("dist/app/server.js", {
          DATABASE_URL: databaseUrl,
          DB_POOL_MAX: String(dbPoolMax),
          PORT: String(port),
          HOST: "127.0.0.1",
          LOG_LEVEL: "error",
          NODE_ENV: "production",
          SESSION_SECRET: "x".repeat(40),
        });
        try {
          await waitHttp(`http://127.0.0.1:${port}/`);
          console.log(
            `app → ${name.padEnd(6)} DB_POOL_MAX=${String(dbPoolMax).padEnd(3)}: ${await load(`http://127.0.0.1:${port}/`)}`,
          );
        } finally {
          app.kill("SIGTERM");
          await new Promise((r) => app.once("exit", r));
        }
      }
    }
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await pg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench:web: ${err.message}`);
  process.exitCode = 1;
});
