// `npm start` end to end: embedded PostgreSQL 13 → migrations → pooler → app, then an orderly stop.
// Uses a temporary DATA_DIR and free ports, so it neither touches .data nor clashes with a running stack.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { freePort } from "../support/ports.ts";

const root = path.resolve(import.meta.dirname, "../..");
const STARTED = "Press Ctrl-C";

interface Stack {
  proc: ChildProcess;
  output(): string;
  exitCode: Promise<number | null>;
}

/** `npm start`, in a process group of its own as in a terminal (a hangup reaches the whole group). */
function startStack(env: NodeJS.ProcessEnv): Stack {
  const proc = spawn("npm", ["start", "--silent"], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  proc.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  proc.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exitCode = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return { proc, output: () => output, exitCode };
}

async function waitForOutput(stack: Stack, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!stack.output().includes(text)) {
    if (stack.proc.exitCode !== null) throw new Error(`npm start exited early:\n${stack.output()}`);
    if (Date.now() > deadline) throw new Error(`no "${text}" after ${timeoutMs} ms:\n${stack.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function processes(): { pid: number; ppid: number; args: string }[] {
  return execFileSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" })
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
}

const postgresRunningIn = (dataDir: string) =>
  processes().some((p) => p.args.includes("postgres") && p.args.includes(`-D ${dataDir}`));

/** npm start's own process (npm → node scripts/start.ts). */
function startPid(stack: Stack): number {
  const start = processes().find((p) => p.ppid === stack.proc.pid && p.args.includes("scripts/start.ts"));
  if (!start) throw new Error("scripts/start.ts process not found");
  return start.pid;
}

/** The pooler started by this stack (npm → node scripts/start.ts → node pooler/main.ts). */
function poolerPid(stack: Stack): number {
  const start = startPid(stack);
  const pooler = processes().find((p) => p.ppid === start && p.args.endsWith("pooler/main.ts"));
  if (!pooler) throw new Error("pooler process not found");
  return pooler.pid;
}

async function waitUntilGone(what: string, pids: number[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (processes().some((p) => pids.includes(p.pid))) {
    if (Date.now() > deadline) throw new Error(`${what} still running after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Until this stack's initdb has written PG_VERSION (wherever it works), `also` holds, and it is still going. */
async function waitForInitdb(stack: Stack, dataDir: string, also = () => true): Promise<void> {
  const initdbRunning = () => processes().some((p) => p.args.includes("initdb") && p.args.includes(dataDir));
  const versionWritten = () =>
    fs.readdirSync(dataDir).some((d) => fs.existsSync(path.join(dataDir, d, "PG_VERSION")));
  const deadline = Date.now() + 60_000;
  while (!(initdbRunning() && versionWritten() && also())) {
    if (Date.now() > deadline) throw new Error(`initdb not seen at work:\n${stack.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Kills a first start during initdb, as a closed terminal's SIGKILL would: nothing gets to clean up. */
async function killDuringInitdb(stack: Stack, dataDir: string, also?: () => boolean): Promise<void> {
  await waitForInitdb(stack, dataDir, also);
  process.kill(-stack.proc.pid!, "SIGKILL");
  await stack.exitCode;
  await waitUntilGone(
    "initdb",
    processes()
      .filter((p) => p.args.includes("initdb") && p.args.includes(dataDir))
      .map((p) => p.pid),
  );
}

/** The same settings on other free ports: a second stack that clashes only on DATA_DIR. */
async function otherPorts(env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const ports = await Promise.all([0, 1, 2, 3].map(() => freePort()));
  return {
    ...env,
    ...Object.fromEntries(
      ["PORT", "POOLER_PORT", "PGPORT", "METRICS_PORT"].map((k, i) => [k, String(ports[i])]),
    ),
  };
}

describe("npm start", () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let stack: Stack | undefined;

  beforeEach(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-start-"));
    fs.chmodSync(dataDir, 0o755); // PostgreSQL runs as the `postgres` user and must reach DATA_DIR/postgres
    env = { ...process.env, NODE_ENV: "development", DATA_DIR: dataDir, HOST: "127.0.0.1" };
    for (const name of ["DATABASE_URL", "POSTGRES_DATABASE_URL", "DIRECT_DATABASE_URL"]) delete env[name];
    env.PGPORT = String(await freePort());
    env.POOLER_PORT = String(await freePort());
    env.PORT = String(await freePort());
    env.METRICS_PORT = String(await freePort());
  });

  afterEach(async () => {
    if (stack && stack.proc.exitCode === null) {
      stack.proc.kill("SIGINT");
      await stack.exitCode;
    }
    stack = undefined;
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("serves the app through the pooler, then stops app, pooler and PostgreSQL on SIGINT", async () => {
    stack = startStack(env);
    await waitForOutput(stack, STARTED);
    expect(stack.output()).toContain(`http://localhost:${env.PORT}/admin/`);

    const res = await fetch(`http://127.0.0.1:${env.PORT}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("Post List");

    stack.proc.kill("SIGINT");
    expect(await stack.exitCode).toBe(0);
    const out = stack.output();
    const steps = ["stopping app", "stopping pooler", "stopping postgres", "[start] stopped"];
    const found = steps.filter((step) => out.includes(step)).sort((a, b) => out.indexOf(a) - out.indexOf(b));
    expect(found).toEqual(steps);
    expect(postgresRunningIn(path.join(dataDir, "postgres"))).toBe(false);
  }, 90_000);

  it("refuses a second start on the same DATA_DIR, leaving the first running; a hangup stops everything", async () => {
    stack = startStack(env);
    await waitForOutput(stack, STARTED);
    const second = startStack(await otherPorts(env));
    expect(await second.exitCode).toBe(1);
    expect(second.output()).toMatch(/postgres is in use by PostgreSQL \(pid \d+\) of another run/);
    expect((await fetch(`http://127.0.0.1:${env.PORT}/`)).status).toBe(200);

    // the terminal closes: SIGHUP to its whole process group
    const start = startPid(stack);
    process.kill(-stack.proc.pid!, "SIGHUP");
    const deadline = Date.now() + 30_000;
    // this stack's processes only: another `npm start` may be running on the machine
    while (processes().some((p) => p.args.includes(`${dataDir}/postgres`) || p.pid === start)) {
      if (Date.now() > deadline) throw new Error(`still running after SIGHUP:\n${stack.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(stack.output()).toContain("received SIGHUP, shutting down");
    expect(stack.output()).toContain("[start] stopped");
  }, 120_000);

  it("keeps the database across restarts, and stops everything when the pooler dies", async () => {
    stack = startStack(env);
    await waitForOutput(stack, STARTED);
    stack.proc.kill("SIGINT");
    expect(await stack.exitCode).toBe(0);

    // initdb's marker beside it (say, of an earlier failed setup) never makes a started cluster look unfinished
    fs.mkdirSync(path.join(dataDir, "postgres.initdb"));
    // a reboot reused the pid the file names, for a process that is not this directory's postmaster
    fs.writeFileSync(
      path.join(dataDir, "postgres", "postmaster.pid"),
      `${process.pid}\n${dataDir}/postgres\n`,
    );
    stack = startStack(env);
    await waitForOutput(stack, STARTED);
    expect(stack.output()).toContain("No pending migrations to apply.");
    process.kill(poolerPid(stack), "SIGKILL");
    expect(await stack.exitCode).toBe(1);
    expect(stack.output()).toContain("pooler exited unexpectedly (killed by SIGKILL)");
    expect(postgresRunningIn(path.join(dataDir, "postgres"))).toBe(false);
  }, 120_000);

  // As root PostgreSQL runs as `postgres`, which cannot reach into a folder closed to others (a
  // home directory such as /root, mode 700): initdb's "Permission denied" did not say what to do.
  it.skipIf(process.getuid?.() !== 0)(
    "as root, says when the postgres user cannot reach DATA_DIR, and what to set instead",
    async () => {
      fs.chmodSync(dataDir, 0o700);
      stack = startStack({ ...env, DATA_DIR: path.join(dataDir, "data") });
      expect(await stack.exitCode).toBe(1);
      expect(stack.output()).toContain(
        `the OS user postgres, which npm start runs PostgreSQL as under root, cannot reach ${dataDir}/data/postgres`,
      );
      expect(stack.output()).toContain("DATA_DIR=/var/lib/try-ts-pooler npm start");
    },
    60_000,
  );

  it("serves from a DATA_DIR with spaces in it, deep enough that PostgreSQL's socket there would not fit", async () => {
    const deep = path.join(dataDir, "my data", "d".repeat(100 - dataDir.length));
    fs.mkdirSync(deep, { recursive: true, mode: 0o755 });
    stack = startStack({ ...env, DATA_DIR: deep });
    await waitForOutput(stack, STARTED);
    expect((await fetch(`http://127.0.0.1:${env.PORT}/`)).status).toBe(200);
    expect(fs.existsSync(path.join(deep, "postgres", "PG_VERSION"))).toBe(true);
  }, 120_000);

  it("runs without the metrics port when METRICS_PORT=0, the pooler's own 'off'", async () => {
    stack = startStack({ ...env, METRICS_PORT: "0" });
    await waitForOutput(stack, STARTED);
    expect((await fetch(`http://127.0.0.1:${env.PORT}/`)).status).toBe(200);
    const pooler = processes().find((p) => p.pid === poolerPid(stack!))!;
    expect(fs.readFileSync(`/proc/${pooler.pid}/environ`, "utf8").split("\0")).toContain("METRICS_PORT=0");
  }, 120_000);

  it("starts over after a first start killed during initdb, instead of failing on a half-made cluster", async () => {
    stack = startStack(env);
    await killDuringInitdb(stack, dataDir);

    stack = startStack(env);
    await waitForOutput(stack, STARTED);
    expect((await fetch(`http://127.0.0.1:${env.PORT}/`)).status).toBe(200);
  }, 150_000);

  // tmpfs mounts (root only) stand for a read-only DATA_DIR and for a volume mounted at
  // DATA_DIR/postgres (docker run -v pgdata:/app/.data/postgres): that directory is there, empty,
  // and cannot be renamed over as initdb's work beside it used to be.
  describe.skipIf(process.getuid?.() !== 0)("on mounted file systems", () => {
    let mount: string;

    /** Mounts an empty tmpfs at DATA_DIR/`at` for `test`, unmounted once its stack has stopped. */
    async function withMount(test: () => Promise<void>, at = "postgres", options = "rw"): Promise<void> {
      mount = path.join(dataDir, at);
      fs.mkdirSync(mount);
      execFileSync("mount", ["-t", "tmpfs", "-o", `${options},mode=755`, "tmpfs", mount]);
      try {
        await test();
      } finally {
        if (stack && stack.proc.exitCode === null) {
          stack.proc.kill("SIGINT");
          await stack.exitCode;
        }
        execFileSync("umount", [mount]);
      }
    }

    it(
      "says a read-only DATA_DIR is read-only",
      () =>
        withMount(
          async () => {
            stack = startStack({ ...env, DATA_DIR: mount });
            expect(await stack.exitCode).toBe(1);
            // it said ENOENT, no such file or directory, for the folder it was making
            expect(stack.output()).toContain(
              `EROFS: read-only file system, mkdir '${mount}/postgres.initdb'`,
            );
          },
          "read-only",
          "ro",
        ),
      60_000,
    );

    it(
      "says a DATA_DIR it cannot make in a read-only folder cannot be made, and why",
      () =>
        withMount(
          async () => {
            stack = startStack({ ...env, DATA_DIR: path.join(mount, "data") });
            expect(await stack.exitCode).toBe(1);
            // Node's recursive mkdir said ENOENT, no such file or directory
            expect(stack.output()).toContain(
              `cannot make ${mount}/data: EROFS: read-only file system, mkdir '${mount}/data'`,
            );
          },
          "read-only",
          "ro",
        ),
      60_000,
    );

    it(
      "makes the cluster in an empty DATA_DIR/postgres, starting over after a first start killed during initdb",
      () =>
        withMount(async () => {
          stack = startStack(env);
          await killDuringInitdb(stack, dataDir);

          stack = startStack(env);
          await waitForOutput(stack, STARTED);
          expect((await fetch(`http://127.0.0.1:${env.PORT}/`)).status).toBe(200);
          expect(fs.existsSync(path.join(mount, "PG_VERSION"))).toBe(true);
          expect(fs.readdirSync(dataDir)).toEqual(["postgres"]);
        }),
      150_000,
    );

    it(
      "refuses a DATA_DIR/postgres holding something else, and leaves it as it is",
      () =>
        withMount(async () => {
          fs.writeFileSync(path.join(mount, "notes.txt"), "");
          stack = startStack(env);
          expect(await stack.exitCode).toBe(1);
          expect(stack.output()).toContain(
            `${mount} holds files but no PostgreSQL cluster (no PG_VERSION): move it away`,
          );
          expect(fs.readdirSync(mount)).toEqual(["notes.txt"]);
        }),
      60_000,
    );
  });

  it("says to use a subdirectory of a volume mounted at DATA_DIR/postgres (lost+found), as PostgreSQL advises, and leaves it", async () => {
    const volume = path.join(dataDir, "postgres");
    fs.mkdirSync(path.join(volume, "lost+found"), { recursive: true });
    stack = startStack(env);
    expect(await stack.exitCode).toBe(1);
    expect(stack.output()).toContain(
      `${volume} holds lost+found, perhaps being a mount point: PostgreSQL advises against a mount point as the data directory ` +
        `("Create a subdirectory under the mount point"): set DATA_DIR=${volume}, and the cluster is made in ${volume}/postgres`,
    );
    expect(fs.readdirSync(volume)).toEqual(["lost+found"]);
  }, 60_000);

  it("says what to do with a cluster an older start's initdb left unfinished in place, and keeps it", async () => {
    // Starts before this one ran initdb in DATA_DIR/postgres itself, as this one does in an empty
    // directory there, without the marker beside it. Killed once template1 is made, before the
    // other databases and the password, it left a cluster that PostgreSQL starts.
    const cluster = path.join(dataDir, "postgres");
    fs.mkdirSync(cluster);
    stack = startStack(env);
    const templateOnly = () => fs.existsSync(path.join(cluster, "base", "1", "PG_VERSION"));
    await killDuringInitdb(stack, dataDir, templateOnly);
    fs.rmSync(`${cluster}.initdb`, { recursive: true, force: true });
    expect(fs.readdirSync(path.join(cluster, "base"))).toEqual(["1"]);

    stack = startStack(env);
    expect(await stack.exitCode).toBe(1);
    expect(stack.output()).toContain(
      `${cluster} holds a PostgreSQL cluster whose initdb never finished (base/ lacks the databases it makes): move it away`,
    );
    expect(fs.readdirSync(path.join(cluster, "base"))).toEqual(["1"]);
  }, 150_000);

  it("refuses a second start on the same DATA_DIR while the first's initdb runs, leaving it to finish", async () => {
    stack = startStack(env);
    await waitForInitdb(stack, dataDir);
    const second = startStack(await otherPorts(env));
    try {
      // it used to remove the first's work under it and start a cluster of its own
      const started = waitForOutput(second, STARTED).then(
        () => "started",
        () => "exited",
      );
      expect(await Promise.race([second.exitCode, started])).toBe(1);
    } finally {
      if (second.proc.exitCode === null) second.proc.kill("SIGINT");
      await second.exitCode;
    }
    expect(second.output()).toMatch(/postgres is in use by PostgreSQL \(pid \d+\) of another run/);
    await waitForOutput(stack, STARTED);
    expect((await fetch(`http://127.0.0.1:${env.PORT}/`)).status).toBe(200);
  }, 150_000);

  it("recovers after a hard kill: the pooler and the app stop by themselves, the next start takes over", async () => {
    stack = startStack(env);
    await waitForOutput(stack, STARTED);
    const start = startPid(stack);
    const children = processes()
      .filter((p) => p.ppid === start && / \S+\/(pooler\/main|app\/server)\.ts$/.test(p.args))
      .map((p) => p.pid);
    expect(children).toHaveLength(2);

    process.kill(start, "SIGKILL");
    // left running, they would hold their ports with no one to stop them
    await waitUntilGone("the pooler and the app", children).catch((err: unknown) => {
      for (const pid of children) process.kill(pid, "SIGKILL");
      throw err;
    });
    await stack.exitCode;

    // the orphaned postmaster is still there: the next start stops it and goes on
    expect(postgresRunningIn(path.join(dataDir, "postgres"))).toBe(true);
    stack = startStack(env);
    await waitForOutput(stack, STARTED);
    expect((await fetch(`http://127.0.0.1:${env.PORT}/`)).status).toBe(200);
  }, 120_000);
});
