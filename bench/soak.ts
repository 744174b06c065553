// npm run bench:soak: our pooler (built, transaction mode, pool 20) under pgbench at 200 clients for
// --minutes (default 10), sampling its RSS every 10 s. Prints the samples, the pgbench summary
// (failed transactions must be 0) and whether RSS grew after the warm-up beyond noise.
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs, promisify } from "node:util";
import { startEmbeddedPostgres } from "../scripts/lib/embedded-postgres.ts";
import { createDatabase } from "../scripts/lib/migrations.ts";
import { freePort } from "../test/support/ports.ts";
import { POOLER_NODE_FLAGS } from "../scripts/lib/pooler-node-flags.ts";

const run = promisify(execFile);
const { values: opts } = parseArgs({
  options: { minutes: { type: "string", default: "10" }, clients: { type: "string", default: "200" } },
});
const env = { ...process.env, PGPASSWORD: "postgres", PGUSER: "postgres", PGDATABASE: "bench" };

function rssKb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-soak-"));
  fs.chmodSync(work, 0o755);
  const pgPort = await freePort();
  const pg = await startEmbeddedPostgres({ dataDir: path.join(work, "pg"), port: pgPort });
  const port = await freePort();
  const pooler = spawn(process.execPath, [...POOLER_NODE_FLAGS, "dist/pooler/main.js"], {
    env: {
      ...env,
      DATABASE_URL: pg.url("bench"),
      LISTEN_PORT: String(port),
      POOL_MODE: "transaction",
      DEFAULT_POOL_SIZE: "20",
      MAX_CLIENT_CONN: "1000",
      LOG_CONNECTIONS: "0",
      LOG_DISCONNECTIONS: "0",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    await createDatabase(pg.url(), "bench");
    await run("pgbench", ["-h", "127.0.0.1", "-p", String(pgPort), "-i", "-s", "10", "-q"], { env });
    await new Promise((r) => setTimeout(r, 500));
    const seconds = Math.round(Number(opts.minutes) * 60);
    const bench = run(
      "pgbench",
      [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-n",
        "-S",
        "-c",
        opts.clients,
        "-j",
        "2",
        "-T",
        String(seconds),
      ],
      { env, maxBuffer: 16 << 20 },
    );
    const samples: number[] = [];
    const timer = setInterval(() => {
      samples.push(rssKb(pooler.pid!));
      console.log(`t=${samples.length * 10}s rss=${samples.at(-1)} kB`);
    }, 10_000);
    const { stdout } = await bench;
    clearInterval(timer);
    console.log(
      stdout
        .split("\n")
        .filter((l) => /tps|failed|processed|latency/.test(l))
        .join("\n"),
    );
    // warm-up: the first quarter; then compare the first and last thirds of the rest
    const rest = samples.slice(Math.ceil(samples.length / 4));
    const third = Math.max(1, Math.floor(rest.length / 3));
    const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const early = avg(rest.slice(0, third));
    const late = avg(rest.slice(-third));
    console.log(
      `RSS after warm-up: early ${early.toFixed(0)} kB, late ${late.toFixed(0)} kB, change ${(((late - early) / early) * 100).toFixed(1)}%`,
    );
  } finally {
    pooler.kill("SIGINT");
    await pg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`soak: ${err.message}`);
  process.exitCode = 1;
});
