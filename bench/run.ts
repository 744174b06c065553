// npm run bench: PostgreSQL 13 direct vs PgBouncer vs our pooler, side by side, with the shared
// harness (pgbench-compare.sh, idle-conns.mjs; BENCH_HARNESS, default ../shared/bench). Everything
// runs on fresh ports and a throwaway data directory; results go to stdout and bench/RESULTS.md is
// written by hand from them (the machines are noisy: quote medians and ratios from one run).
//
//   npm run build && npm run bench -- [--configs "select:simple@50 ..."] [--duration 10] [--reps 3]
//                                      [--idle 10000] [--skip-pgbench]
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs, promisify } from "node:util";
import { startEmbeddedPostgres } from "../scripts/lib/embedded-postgres.ts";
import { createDatabase } from "../scripts/lib/migrations.ts";
import { freePort } from "../test/support/ports.ts";

const run = promisify(execFile);
const { values: opts } = parseArgs({
  options: {
    configs: {
      type: "string",
      default:
        "select:simple@10 select:simple@50 select:simple@200 select:extended@10 select:extended@50 select:extended@200 tpcb:simple@50",
    },
    duration: { type: "string", default: "10" },
    reps: { type: "string", default: "3" },
    idle: { type: "string", default: "10000" },
    "pool-size": { type: "string", default: "20" },
    "skip-pgbench": { type: "boolean", default: false },
  },
});

const harness = path.resolve(process.env.BENCH_HARNESS ?? "../shared/bench");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-bench-"));
fs.chmodSync(work, 0o755); // postgres and pgbouncer run as the `postgres` user when we are root
const children: ChildProcess[] = [];
const env = { ...process.env, PGPASSWORD: "postgres", PGUSER: "postgres", PGDATABASE: "bench" };

function sh(file: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<string> {
  return run(file, args, { env: { ...env, ...extraEnv }, maxBuffer: 64 << 20 }).then(
    (r) => r.stdout + r.stderr,
  );
}

async function startOurs(upstreamPort: number, port: number): Promise<number> {
  // 10,000 idle clients need more file descriptors than the usual 1024: take the hard limit
  const child = spawn(
    "bash",
    ["-c", `ulimit -n $(ulimit -Hn) && exec "${process.execPath}" dist/pooler/main.js`],
    {
      env: {
        ...env,
        DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${upstreamPort}/bench`,
        LISTEN_PORT: String(port),
        POOL_MODE: "transaction",
        DEFAULT_POOL_SIZE: opts["pool-size"],
        MAX_CLIENT_CONN: "20000",
        LOG_CONNECTIONS: "0",
        LOG_DISCONNECTIONS: "0",
        LOG_STATS: "0",
      },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  children.push(child);
  for (let i = 0; i < 100; i++) {
    try {
      await sh("psql", ["-h", "127.0.0.1", "-p", String(port), "-Atc", "SELECT 1"]);
      return child.pid!;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error("our pooler did not start (did you run npm run build?)");
}

async function main(): Promise<void> {
  if (!fs.existsSync("dist/pooler/main.js")) throw new Error("run `npm run build` first");
  if (!fs.existsSync(path.join(harness, "pgbench-compare.sh"))) {
    throw new Error(`the shared bench harness is not at ${harness}; set BENCH_HARNESS`);
  }
  const pgPort = await freePort();
  const pg = await startEmbeddedPostgres({
    dataDir: path.join(work, "pg"),
    port: pgPort,
    settings: { max_connections: 100, shared_buffers: "128MB" },
  });
  const pgbouncerPort = await freePort();
  const oursPort = await freePort();
  const pgbDir = path.join(work, "pgbouncer");
  try {
    await createDatabase(pg.url(), "bench");
    await sh("pgbench", ["-h", "127.0.0.1", "-p", String(pgPort), "-i", "-s", "10", "-q"]);
    const pgbEnv = {
      PGB_DIR: pgbDir,
      PGB_PORT: String(pgbouncerPort),
      PG_PORT: String(pgPort),
      PGB_AUTH: "md5",
      PGB_POOL_SIZE: opts["pool-size"],
    };
    console.log(await sh(path.join(harness, "pgbouncer-ctl.sh"), ["start"], pgbEnv));
    const oursPid = await startOurs(pgPort, oursPort);
    console.log(`our pooler pid ${oursPid} on 127.0.0.1:${oursPort}; PostgreSQL 13 on ${pgPort}`);

    if (!opts["skip-pgbench"]) {
      console.log(
        await sh(path.join(harness, "pgbench-compare.sh"), [
          ...["-t", `direct=127.0.0.1:${pgPort}`, "-t", `pgbouncer=127.0.0.1:${pgbouncerPort}`],
          ...["-t", `ours=127.0.0.1:${oursPort}`, "-C", opts.configs, "-T", opts.duration, "-r", opts.reps],
          ...[
            "-w",
            `pgbouncer=@${pgbDir}/pgbouncer.pid`,
            "-w",
            `ours=${oursPid}`,
            "-o",
            path.join(work, "pgbench"),
          ],
        ]),
      );
    }
    const idle = opts.idle;
    for (const [name, port, pid] of [
      ["pgbouncer", pgbouncerPort, `@${pgbDir}/pgbouncer.pid`],
      ["ours", oursPort, String(oursPid)],
    ] as const) {
      console.log(`\n## idle connections: ${name}`);
      console.log(
        await sh("bash", [
          "-c",
          `ulimit -n $(ulimit -Hn) && node ${harness}/idle-conns.mjs --port ${port} --db bench --n ${idle} --pid ${pid}`,
        ]),
      );
    }
  } finally {
    await sh(path.join(harness, "pgbouncer-ctl.sh"), ["stop"], { PGB_DIR: pgbDir }).catch(() => "");
    for (const c of children) c.kill("SIGINT");
    await pg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench: ${err.message}`);
  process.exitCode = 1;
});
