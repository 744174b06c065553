// PgBouncer 1.18 (Debian's /usr/sbin/pgbouncer) in the foreground, for tests that compare our pooler's
// observable behaviour with PgBouncer's in the same scenario. Tests skip the comparison when it is
// not installed.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { runAs } from "../../scripts/lib/embedded-postgres.ts";
import { freePort } from "./ports.ts";
import { waitFor } from "./wait.ts";

export const PGBOUNCER_BIN = "/usr/sbin/pgbouncer";

export const hasPgBouncer = (): boolean => fs.existsSync(PGBOUNCER_BIN);

export interface PgBouncer {
  port: number;
  /** Its process, to look at its sockets. */
  pid: number;
  /** postgresql://postgres:postgres@127.0.0.1:<port>/<db> */
  url(db: string): string;
  /** Rewrites its [databases] (its settings kept), for a RELOAD or SIGHUP to read. */
  setDatabases(databases: Record<string, string>): void;
  /** The end of what it logged (its last 4 kB). */
  log(): string;
  /** Sends it a signal, to compare what it does with ours. */
  signal(signal: NodeJS.Signals): void;
  /** Settles once it has exited. */
  exited: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts PgBouncer with `databases` ([databases] lines: name → connect string) and `settings`
 * ([pgbouncer] keys). The user postgres/postgres logs in with md5; the same password reaches the server.
 * `users` (name → password) are added to its auth_file.
 */
export async function startPgBouncer(
  databases: Record<string, string>,
  settings: Record<string, string | number> = {},
  users: Record<string, string> = {},
): Promise<PgBouncer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-pgbouncer-"));
  const port = await freePort();
  const iniPath = path.join(dir, "pgbouncer.ini");
  const pgbouncerSection = [
    "[pgbouncer]",
    ...Object.entries({
      listen_addr: "127.0.0.1",
      listen_port: port,
      unix_socket_dir: "",
      auth_type: "md5",
      auth_file: path.join(dir, "userlist.txt"),
      ignore_startup_parameters: "extra_float_digits",
      ...settings,
    }).map(([k, v]) => `${k} = ${v}`),
  ];
  const setDatabases = (dbs: Record<string, string>): void => {
    const lines = ["[databases]", ...Object.entries(dbs).map(([name, conn]) => `${name} = ${conn}`)];
    fs.writeFileSync(iniPath, `${[...lines, ...pgbouncerSection].join("\n")}\n`);
  };
  setDatabases(databases);
  const userlist = Object.entries({ postgres: "postgres", ...users }).map(([u, pw]) => `"${u}" "${pw}"\n`);
  fs.writeFileSync(path.join(dir, "userlist.txt"), userlist.join(""));
  // PgBouncer refuses to run as root: as postgres, like the embedded server
  const who = runAs();
  if (who.uid !== undefined)
    for (const f of ["", "pgbouncer.ini", "userlist.txt"]) fs.chownSync(path.join(dir, f), who.uid, who.gid!);
  const child = spawn(PGBOUNCER_BIN, [iniPath], {
    ...who,
    cwd: dir,
    stdio: ["ignore", "ignore", "pipe"],
  });
  // the end of its log, to say why it did not start
  let log = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => (log = (log + chunk).slice(-4096)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const orphaned = (): void => void child.kill("SIGINT");
  process.once("exit", orphaned);
  const stop = async (): Promise<void> => {
    process.off("exit", orphaned);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => child.exitCode === null && canConnect(port), `PgBouncer listening on ${port}`);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}; its log: ${log}`);
  }
  return {
    port,
    pid: child.pid!,
    url: (db) => `postgresql://postgres:postgres@127.0.0.1:${port}/${db}`,
    setDatabases,
    log: () => log,
    signal: (signal) => void child.kill(signal),
    exited,
    stop,
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port }, () => {
      sock.destroy();
      resolve(true);
    });
    sock.on("error", () => resolve(false));
  });
}
