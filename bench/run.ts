// npm run bench: PostgreSQL 13 direct vs PgBouncer vs our pooler, side by side, with the shared
// harness (pgbench-compare.sh, idle-conns.mjs; BENCH_HARNESS, default ../shared/bench). Everything
// runs on fresh ports and a throwaway data directory. It installs nothing: pgbench, psql and pgbouncer
// must be on PATH. The harness prints as it goes; at the end bench/RESULTS.md (machine, versions,
// commands, tables, issue 6's targets) and docs/bench-chart.svg are written from its CSV and JSON.
//
//   npm run bench -- [--configs "select:simple@50 ..."] [--duration 10] [--reps 3] [--idle 10000 (0: none)]
//                    [--connect "select:simple@10" (again with pgbench -C; "": none)]
//                    [--auth md5|scram-sha-256] [--pool-size 20] [--skip-pgbench]
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { startEmbeddedPostgres } from "../scripts/lib/embedded-postgres.ts";
import { createDatabase } from "../scripts/lib/migrations.ts";
import { POOLER_NODE_FLAGS } from "../scripts/lib/pooler-node-flags.ts";
import { freePort } from "../test/support/ports.ts";
import { renderChart } from "./chart.ts";
import { describeMachine, toolVersions } from "./environment.ts";
import {
  parseIdleJson,
  parseRunsCsv,
  renderResultsMarkdown,
  summarizeRuns,
  type BenchResults,
} from "./results.ts";

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
    connect: { type: "string", default: "select:simple@10" },
    auth: { type: "string", default: "md5" },
    idle: { type: "string", default: "10000" },
    "idle-settle": { type: "string", default: "3,60" },
    "pool-size": { type: "string", default: "20" },
    "skip-pgbench": { type: "boolean", default: false },
  },
});

const AUTH_METHODS = ["md5", "scram-sha-256"] as const;
function authMethod(name: string): (typeof AUTH_METHODS)[number] {
  const found = AUTH_METHODS.find((m) => m === name);
  if (found === undefined) throw new Error(`--auth: expected ${AUTH_METHODS.join(" or ")}, got "${name}"`);
  return found;
}
const auth = authMethod(opts.auth);
const maxClients = Math.max(
  10_000, // the harness's own default
  Number(opts.idle),
  ...[...`${opts.configs} ${opts.connect}`.matchAll(/@(\d+)/g)].map((m) => Number(m[1])),
);
const idleSettles = opts["idle-settle"].split(",").map((s) => s.trim());
if (idleSettles.some((s) => !/^[0-9]+$/.test(s))) {
  throw new Error(`--idle-settle: expected seconds separated by commas, got "${opts["idle-settle"]}"`);
}
const resultsFile = fileURLToPath(new URL("RESULTS.md", import.meta.url));
const chartFile = fileURLToPath(new URL("../docs/bench-chart.svg", import.meta.url));
const harness = path.resolve(process.env.BENCH_HARNESS ?? "../shared/bench");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-bench-"));
fs.chmodSync(work, 0o755); // postgres and pgbouncer run as the `postgres` user when we are root
const children: ChildProcess[] = [];
const env = { ...process.env, PGPASSWORD: "postgres", PGUSER: "postgres", PGDATABASE: "bench" };
/** every command run, for RESULTS.md: NAME=value items first, paths relative to here where shorter */
const commands: string[][] = [];
const ulimit = "ulimit -n $(ulimit -Hn)"; // 10,000 idle clients need more than the usual 1024 fds

function sh(file: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<string> {
  return run(file, args, { env: { ...env, ...extraEnv }, maxBuffer: 64 << 20 }).then(
    (r) => r.stdout + r.stderr,
  );
}

function record(argv: string[], extraEnv: Record<string, string> = {}): void {
  const shown = (a: string): string =>
    a.replaceAll(harness, path.relative(process.cwd(), harness)).replaceAll(`${process.cwd()}/`, "");
  commands.push([...Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`), ...argv].map(shown));
}

/** Runs a command and records it. */
function step(file: string, args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  record([file, ...args], extraEnv);
  return sh(file, args, extraEnv);
}

async function startOurs(upstreamPort: number, port: number): Promise<number> {
  const ourEnv = {
    DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${upstreamPort}/bench`,
    LISTEN_PORT: String(port),
    POOL_MODE: "transaction",
    DEFAULT_POOL_SIZE: opts["pool-size"],
    MAX_CLIENT_CONN: "20000",
    LOG_CONNECTIONS: "0",
    LOG_DISCONNECTIONS: "0",
    LOG_STATS: "0",
    AUTH_TYPE: auth,
  };
  const flags = POOLER_NODE_FLAGS.join(" ");
  record(["bash", "-c", `${ulimit} && exec node ${flags} dist/pooler/main.js`], ourEnv);
  const child = spawn(
    "bash",
    ["-c", `${ulimit} && exec "${process.execPath}" ${flags} dist/pooler/main.js`],
    {
      env: { ...env, ...ourEnv },
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
  throw new Error("our pooler did not start (run the bench with `npm run bench`, which builds it first)");
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(harness, "pgbench-compare.sh"))) {
    throw new Error(`the shared bench harness is not at ${harness}; set BENCH_HARNESS`);
  }
  const started = new Date();
  const machine = describeMachine();
  const pgPort = await freePort();
  const pg = await startEmbeddedPostgres({
    dataDir: path.join(work, "pg"),
    port: pgPort,
    settings: { max_connections: 100, shared_buffers: "128MB" },
    // PgBouncer's userlist gets the role's secret as PostgreSQL stores it, md5 or SCRAM
    authMethod: auth,
  });
  const pgbouncerPort = await freePort();
  const oursPort = await freePort();
  const pgbDir = path.join(work, "pgbouncer");
  const outDir = path.join(work, "pgbench");
  try {
    await createDatabase(pg.url(), "bench");
    const versions = await toolVersions(sh, pgPort);
    await step("pgbench", ["-h", "127.0.0.1", "-p", String(pgPort), "-i", "-s", "10", "-q"]);
    const pgbEnv = {
      PGB_DIR: pgbDir,
      PGB_PORT: String(pgbouncerPort),
      PG_PORT: String(pgPort),
      PGB_AUTH: auth,
      PGB_POOL_SIZE: opts["pool-size"],
      // room for the most clients a config or the idle pass opens (its warm-up connection on top)
      PGB_MAX_CLIENTS: String(maxClients + 100),
    };
    console.log(await step(path.join(harness, "pgbouncer-ctl.sh"), ["start"], pgbEnv));
    const oursPid = await startOurs(pgPort, oursPort);
    console.log(`our pooler pid ${oursPid} on 127.0.0.1:${oursPort}; PostgreSQL 13 on ${pgPort}`);

    const compare = async (configs: string, out: string, extraEnv: Record<string, string> = {}) => {
      const output = await step(
        path.join(harness, "pgbench-compare.sh"),
        [
          ...["-t", `direct=127.0.0.1:${pgPort}`, "-t", `pgbouncer=127.0.0.1:${pgbouncerPort}`],
          ...["-t", `ours=127.0.0.1:${oursPort}`, "-C", configs, "-T", opts.duration, "-r", opts.reps],
          ...["-w", `pgbouncer=@${pgbDir}/pgbouncer.pid`, "-w", `ours=${oursPid}`, "-o", out],
        ],
        extraEnv,
      );
      console.log(output);
      return summarizeRuns(parseRunsCsv(fs.readFileSync(path.join(out, "runs.csv"), "utf8")));
    };
    const results: BenchResults = { configs: [], connect: [], idle: [] };
    if (!opts["skip-pgbench"] && opts.configs.trim()) results.configs = await compare(opts.configs, outDir);
    if (!opts["skip-pgbench"] && opts.connect.trim()) {
      results.connect = await compare(opts.connect, `${outDir}-connect`, {
        PGBENCH: fileURLToPath(new URL("pgbench-connect.sh", import.meta.url)),
        PGBENCH_OPTS: "-C",
      });
    }
    // Each idle pass gets fresh poolers, as bench:floor's login stub. On ours after pgbench, free heap
    // left behind absorbed part of what 10,000 logins cost (2.6 and 3.4 kB in two runs, 4.3 kB fresh);
    // PgBouncer keeps the memory of closed clients for new ones (a second pass read 0.00 kB).
    const idleTargets = async () => {
      const freshPort = await freePort();
      await step(path.join(harness, "pgbouncer-ctl.sh"), ["stop"], pgbEnv);
      console.log(await step(path.join(harness, "pgbouncer-ctl.sh"), ["start"], pgbEnv));
      return [
        ["pgbouncer", String(pgbouncerPort), `@${pgbDir}/pgbouncer.pid`],
        ["ours", String(freshPort), String(await startOurs(pgPort, freshPort))],
      ] as const;
    };
    // Each settle time is how long idle-conns waits before reading RSS, before and after the logins.
    // Right after 10,000 logins in a second, V8 still holds the heap that burst grew; its memory
    // reducer returns it later (on Node 24 only after 100 s: see results.ts). Both are reported.
    for (const settle of Number(opts.idle) > 0 ? idleSettles : []) {
      for (const [target, port, pid] of await idleTargets()) {
        console.log(`\n## idle connections: ${target}, RSS read ${settle} s after the logins`);
        const idleArgs = [
          "--port",
          port,
          "--db",
          "bench",
          "--n",
          opts.idle,
          "--pid",
          pid,
          "--settle",
          settle,
        ];
        const output = await step("bash", [
          "-c",
          `${ulimit} && node ${harness}/idle-conns.mjs ${[...idleArgs, "--json"].join(" ")}`,
        ]);
        console.log(output);
        results.idle.push(parseIdleJson(target, output, Number(settle)));
      }
    }

    const date = `${started.toISOString().slice(0, 16).replace("T", " ")} UTC`;
    const setup =
      `PostgreSQL: max_connections 100, shared_buffers 128MB, pgbench scale 10. PgBouncer and ours: ` +
      `transaction mode, pool ${opts["pool-size"]}, ${auth} client auth. pgbench: ${opts.duration} s per run, ` +
      `${opts.reps} repetition(s) per target, interleaved. Idle: ${opts.idle} client connections per pooler, each pooler on a fresh process for each pass, RSS read ${idleSettles.join(" and ")} s after the logins.`;
    fs.writeFileSync(
      resultsFile,
      renderResultsMarkdown(results, {
        date,
        machine,
        versions,
        invocation: ["npm", "run", "bench", "--", ...process.argv.slice(2)],
        setup,
        commands,
      }),
    );
    console.log(`wrote ${path.relative(process.cwd(), resultsFile)}`);
    if (results.configs.length) {
      const cpu = machine.find(([k]) => k === "CPU")?.[1] ?? "";
      const subtitle = `${date} · ${cpu} · pool ${opts["pool-size"]} · ${opts.duration} s × ${opts.reps} · tables: bench/RESULTS.md`;
      fs.writeFileSync(chartFile, renderChart(results.configs, subtitle));
      console.log(`wrote ${path.relative(process.cwd(), chartFile)}`);
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
