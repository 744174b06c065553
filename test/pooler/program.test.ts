// The pooler as a program: a pgbouncer.ini + userlist.txt, SIGHUP reload, graceful SIGTERM, PgBouncer's
// other signals, and start-up errors that name the key and the expected form.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import { makeCerts, type TestCerts } from "../support/certs.ts";
import { connect, errorOf, fatalDuring } from "../support/clients.ts";
import { spawnPooler, type PoolerProcess } from "../support/pooler-process.ts";
import { hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { freePort } from "../support/ports.ts";
import { waitFor as waitForWithin } from "../support/wait.ts";

/** Child processes start slower than in-process poolers. */
const waitFor = (cond: () => boolean, what: string): Promise<void> => waitForWithin(cond, what, 15_000);

const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
});

function runPooler(args: string[], env: Record<string, string>, runner?: string[]): PoolerProcess {
  const p = spawnPooler(args, env, runner);
  children.push(p.child);
  return p;
}

/** The pooler on environment variables alone, in transaction pooling on a free port, listening. */
async function runTransactionPooler(env: Record<string, string> = {}) {
  const port = await freePort();
  const p = runPooler([], {
    DATABASE_URL: inject("pgAppUrl"),
    LISTEN_PORT: String(port),
    POOL_MODE: "transaction",
    ...env,
  });
  await waitFor(() => p.output().includes('"listening"'), "the pooler to listen");
  return { p, url: (db: string) => `postgresql://postgres:postgres@127.0.0.1:${port}/${db}` };
}

/**
 * The pooler held in its start-up, as a slow secrets agent holds it: it reads its TLS key from a
 * pipe (a FIFO), which `handKey` writes when the test chooses.
 */
async function heldAtStartup({ dir, serverKey, serverCert }: TestCerts) {
  const fifo = path.join(dir, "server-key.fifo");
  execFileSync("mkfifo", [fifo]);
  const pidfile = path.join(dir, "pooler.pid");
  const port = await freePort();
  const p = runPooler([], {
    DATABASE_URL: inject("pgAppUrl"),
    LISTEN_PORT: String(port),
    CLIENT_TLS_SSLMODE: "require",
    CLIENT_TLS_KEY_FILE: fifo,
    CLIENT_TLS_CERT_FILE: serverCert,
    PIDFILE: pidfile,
  });
  // the open returns once the pooler has opened the pipe to read it: it is starting, the key to come
  const writer = await fs.promises.open(fifo, "w");
  const handKey = async (): Promise<void> => {
    try {
      await writer.writeFile(fs.readFileSync(serverKey));
    } finally {
      await writer.close();
    }
  };
  return {
    p,
    fifo,
    pidfile,
    handKey,
    url: (db: string) => `postgresql://postgres:postgres@127.0.0.1:${port}/${db}`,
  };
}

function writeIni(dir: string, port: number, maxClients: number, extra: string[] = []): string {
  const pg = new URL(inject("pgAppUrl"));
  fs.writeFileSync(path.join(dir, "userlist.txt"), `"postgres" "postgres"\n`);
  const ini = path.join(dir, "pgbouncer.ini");
  fs.writeFileSync(
    ini,
    [
      "[databases]",
      `appdb = host=127.0.0.1 port=${pg.port} dbname=app`,
      "",
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "auth_type = md5",
      `auth_file = ${path.join(dir, "userlist.txt")}`,
      "pool_mode = transaction",
      `max_client_conn = ${maxClients}`,
      `logfile = ${path.join(dir, "pooler.log")}`,
      `pidfile = ${path.join(dir, "pooler.pid")}`,
      ...extra,
      "",
    ].join("\n"),
  );
  return ini;
}

describe("pooler program", () => {
  it("runs from a pgbouncer.ini and reloads it on SIGHUP", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-ini-"));
    const port = await freePort();
    const ini = writeIni(dir, port, 1);
    const p = runPooler([ini], {});
    await waitFor(() => p.output().includes('"listening"'), "the pooler to listen");
    const url = `postgresql://postgres:postgres@127.0.0.1:${port}/appdb`;
    const a = await connect(url);
    expect((await a.query("SELECT current_database() AS d")).rows[0].d).toBe("app");
    expect((await errorOf(connect(url))).code).toBe("53300");
    writeIni(dir, port, 5);
    // logrotate's way: move the file away, then SIGHUP opens logfile anew
    const log = path.join(dir, "pooler.log");
    fs.renameSync(log, `${log}.1`);
    p.child.kill("SIGHUP");
    await waitFor(() => p.output().includes("configuration reloaded"), "the reload");
    const b = await connect(url);
    expect((await b.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    await Promise.all([a.end(), b.end()]);
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    // the same JSON lines as stdout's, before and after the rotation
    expect(fs.readFileSync(`${log}.1`, "utf8")).toMatch(/"msg":"listening"/);
    expect(fs.readFileSync(`${log}.1`, "utf8")).not.toMatch(/configuration reloaded/);
    expect(fs.readFileSync(log, "utf8")).toMatch(
      /"msg":"configuration reloaded"[\s\S]*"msg":"shutting down"/,
    );
  });

  it("a RELOAD that names a log file it cannot open keeps the open one, and SHOW CONFIG says so", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-log-"));
    const port = await freePort();
    const ini = writeIni(dir, port, 5);
    fs.appendFileSync(ini, "admin_users = postgres\n");
    const p = runPooler([ini], {});
    await waitFor(() => p.output().includes('"listening"'), "the pooler to listen");
    fs.writeFileSync(
      ini,
      fs.readFileSync(ini, "utf8").replace(/^logfile = .*$/m, "logfile = /nonexistent-dir/x.log"),
    );
    const admin = await connect(`postgresql://postgres:postgres@127.0.0.1:${port}/pgbouncer`);
    try {
      await admin.query("RELOAD");
      const shown = (await admin.query("SHOW CONFIG")).rows.find((r) => r.key === "logfile");
      expect(shown.value).toBe(path.join(dir, "pooler.log"));
    } finally {
      await admin.end();
    }
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(fs.readFileSync(path.join(dir, "pooler.log"), "utf8")).toMatch(
      /logfile: cannot open \/nonexistent-dir\/x.log[\s\S]*"msg":"shutting down"/,
    );
  });

  it("reads a TLS key once at start: one handed over through a pipe (a FIFO), as PgBouncer 1.18 takes it, and not again at a SET of another setting", async () => {
    const certs = makeCerts();
    try {
      const fifo = path.join(certs.dir, "server-key.fifo");
      execFileSync("mkfifo", [fifo]);
      // the secret's one writer, as a secrets agent or a shell's <(…) is: a second open would wait forever
      const written = fs.promises.writeFile(fifo, fs.readFileSync(certs.serverKey));
      const { p, url } = await runTransactionPooler({
        CLIENT_TLS_SSLMODE: "require",
        CLIENT_TLS_KEY_FILE: fifo,
        CLIENT_TLS_CERT_FILE: certs.serverCert,
      });
      await written;
      const ssl = { ssl: { rejectUnauthorized: false } };
      const c = await connect(url("app"), ssl);
      const admin = await connect(url("pgbouncer"), ssl);
      try {
        expect((await c.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
        // PgBouncer reads the TLS files again at a SET of a TLS setting only: here, reading the
        // pipe again would wait for a writer that never comes, with the whole pooler stopped
        const set = admin.query("SET default_pool_size = 5").then(() => "set");
        const stuck = new Promise((r) => setTimeout(r, 3000, "no answer"));
        expect(await Promise.race([set, stuck])).toBe("set");
        expect((await c.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
      } finally {
        p.child.kill("SIGKILL");
        await Promise.allSettled([c.end(), admin.end()]);
      }
    } finally {
      certs.remove();
    }
  });

  it("pidfile: holds the pid while it runs, keeps a second pooler from starting, goes at exit", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-pid-"));
    const ini = writeIni(dir, await freePort(), 5);
    const pidfile = path.join(dir, "pooler.pid");
    // a stale file, left by a process that is gone, is replaced
    fs.writeFileSync(pidfile, "999999\n");
    const p = runPooler([ini], {});
    await waitFor(() => p.output().includes('"listening"'), "the pooler to listen");
    expect(fs.readFileSync(pidfile, "utf8")).toBe(`${p.child.pid}\n`);
    const second = runPooler([writeIni(dir, await freePort(), 5)], {});
    expect(await second.exited).toBe(1);
    expect(second.output()).toMatch(
      new RegExp(
        `pidfile: ${pidfile} names process ${p.child.pid}, which is running \\(another pooler\\?\\)`,
      ),
    );
    expect(fs.readFileSync(pidfile, "utf8")).toBe(`${p.child.pid}\n`);
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(fs.existsSync(pidfile)).toBe(false);
  });

  it.each(["SIGTERM", "SIGINT"] as const)(
    "%s during start-up exits 0 and leaves no pidfile, as a shutdown once started",
    async (signal) => {
      const certs = makeCerts();
      try {
        const held = await heldAtStartup(certs);
        held.p.child.kill(signal);
        await held.handKey().catch(() => undefined); // a pooler the signal ended reads no more
        expect(await held.p.exited).toBe(0);
        expect(fs.existsSync(held.pidfile)).toBe(false);
      } finally {
        certs.remove();
      }
    },
  );

  it("SIGHUP during start-up does not end it: the reload follows once started", async () => {
    const certs = makeCerts();
    try {
      const held = await heldAtStartup(certs);
      held.p.child.kill("SIGHUP");
      // The reload reads the TLS key again, from a plain file put where the pipe was: the start-up
      // read keeps the pipe it opened. (A second writer on the pipe could join the start-up read
      // before its end, leaving the reload blocked on a pipe with no writer.)
      fs.unlinkSync(held.fifo);
      fs.writeFileSync(held.fifo, fs.readFileSync(certs.serverKey));
      await held.handKey().catch(() => undefined);
      const reloaded = () => held.p.output().includes('"msg":"configuration reloaded"');
      await Promise.race([waitFor(reloaded, "the reload"), held.p.exited]);
      expect(held.p.child.signalCode).toBeNull();
      expect(reloaded()).toBe(true);
      await waitFor(() => held.p.output().includes('"listening"'), "the pooler to listen");
      const c = await connect(held.url("app"), { ssl: { rejectUnauthorized: false } });
      try {
        expect((await c.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
      } finally {
        await c.end();
      }
      held.p.child.kill("SIGTERM");
      expect(await held.p.exited).toBe(0);
      expect(fs.existsSync(held.pidfile)).toBe(false);
    } finally {
      certs.remove();
    }
  });

  it("refuses to start with a logfile it cannot open", async () => {
    const p = runPooler([], { DATABASE_URL: inject("pgAppUrl"), LOGFILE: "/nonexistent-dir/pooler.log" });
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(
      /configuration error: logfile: cannot open \/nonexistent-dir\/pooler.log: .*ENOENT/,
    );
  });

  it("SIGTERM: stops accepting, lets the open transaction finish, then exits 0", async () => {
    const { p, url } = await runTransactionPooler();
    const a = await connect(url("app"));
    await a.query("BEGIN");
    await a.query("CREATE TEMP TABLE t_shutdown (x int) ON COMMIT DROP");
    p.child.kill("SIGTERM");
    await waitFor(() => p.output().includes("shutting down"), "shutdown to start");
    expect((await errorOf(connect(url("app")))).message).toMatch(/ECONNREFUSED|shutting down/);
    await a.query("INSERT INTO t_shutdown VALUES (1)");
    await a.query("COMMIT");
    expect(await p.exited).toBe(0);
  });

  it.each(["transaction", "session"])(
    "SIGTERM in %s pooling exits at once when no transaction runs, though an idle psql does not close its end",
    async (mode) => {
      const { p, url } = await runTransactionPooler({ POOL_MODE: mode });
      // psql at its prompt reads nothing: it leaves the connection the pooler ends half-open
      const psql = spawn("psql", [url("app")], { stdio: ["pipe", "pipe", "pipe"] });
      children.push(psql);
      let out = "";
      psql.stdout.on("data", (d: Buffer) => (out += d.toString()));
      psql.stdin.write("SELECT 41 + 1 AS answer;\n");
      await waitFor(() => out.includes("42"), "psql's answer");
      const term = Date.now();
      p.child.kill("SIGTERM");
      expect(await p.exited).toBe(0);
      // PgBouncer 1.18's SIGINT: 284 ms in transaction pooling, its janitor's tick (measured)
      expect(Date.now() - term).toBeLessThan(1_000);
    },
  );

  // PgBouncer 1.18's SIGINT waits in session pooling until its clients leave (measured: past 25 s),
  // its SIGTERM cuts every client off; ours treats a session client as a transaction pooling one
  it("SIGTERM in session pooling closes idle clients at once and one in a transaction at its end", async () => {
    const { p, url } = await runTransactionPooler({ POOL_MODE: "session", SHUTDOWN_WAIT_MS: "20000" });
    const idle = await Promise.all([1, 2, 3].map(() => connect(url("app"))));
    const inTx = await connect(url("app"));
    const told = [...idle, inTx].map(
      (c) => new Promise<Error & { code?: string }>((resolve) => c.once("error", resolve)),
    );
    try {
      for (const c of idle) await c.query("SELECT 1");
      await inTx.query("BEGIN");
      const term = Date.now();
      p.child.kill("SIGTERM");
      const idleTold = await Promise.all(told.slice(0, 3));
      expect(idleTold.map((e) => e.code)).toEqual(["57P01", "57P01", "57P01"]);
      expect(idleTold[0]!.message).toBe("pooler is shutting down");
      expect(Date.now() - term).toBeLessThan(1_000);
      expect((await inTx.query("SELECT 2 AS two")).rows[0].two).toBe(2);
      await inTx.query("COMMIT");
      const committed = Date.now();
      expect((await told[3]!).code).toBe("57P01");
      expect(await p.exited).toBe(0);
      expect(Date.now() - committed).toBeLessThan(1_000);
    } finally {
      await Promise.allSettled([...idle, inTx].map((c) => c.end()));
    }
  });

  // a client pinned to its server in transaction pooling (an advisory lock) keeps it as in session
  // pooling; its SET makes the pooler ask the server about the session after each transaction
  it.each([
    ["session pooling", "session", [], ["BEGIN", "SELECT 1", "COMMIT"]],
    [
      "transaction pooling, pinned",
      "transaction",
      ["SELECT pg_advisory_lock(1)"],
      ["BEGIN", "SET application_name = 'loop'", "COMMIT"],
    ],
  ])(
    "SIGTERM in %s ends a client running transactions back to back between two of them",
    async (_, mode, setup, statements) => {
      const { p, url } = await runTransactionPooler({ POOL_MODE: mode, SHUTDOWN_WAIT_MS: "20000" });
      const c = await connect(url("app"));
      for (const sql of setup) await c.query(sql);
      let sent = 0;
      const fatal = fatalDuring(
        c,
        (async () => {
          for (;;) await c.query(statements[sent++ % statements.length]!);
        })(),
      );
      try {
        await waitFor(() => sent > 30, "a few transactions");
        const term = Date.now();
        p.child.kill("SIGTERM");
        expect((await fatal).code).toBe("57P01");
        // the statement refused was the next transaction's BEGIN: none was cut off in the middle
        expect(statements[(sent - 1) % statements.length]).toBe("BEGIN");
        expect(await p.exited).toBe(0);
        expect(Date.now() - term).toBeLessThan(1_000);
      } finally {
        await c.end().catch(() => undefined);
      }
    },
  );

  it("PgBouncer 1.18, for comparison: its SIGINT waits for an idle session client, its SIGTERM ends it without an ErrorResponse", async () => {
    if (!hasPgBouncer()) return;
    const b = await startPgBouncer(
      { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
      { pool_mode: "session" },
    );
    const c = await connect(b.url("app"));
    const told = new Promise<Error & { code?: string }>((resolve) => c.once("error", resolve));
    try {
      await c.query("SELECT 1");
      b.signal("SIGINT");
      await new Promise((r) => setTimeout(r, 1_000));
      expect((await c.query("SELECT 2 AS two")).rows[0].two).toBe(2);
      b.signal("SIGTERM");
      await b.exited;
      const err = await told;
      expect([err.code, err.message]).toEqual([undefined, "Connection terminated unexpectedly"]);
    } finally {
      await c.end().catch(() => undefined);
      await b.stop();
    }
  });

  // PgBouncer's "fast exit"; SIGQUIT's immediate shutdown must not wait out SHUTDOWN_WAIT_MS either
  it.each(["SIGTERM", "SIGQUIT"] as const)(
    "%s while a graceful shutdown waits for a transaction exits at once, as PgBouncer's",
    async (signal) => {
      const pidfile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pooler-pid-")), "pooler.pid");
      const { p, url } = await runTransactionPooler({ SHUTDOWN_WAIT_MS: "20000", PIDFILE: pidfile });
      const a = await connect(url("app"));
      try {
        await a.query("BEGIN");
        p.child.kill("SIGTERM");
        await waitFor(() => p.output().includes("shutting down"), "shutdown to start");
        const second = Date.now();
        p.child.kill(signal);
        expect(await p.exited).toBe(0);
        expect(Date.now() - second).toBeLessThan(5_000);
        expect(fs.existsSync(pidfile)).toBe(false);
      } finally {
        await a.end().catch(() => undefined);
      }
    },
  );

  it("SIGUSR1 pauses and SIGUSR2 resumes, as PgBouncer's; SIGQUIT shuts down at once", async () => {
    const { p, url } = await runTransactionPooler({ SHUTDOWN_WAIT_MS: "20000" });
    const a = await connect(url("app"));
    const admin = await connect(url("pgbouncer"));
    const paused = async () =>
      (await admin.query("SHOW STATE")).rows.find((r) => r.key === "paused").value as string;
    try {
      await a.query("SELECT 1");
      p.child.kill("SIGUSR1");
      await waitFor(() => p.output().includes('"signal":"SIGUSR1"'), "the signal to be logged");
      expect(await paused()).toBe("yes");
      let answered = false;
      const query = a.query("SELECT 2 AS two").then((r) => ((answered = true), r.rows[0].two));
      await new Promise((r) => setTimeout(r, 300));
      expect(answered).toBe(false);
      p.child.kill("SIGUSR2");
      expect(await query).toBe(2);
      expect(await paused()).toBe("no");
      // Node's own meanings of these signals: its inspector opened to local users, an exit
      expect(p.output()).not.toMatch(/Debugger listening/);

      // SIGTERM would wait SHUTDOWN_WAIT_MS for this transaction; SIGQUIT ends it and exits
      const told = new Promise<Error & { code?: string }>((resolve) => a.once("error", resolve));
      await a.query("BEGIN");
      const quit = Date.now();
      p.child.kill("SIGQUIT");
      expect(await p.exited).toBe(0);
      expect(Date.now() - quit).toBeLessThan(5_000);
      expect((await told).code).toBe("57P01");
    } finally {
      await Promise.allSettled([a.end(), admin.end()]);
    }
  });

  it.each([
    [
      "POOL_MODE",
      "transactoin",
      /POOL_MODE: expected one of session, transaction, statement, got "transactoin"/,
    ],
    [
      "LOG_LEVEL",
      "verbose",
      /LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"/,
    ],
    ["SHUTDOWN_WAIT_MS", "soon", /SHUTDOWN_WAIT_MS: expected a whole number of milliseconds, got "soon"/],
  ])("refuses a bad %s at start-up with the key and the expected form", async (key, value, message) => {
    const p = runPooler([], { DATABASE_URL: inject("pgAppUrl"), [key]: value });
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(message);
  });
});

/** A user's uid and primary gid, as id(1) reports them. */
function idsOf(user: string): { uid: number; gid: number } {
  const id = (flag: string): number => Number(execFileSync("id", [flag, user], { encoding: "utf8" }));
  return { uid: id("-u"), gid: id("-g") };
}

/** A process's real, effective, saved and filesystem ids and its supplementary groups. */
function procIds(pid: number): Record<"Uid" | "Gid" | "Groups", number[]> {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string): number[] =>
    new RegExp(`^${name}:(.*)$`, "m").exec(status)![1]!.trim().split(/\s+/).map(Number);
  return { Uid: field("Uid"), Gid: field("Gid"), Groups: field("Groups") };
}

/** setpriv execs the pooler as `user`, in its primary group alone: a start by that user, not by root. */
function startedAs(user: string): string[] {
  const { uid, gid } = idsOf(user);
  return ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--"];
}

/** An ini with `user = postgres` and `extra`, in a directory postgres owns: its log file and pidfile go there. */
async function postgresIni(extra: string[]): Promise<{ dir: string; port: number; ini: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-user-"));
  const { uid, gid } = idsOf("postgres");
  fs.chownSync(dir, uid, gid);
  const port = await freePort();
  return { dir, port, ini: writeIni(dir, port, 5, ["user = postgres", ...extra]) };
}

// Switching users, or starting as another one with setpriv, takes root; the tests run as root here.
const root = process.getuid?.() === 0;

describe("user: the Unix user the program becomes at start, as PgBouncer's", () => {
  it.skipIf(!root)(
    "started by root, runs as the user: its ids, pidfile, log file and Unix socket are the user's",
    async () => {
      const { uid, gid } = idsOf("postgres");
      const { dir, port, ini } = await postgresIni(["admin_users = postgres"]);
      fs.appendFileSync(ini, `unix_socket_dir = ${dir}\n`);
      const p = runPooler([ini], {});
      await waitFor(() => p.output().includes('"listening"'), "the pooler to listen");
      // PgBouncer's setgroups(1, {pw_gid}): postgres is also in ssl-cert, which the pooler does not get
      expect(procIds(p.child.pid!)).toEqual({
        Uid: [uid, uid, uid, uid],
        Gid: [gid, gid, gid, gid],
        Groups: [gid],
      });
      for (const file of ["pooler.pid", "pooler.log", `.s.PGSQL.${port}`]) {
        const { uid: owner, gid: group } = fs.statSync(path.join(dir, file));
        expect({ file, owner, group }).toEqual({ file, owner: uid, group: gid });
      }
      const url = (db: string) => `postgresql://postgres:postgres@127.0.0.1:${port}/${db}`;
      const [client, admin] = await Promise.all([connect(url("appdb")), connect(url("pgbouncer"))]);
      try {
        expect((await client.query("SELECT 1 AS one")).rows[0].one).toBe(1);
        expect((await errorOf(admin.query("SET user = 'nobody'"))).message).toMatch(
          /user: cannot be changed online, restart the pooler/,
        );
      } finally {
        await Promise.all([client.end(), admin.end()]);
      }
      p.child.kill("SIGTERM");
      expect(await p.exited).toBe(0);
      expect(fs.existsSync(path.join(dir, "pooler.pid"))).toBe(false);
    },
  );

  it("refuses to start as a user that does not exist, before it writes anything", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-user-"));
    const p = runPooler([writeIni(dir, await freePort(), 5, ["user = no-such-user"])], {});
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch("configuration error: user: could not find user 'no-such-user' to switch to");
    expect(fs.readdirSync(dir).sort()).toEqual(["pgbouncer.ini", "userlist.txt"]);
  });

  it.skipIf(!root)("refuses to start when started by another user than root or the user", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-user-"));
    // nobody reads the ini, and writes nothing
    fs.chmodSync(dir, 0o755);
    const p = runPooler([writeIni(dir, await freePort(), 5, ["user = postgres"])], {}, startedAs("nobody"));
    expect(await p.exited).toBe(1);
    const { uid, gid } = idsOf("nobody");
    expect(p.output()).toContain(
      "configuration error: user: failed to assume identity of user 'postgres': EPERM, Operation not permitted " +
        `(the pooler runs as uid ${uid}, gid ${gid}: only root can take another user's ids)`,
    );
  });

  it.skipIf(!root)(
    "runs when started by the user itself, and SHOW CONFIG shows it, not changeable",
    async () => {
      const { uid } = idsOf("postgres");
      const { port, ini } = await postgresIni(["admin_users = postgres"]);
      const p = runPooler([ini], {}, startedAs("postgres"));
      await waitFor(() => p.output().includes('"listening"'), "the pooler to listen");
      expect(procIds(p.child.pid!).Uid).toEqual([uid, uid, uid, uid]);
      const admin = await connect(`postgresql://postgres:postgres@127.0.0.1:${port}/pgbouncer`);
      try {
        const row = (await admin.query("SHOW CONFIG")).rows.find((r) => r.key === "user");
        expect(row).toEqual({ key: "user", value: "postgres", default: null, changeable: "no" });
      } finally {
        await admin.end();
      }
    },
  );

  it.skipIf(!root)(
    "reads a TLS key only root may read before it becomes the user, as PgBouncer 1.18",
    async () => {
      const certs = makeCerts();
      try {
        // root's, 0600, as a key under /etc/ssl/private is
        const key = path.join(certs.dir, "root-only.key");
        fs.writeFileSync(key, fs.readFileSync(certs.serverKey), { mode: 0o600 });
        const { port, ini } = await postgresIni([
          "client_tls_sslmode = require",
          `client_tls_key_file = ${key}`,
          `client_tls_cert_file = ${certs.serverCert}`,
          "admin_users = postgres",
        ]);
        const p = runPooler([ini], {});
        await waitFor(() => p.output().includes('"listening"') || p.child.exitCode !== null, "the start");
        expect(p.output()).toContain('"listening"');
        const url = (db: string) => `postgresql://postgres:postgres@127.0.0.1:${port}/${db}`;
        const tls = { ssl: { rejectUnauthorized: false } };
        const query = async (db: string, sql: string): Promise<Record<string, unknown>[]> => {
          const c = await connect(url(db), tls);
          try {
            return (await c.query(sql)).rows as Record<string, unknown>[];
          } finally {
            await c.end();
          }
        };
        expect(await query("appdb", "SELECT 1 AS one")).toEqual([{ one: 1 }]);
        // the key cannot be read again as the user: SET and RELOAD keep the TLS in force, as
        // PgBouncer does, and change the rest
        await query("pgbouncer", "SET default_pool_size = 7");
        await query("pgbouncer", "RELOAD");
        expect(p.output()).toContain("TLS files could not be read again");
        fs.appendFileSync(ini, "default_pool_size = 9\n");
        await query("pgbouncer", "RELOAD");
        const config = await query("pgbouncer", "SHOW CONFIG");
        expect(config.find((r) => r.key === "default_pool_size")).toMatchObject({ value: "9" });
        expect(await query("appdb", "SELECT 2 AS two")).toEqual([{ two: 2 }]);
        // naming other files is a change that must load
        fs.appendFileSync(ini, `client_tls_cert_file = ${certs.serverCert}.missing\n`);
        expect((await errorOf(query("pgbouncer", "RELOAD"))).message).toMatch(/^RELOAD failed: client_tls_/);
      } finally {
        certs.remove();
      }
    },
  );

  it.skipIf(!root)("names the unix_socket_dir the user cannot create its socket in", async () => {
    const { uid } = idsOf("postgres");
    // root's, which postgres may enter but not write in
    const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-socket-"));
    fs.chmodSync(socketDir, 0o755);
    const { port, ini } = await postgresIni([`unix_socket_dir = ${socketDir}`, "listen_addr ="]);
    const p = runPooler([ini], {});
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain(
      `cannot listen on unix:${socketDir}/.s.PGSQL.${port}: listen EACCES: permission denied ${socketDir}/.s.PGSQL.${port} ` +
        `(uid ${uid}, which the pooler runs as, cannot create files in ${socketDir})`,
    );
  });
});
