// npm run bench:pools: our pooler (built) with many pools, as a database per tenant makes them. Each
// pool is made by one login to a database PostgreSQL does not have (the `*` fallback makes the pool,
// PostgreSQL refuses the login); then the console's views and /metrics are timed, and a client's
// SELECT 1 loop measures how long a scrape holds it up. Prints one table.
//
//   npm run bench:pools -- --pools 1000,5000 --scrapes 3
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { startEmbeddedPostgres } from "../scripts/lib/embedded-postgres.ts";
import { createDatabase } from "../scripts/lib/migrations.ts";
import { POOLER_NODE_FLAGS } from "../scripts/lib/pooler-node-flags.ts";
import { answersSelect1 } from "../scripts/lib/wait.ts";
import { makePools } from "../test/support/clients.ts";
import { freePort } from "../test/support/ports.ts";
import { median } from "./results.ts";

const { values: opts } = parseArgs({
  options: { pools: { type: "string", default: "1000,5000" }, scrapes: { type: "string", default: "3" } },
});
const counts = opts.pools.split(",").map(Number);
if (counts.some((n) => !Number.isInteger(n) || n < 1))
  throw new Error(`--pools: expected counts, got ${opts.pools}`);

const ms = async (f: () => Promise<unknown>): Promise<number> => {
  const t = performance.now();
  await f();
  return performance.now() - t;
};

/** Runs SELECT 1 through the pooler until `stop` resolves; returns the longest round trip. */
async function longestQuery(url: string, stop: Promise<unknown>): Promise<number> {
  const c = new pg.Client(url);
  await c.connect();
  let done = false;
  void stop.finally(() => (done = true));
  let longest = 0;
  while (!done) longest = Math.max(longest, await ms(() => c.query("SELECT 1")));
  await c.end();
  return longest;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-pools-"));
  fs.chmodSync(work, 0o755);
  const pgPort = await freePort();
  const postgres = await startEmbeddedPostgres({ dataDir: path.join(work, "pg"), port: pgPort });
  const [port, metricsPort] = [await freePort(), await freePort()];
  fs.writeFileSync(path.join(work, "users.txt"), '"postgres" "postgres"\n');
  fs.writeFileSync(
    path.join(work, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=127.0.0.1 port=${pgPort}`,
      "[pgbouncer]",
      `listen_port = ${port}`,
      "auth_type = trust",
      `auth_file = ${path.join(work, "users.txt")}`,
      "pool_mode = transaction",
      "admin_users = postgres",
      `metrics_port = ${metricsPort}`,
      "log_connections = 0",
      "log_disconnections = 0",
      "",
    ].join("\n"),
  );
  const pooler = spawn(
    process.execPath,
    [...POOLER_NODE_FLAGS, "dist/pooler/main.js", path.join(work, "pgbouncer.ini")],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  try {
    await createDatabase(postgres.url(), "bench");
    const url = (db: string): string => `postgresql://postgres@127.0.0.1:${port}/${db}`;
    for (let i = 0; !(await answersSelect1(url("bench"))); i++) {
      if (i === 50) throw new Error("the pooler did not answer in 10 s");
      await new Promise((r) => setTimeout(r, 200));
    }
    const admin = new pg.Client(url("pgbouncer"));
    await admin.connect();
    console.log(
      "| pools | logins (s) | SHOW POOLS (ms) | SHOW DATABASES (ms) | scrape (ms) | scrape (MB) | longest SELECT 1 during scrapes (ms) |",
    );
    console.log("|---:|---:|---:|---:|---:|---:|---:|");
    let made = 0;
    for (const n of counts) {
      const loginMs = await ms(() => makePools(port, made, n));
      made = Math.max(made, n);
      const showPools = median(await timesOf(() => admin.query("SHOW POOLS")));
      const showDbs = median(await timesOf(() => admin.query("SHOW DATABASES")));
      let bytes = 0;
      const scrapes: number[] = [];
      const scraping = (async () => {
        for (let i = 0; i < Number(opts.scrapes); i++) {
          scrapes.push(
            await ms(
              async () =>
                (bytes = (await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).length),
            ),
          );
        }
      })();
      const longest = await longestQuery(url("bench"), scraping);
      console.log(
        `| ${n} | ${(loginMs / 1000).toFixed(1)} | ${showPools.toFixed(0)} | ${showDbs.toFixed(0)} | ${median(scrapes).toFixed(0)} | ${(bytes / 1e6).toFixed(1)} | ${longest.toFixed(0)} |`,
      );
    }
    await admin.end();
  } finally {
    pooler.kill("SIGQUIT");
    await postgres.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Three timings of `f`, one after another. */
async function timesOf(f: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) times.push(await ms(f));
  return times;
}

await main();
