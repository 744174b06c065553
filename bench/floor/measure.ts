// How much would a layer below net.Socket save? pgbench -S through three 1:1 TCP pipes (net 'data',
// net `onread`, raw tcp_wrap handles), PostgreSQL direct and PgBouncer: TPS, the forwarder's CPU per
// transaction (utime/stime from /proc/<pid>/stat), and its RSS growth per idle connection. Every Node
// process runs with the pooler's flags (POOLER_NODE_FLAGS).
//
//   npx tsx bench/floor/measure.ts [--duration 10] [--reps 3] [--clients 10] [--idle 5000] [--logins 10000]
//                                  [--settle 3]
//
// Our pooler (dist/pooler/main.js: `npm run build` first; transaction pooling, pool 20 as PgBouncer's)
// runs beside them, so the pipes' floor and what the pooler adds read from the same minutes.
// `--clients 10,50` repeats the pgbench passes per client count: a pipe is 1:1, so at 50 clients it
// keeps 50 backends busy where the poolers keep 20.
//
// `--idle` connections to each pipe are plain TCP connects forwarded to a sink in this process (5,000
// PostgreSQL backends would not fit max_connections), so each costs the pipe two sockets. PgBouncer,
// login-stub.ts (one net.Socket per client, logged in, nothing else) and raw-login-stub.ts (the same
// on raw TCP handles) get `--logins` clients from the shared harness's idle-conns.mjs: per client,
// what issue 6's idle-memory target counts. `--settle`:
// seconds idle-conns waits before reading RSS (60 lets V8's memory reducer return what the burst of
// logins grew, as `npm run bench` reads it the second time).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { startEmbeddedPostgres } from "../../scripts/lib/embedded-postgres.ts";
import { createDatabase } from "../../scripts/lib/migrations.ts";
import { POOLER_NODE_FLAGS } from "../../scripts/lib/pooler-node-flags.ts";
import { freePort } from "../../test/support/ports.ts";
import { host } from "./pipe-args.ts";

const run = promisify(execFile);
const { values: opts } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    reps: { type: "string", default: "3" },
    idle: { type: "string", default: "5000" },
    logins: { type: "string", default: "10000" },
    settle: { type: "string", default: "3" },
    clients: { type: "string", default: "10" },
  },
});
const pipes = ["net-data", "net-onread", "raw-handles"] as const;
const stubs = ["login-stub", "raw-login-stub"] as const;
const harness = path.resolve(process.env.BENCH_HARNESS ?? "../shared/bench");
const env = { ...process.env, PGPASSWORD: "postgres", PGUSER: "postgres", PGDATABASE: "bench" };
const clockTicks = Number((await run("getconf", ["CLK_TCK"])).stdout);
const work = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-floor-"));
fs.chmodSync(work, 0o755); // postgres and pgbouncer run as the `postgres` user when we are root
const children: ChildProcess[] = [];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Target {
  name: string;
  port: number;
  pid?: number;
}
interface Row {
  tps: number[];
  userUs: number[];
  sysUs: number[];
  idleKb?: number;
}

/** A floor script of this directory, `SCRIPT.ts LISTEN_PORT [UPSTREAM_PORT]`, on a free port. */
async function startScript(name: string, upstreamPort?: number): Promise<Target> {
  const port = await freePort();
  const script = fileURLToPath(new URL(`${name}.ts`, import.meta.url));
  const ports = [port, ...(upstreamPort === undefined ? [] : [upstreamPort])].map(String);
  return spawnReady(name, port, ["--import", "tsx", script, ...ports]);
}

async function startOurs(upstreamPort: number): Promise<Target> {
  const port = await freePort();
  return spawnReady("ours", port, ["dist/pooler/main.js"], {
    DATABASE_URL: `postgresql://postgres:postgres@${host}:${upstreamPort}/bench`,
    LISTEN_PORT: String(port),
    POOL_MODE: "transaction",
    DEFAULT_POOL_SIZE: "20",
    MAX_CLIENT_CONN: "20000",
    AUTH_TYPE: "md5",
    LOG_CONNECTIONS: "0",
    LOG_DISCONNECTIONS: "0",
    LOG_STATS: "0",
  });
}

/** A Node process with the pooler's flags, ready once it first writes to stdout ("ready", "listening"). */
async function spawnReady(name: string, port: number, args: string[], extraEnv = {}): Promise<Target> {
  // 10,000 idle clients need more file descriptors than the usual soft limit of 1,024
  const child = spawn(
    "bash",
    ["-c", 'ulimit -n $(ulimit -Hn) && exec "$0" "$@"', process.execPath, ...POOLER_NODE_FLAGS, ...args],
    { env: { ...process.env, ...extraEnv }, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(child);
  child.stderr.on("data", (d: Buffer) => process.stderr.write(`[${name}] ${d}`));
  await new Promise((resolve, reject) => {
    child.stdout.once("data", resolve);
    child.once("exit", () => reject(new Error(`${name} exited before listening`)));
  });
  return { name, port, pid: child.pid! };
}

function cpuTicks(pid: number): { user: number; sys: number } {
  // fields after the parenthesised command name: utime and stime are the 12th and 13th
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return { user: Number(fields[11]), sys: Number(fields[12]) };
}

function rssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
}

async function pgbench(target: Target, clients: string, row: Row): Promise<void> {
  const before = target.pid ? cpuTicks(target.pid) : undefined;
  const args = ["-h", host, "-p", String(target.port), "-S", "-M", "simple", "-c", clients, "-j", "2"];
  let stdout: string;
  try {
    ({ stdout } = await run("pgbench", [...args, "-T", opts.duration, "-n"], { env }));
  } catch (err) {
    // PostgreSQL's own max_connections (100) refuses more clients than it, directly or through a 1:1 pipe
    if (!/too many clients/.test((err as Error).message)) throw err;
    console.log(`${target.name.padEnd(12)} refused (too many clients)`);
    return;
  }
  const tps = Number(/^tps = ([\d.]+)/m.exec(stdout)![1]);
  const xacts = Number(/actually processed: (\d+)/.exec(stdout)![1]);
  row.tps.push(tps);
  if (before && target.pid) {
    const after = cpuTicks(target.pid);
    const usPerXact = (ticks: number): number => ((ticks / clockTicks) * 1e6) / xacts;
    row.userUs.push(usPerXact(after.user - before.user));
    row.sysUs.push(usPerXact(after.sys - before.sys));
  }
  console.log(`${target.name.padEnd(12)} ${tps.toFixed(0)} tps`);
}

/** Opens `n` plain TCP connections through a pipe whose upstream is `sink`; returns kB RSS per pair. */
async function idlePipeKb(target: Target, sink: net.Socket[], n: number): Promise<number> {
  await sleep(2000);
  const before = rssKb(target.pid!);
  const clients: net.Socket[] = [];
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from({ length: Math.min(100, n - i) }, () => net.connect(target.port, host));
    batch.forEach((s) => s.on("error", () => s.destroy()));
    clients.push(...batch);
    // unpaced, a few of 5,000 upstream connects were still missing 10 s later: pace the bursts
    for (let wait = 0; wait < 100 && sink.length < clients.length; wait++) await sleep(50);
  }
  await sleep(3000);
  const open = Math.min(sink.filter((s) => !s.destroyed).length, clients.filter((s) => !s.destroyed).length);
  const kB = (rssKb(target.pid!) - before) / open;
  for (const s of [...clients, ...sink]) s.destroy();
  sink.length = 0;
  console.log(`${target.name.padEnd(12)} ${kB.toFixed(2)} kB per idle connection (${open} open)`);
  return kB;
}

/** Logs `--logins` clients in through idle-conns.mjs and returns kB RSS per client. */
async function idleLoginsKb(name: string, port: number, pid: string): Promise<number> {
  const args = ["--port", String(port), "--db", "bench", "--n", opts.logins, "--pid", pid];
  args.push("--settle", opts.settle, "--json");
  const idleConns = [path.join(harness, "idle-conns.mjs"), ...args].join(" ");
  const { stdout } = await run(
    "bash",
    ["-c", `ulimit -n $(ulimit -Hn) && "${process.execPath}" ${idleConns}`],
    {
      env,
    },
  );
  const kB = Number(JSON.parse(stdout.trim().split("\n").at(-1)!).kB_per_conn);
  console.log(`${name.padEnd(12)} ${kB.toFixed(2)} kB per idle connection`);
  return kB;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : "–");

async function main(): Promise<void> {
  const pgPort = await freePort();
  const pg = await startEmbeddedPostgres({
    dataDir: path.join(work, "pg"),
    port: pgPort,
    settings: { max_connections: 100, shared_buffers: "128MB" },
  });
  const pgbDir = path.join(work, "pgbouncer");
  const sink: net.Socket[] = [];
  const sinkServer = net.createServer((s) => {
    sink.push(s);
    s.on("error", () => s.destroy());
  });
  try {
    await createDatabase(pg.url(), "bench");
    await run("pgbench", ["-h", host, "-p", String(pgPort), "-i", "-s", "10", "-q"], { env });
    const pgbPort = await freePort();
    const pgbEnv = { PGB_DIR: pgbDir, PGB_PORT: String(pgbPort), PG_PORT: String(pgPort), PGB_AUTH: "md5" };
    await run(path.join(harness, "pgbouncer-ctl.sh"), ["start"], { env: { ...env, ...pgbEnv } });
    const pgbPid = Number(fs.readFileSync(path.join(pgbDir, "pgbouncer.pid"), "utf8"));
    const targets: Target[] = [
      { name: "direct", port: pgPort },
      ...(await Promise.all(pipes.map((p) => startScript(p, pgPort)))),
      await startOurs(pgPort),
      { name: "pgbouncer", port: pgbPort, pid: pgbPid },
    ];
    const rows = new Map<string, Row>();
    const row = (name: string): Row => {
      if (!rows.has(name)) rows.set(name, { tps: [], userUs: [], sysUs: [] });
      return rows.get(name)!;
    };
    const clientCounts = opts.clients.split(",");
    for (let rep = 1; rep <= Number(opts.reps); rep++) {
      for (const clients of clientCounts) {
        console.log(`## pgbench -S -M simple -c ${clients} -j 2 -T ${opts.duration}, repetition ${rep}`);
        for (const t of targets) await pgbench(t, clients, row(`${t.name} @${clients}`));
      }
    }

    console.log(`## ${opts.idle} idle connections`);
    await new Promise<void>((r) => sinkServer.listen(0, host, 4096, r));
    const sinkPort = (sinkServer.address() as net.AddressInfo).port;
    for (const pipe of pipes) {
      const target = await startScript(pipe, sinkPort);
      row(pipe).idleKb = await idlePipeKb(target, sink, Number(opts.idle));
    }
    row("pgbouncer").idleKb = await idleLoginsKb("pgbouncer", pgbPort, `@${pgbDir}/pgbouncer.pid`);
    for (const name of stubs) {
      const stub = await startScript(name);
      row(name).idleKb = await idleLoginsKb(name, stub.port, String(stub.pid));
    }

    console.log("\n| target @clients | TPS median | user µs/xact | sys µs/xact | total µs/xact |");
    console.log("|---|---:|---:|---:|---:|");
    for (const [name, r] of rows) {
      if (!name.includes(" @")) continue; // an idle pass's row
      if (r.tps.length === 0) {
        console.log(`| ${name} | refused (too many clients) | | | |`);
        continue;
      }
      const [user, sys] = [median(r.userUs), median(r.sysUs)];
      console.log(
        `| ${name} | ${[fmt(median(r.tps), 0), fmt(user), fmt(sys), fmt(user + sys)].join(" | ")} |`,
      );
    }
    console.log("\n| target | kB per idle connection (pipes: per pair of sockets) |");
    console.log("|---|---:|");
    for (const [name, r] of rows)
      if (r.idleKb !== undefined) console.log(`| ${name} | ${fmt(r.idleKb, 2)} |`);
  } finally {
    sinkServer.close();
    await run(path.join(harness, "pgbouncer-ctl.sh"), ["stop"], { env: { ...env, PGB_DIR: pgbDir } }).catch(
      () => "",
    );
    for (const c of children) c.kill("SIGINT");
    await pg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`floor: ${err.message}`);
  process.exitCode = 1;
});
