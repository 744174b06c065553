// Unix-domain sockets on both sides, as PgBouncer: the pooler listens on unix_socket_dir (mode,
// group, a stale file from a crash replaced, a live one refused), and reaches PostgreSQL through its
// socket directory (host=/dir, or no host= at all); either may be a name in Linux's abstract
// namespace (@…). Real psql, node-postgres and PostgreSQL 13.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { cancelRequest } from "../../pooler/protocol/messages.ts";
import { makeCerts, type TestCerts } from "../support/certs.ts";
import { connect, errorOf, psql, rawExchange } from "../support/clients.ts";
import { freePort } from "../support/ports.ts";
import { startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";

let dir: string;
let certs: TestCerts;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-unix-"));
  fs.writeFileSync(path.join(dir, "userlist.txt"), '"postgres" ""\n');
  certs = makeCerts();
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  certs.remove();
});

const pgSocketDir = (): string => inject("pgSocketDir");
/** The ini lines of auth_type = trust: as in PgBouncer, a user it lets in must still be listed. */
const trustLines = (): string[] => ["auth_type = trust", `auth_file = ${path.join(dir, "userlist.txt")}`];
/** DATABASE_URL through PostgreSQL's own socket directory (libpq's ?host=). */
const unixDatabaseUrl = (): string =>
  `postgresql://postgres:postgres@localhost:${inject("pgPort")}/app?host=${encodeURIComponent(pgSocketDir())}`;

const socketPath = (p: TestPooler): string => path.join(dir, `.s.PGSQL.${p.port}`);
/** A libpq URL to the pooler's Unix socket. */
const psqlUrl = (p: TestPooler, db = "app"): string =>
  `postgresql://postgres:postgres@/${db}?host=${encodeURIComponent(dir)}&port=${p.port}`;
/** node-postgres reads a host starting with "/" as a socket directory. */
const unixClient = (p: TestPooler, extra: pg.ClientConfig = {}): Promise<pg.Client> =>
  connect("", { host: dir, port: p.port, user: "postgres", password: "postgres", database: "app", ...extra });

interface SocketRow {
  type: string;
  database: string;
  addr: string;
  port: number;
  local_addr: string;
}

describe("Unix-domain sockets", () => {
  it("psql and node-postgres come in through unix_socket_dir and reach PostgreSQL through its socket", () =>
    withTestPooler({ UNIX_SOCKET_DIR: dir, DATABASE_URL: unixDatabaseUrl() }, async (p) => {
      expect(fs.statSync(socketPath(p)).isSocket()).toBe(true);
      expect(fs.statSync(socketPath(p)).mode & 0o777).toBe(0o777);
      expect(p.logs.find((l) => l.msg === "listening")).toMatchObject({ unix_socket: socketPath(p) });

      // inet_client_addr() is NULL for a backend reached through a Unix socket, an address over TCP
      const { stdout } = await psql(psqlUrl(p), "SELECT coalesce(host(inet_client_addr()), 'unix')");
      expect(stdout.trim()).toBe("unix");

      const c = await unixClient(p);
      const admin = await connect("", {
        host: dir,
        port: p.port,
        user: "postgres",
        password: "postgres",
        database: "pgbouncer",
      });
      try {
        await c.query("BEGIN");
        const clients = (await admin.query<SocketRow>("SHOW CLIENTS")).rows;
        const servers = (await admin.query<SocketRow>("SHOW SERVERS")).rows;
        expect(clients.filter((r) => r.database === "app")).toEqual([
          expect.objectContaining({ addr: "unix", port: p.port, local_addr: "unix" }),
        ]);
        expect(servers).toContainEqual(
          expect.objectContaining({ type: "S", addr: "unix", port: inject("pgPort"), local_addr: "unix" }),
        );
        await c.query("COMMIT");
      } finally {
        await Promise.all([c.end(), admin.end()]);
      }
      // TCP goes on working beside it
      expect((await psql(p.url(), "SELECT 2")).stdout.trim()).toBe("2");
    }).then(() => {
      // libuv removes the socket file when the listener closes
      expect(fs.readdirSync(dir).filter((f) => f.startsWith(".s.PGSQL."))).toEqual([]);
    }));

  it("a cancel request over the Unix socket reaches a query running through PostgreSQL's socket", () =>
    withTestPooler({ UNIX_SOCKET_DIR: dir, DATABASE_URL: unixDatabaseUrl() }, async (p) => {
      const c = await unixClient(p);
      try {
        const key = c as unknown as { processID: number; secretKey: number };
        const started = Date.now();
        const slow = errorOf(c.query("SELECT pg_sleep(10)"));
        await new Promise((r) => setTimeout(r, 300));
        await rawExchange(socketPath(p), cancelRequest(key.processID, key.secretKey), 1000);
        expect((await slow).code).toBe("57014");
        expect(Date.now() - started).toBeLessThan(5000);
      } finally {
        await c.end();
      }
    }));

  it("unix_socket_mode and unix_socket_group apply to the socket file; application_name_add_host says unix", () => {
    const gid = process.getgid!();
    const group = fs
      .readFileSync("/etc/group", "utf8")
      .split("\n")
      .map((l) => l.split(":"))
      .find((f) => f[2] === String(gid))![0]!;
    return withTestPooler(
      {
        UNIX_SOCKET_DIR: dir,
        UNIX_SOCKET_MODE: "0660",
        UNIX_SOCKET_GROUP: group,
        APPLICATION_NAME_ADD_HOST: "1",
      },
      async (p) => {
        const st = fs.statSync(socketPath(p));
        expect(st.mode & 0o777).toBe(0o660);
        expect(st.gid).toBe(gid);
        expect((await psql(psqlUrl(p), "SELECT 1")).stdout.trim()).toBe("1");
        // application_name_add_host names the socket and its port, as PgBouncer's "unix" address
        const c = await unixClient(p, { application_name: "app1" } as pg.ClientConfig);
        expect((await c.query("SHOW application_name")).rows[0].application_name).toBe(
          `app1 - unix:${p.port}`,
        );
        await c.end();
      },
    );
  });

  it("refuses an unknown unix_socket_group at start, listening nowhere", async () => {
    const port = await freePort();
    const err = await errorOf(
      startTestPooler({
        UNIX_SOCKET_DIR: dir,
        UNIX_SOCKET_GROUP: "no-such-group-here",
        LISTEN_PORT: String(port),
      }),
    );
    expect(err.message).toBe('unix_socket_group: no group named "no-such-group-here"');
    expect(fs.existsSync(path.join(dir, `.s.PGSQL.${port}`))).toBe(false);
    expect((await errorOf(connect(`postgresql://postgres:postgres@127.0.0.1:${port}/app`))).message).toMatch(
      /ECONNREFUSED/,
    );
  });

  it("replaces the socket file a killed pooler left; refuses one another process listens on", async () => {
    const port = await freePort();
    const file = path.join(dir, `.s.PGSQL.${port}`);
    // a process that dies by SIGKILL right after binding leaves its socket file behind
    await new Promise<void>((resolve) => {
      const child = spawn(process.execPath, [
        "-e",
        `require("net").createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, "SIGKILL"))`,
      ]);
      child.on("exit", () => resolve());
    });
    expect(fs.statSync(file).isSocket()).toBe(true);
    const env = { UNIX_SOCKET_DIR: dir, LISTEN_PORT: String(port) };
    const p = await startTestPooler(env);
    try {
      expect((await psql(psqlUrl(p), "SELECT 3")).stdout.trim()).toBe("3");
      // a second pooler on another TCP address but the same socket must not take it over
      const err = await errorOf(startTestPooler({ ...env, LISTEN_ADDR: "127.0.0.2" }));
      expect(err.message).toBe(`${file}: another process listens on it (a pooler already running?)`);
      expect((await psql(psqlUrl(p), "SELECT 4")).stdout.trim()).toBe("4");
    } finally {
      await p.stop();
    }
  });

  it("offers no TLS over the Unix socket and does not require it there (client_tls_sslmode=require)", () =>
    withTestPooler(
      {
        UNIX_SOCKET_DIR: dir,
        CLIENT_TLS_SSLMODE: "require",
        CLIENT_TLS_KEY_FILE: certs.serverKey,
        CLIENT_TLS_CERT_FILE: certs.serverCert,
      },
      async (p) => {
        // over TCP a plaintext client is refused, over the socket it is in
        expect((await errorOf(connect(p.url()))).message).toBe("SSL required");
        const c = await unixClient(p);
        expect((await c.query("SELECT 5 AS n")).rows[0].n).toBe(5);
        await c.end();
        // the SSLRequest is answered 'N', as PostgreSQL and PgBouncer answer it on a Unix socket
        const ssl = await errorOf(unixClient(p, { ssl: { rejectUnauthorized: false } }));
        expect(ssl.message).toBe("The server does not support SSL connections");
      },
    ));

  it("listens on the Unix socket alone with an empty listen_addr; no host= connects through unix_socket_dir", async () => {
    const port = await freePort();
    const ini = path.join(dir, "pgbouncer.ini");
    fs.writeFileSync(
      ini,
      [
        "[databases]",
        `app = port=${inject("pgPort")} user=postgres password=postgres`,
        "[pgbouncer]",
        "listen_addr =",
        `listen_port = ${port}`,
        // the pooler's socket beside PostgreSQL's: its port is another
        `unix_socket_dir = ${pgSocketDir()}`,
        ...trustLines(),
        "admin_users = postgres",
        "pool_mode = transaction",
      ].join("\n"),
    );
    // the test helper's DATABASE_URL would add its own entry: the ini alone decides here
    const p = await startTestPooler({ DATABASE_URL: "", LISTEN_PORT: String(port) }, ini);
    try {
      const url = `postgresql://postgres@/app?host=${encodeURIComponent(pgSocketDir())}&port=${port}`;
      const { stdout } = await psql(url, "SELECT coalesce(host(inet_client_addr()), 'unix')");
      expect(stdout.trim()).toBe("unix");
      expect((await errorOf(connect(`postgresql://postgres@127.0.0.1:${port}/app`))).message).toMatch(
        /ECONNREFUSED/,
      );
      const admin = await connect("", { host: pgSocketDir(), port, user: "postgres", database: "pgbouncer" });
      try {
        const dbs = (await admin.query<{ name: string; host: string | null }>("SHOW DATABASES")).rows;
        expect(dbs.find((d) => d.name === "app")).toMatchObject({ host: null, port: inject("pgPort") });
      } finally {
        await admin.end();
      }
    } finally {
      await p.stop();
    }
  });

  it("a directory it cannot bind in is a warning while TCP listens, an error when nothing else would", async () => {
    const missing = path.join(dir, "no-such-dir");
    const p = await startTestPooler({ UNIX_SOCKET_DIR: missing });
    try {
      expect(p.logs.find((l) => l.msg === "Unix socket not available; listening on TCP only")).toMatchObject({
        err: expect.stringMatching(/^cannot listen on unix:.*no-such-dir\/\.s\.PGSQL\.\d+: listen E[A-Z]+/),
      });
      expect((await psql(p.url(), "SELECT 7")).stdout.trim()).toBe("7");
    } finally {
      await p.stop();
    }
    const port = await freePort();
    const ini = path.join(dir, "unix-only.ini");
    fs.writeFileSync(
      ini,
      `[databases]\napp = host=127.0.0.1\n[pgbouncer]\nauth_type = trust\nlisten_addr =\nunix_socket_dir = ${missing}\n`,
    );
    const err = await errorOf(startTestPooler({ DATABASE_URL: "", LISTEN_PORT: String(port) }, ini));
    expect(err.message).toMatch(/^cannot listen on unix:.*: listen E[A-Z]+/);
  });

  it("refuses a socket path longer than a Unix socket allows, instead of binding a truncated one", async () => {
    const long = path.join(dir, "d".repeat(100));
    const err = await errorOf(startTestPooler({ UNIX_SOCKET_DIR: long, LISTEN_PORT: "6543" }));
    expect(err.message).toBe(
      `unix_socket_dir: Unix-domain socket path "${long}/.s.PGSQL.6543" is too long (maximum 107 bytes)`,
    );
    const viaHost = await errorOf(
      startTestPooler({ DATABASE_URL: `postgres://postgres:postgres@/app?host=${encodeURIComponent(long)}` }),
    );
    expect(viaHost.message).toMatch(/^\[databases\] app: Unix-domain socket path ".*" is too long/);
  });

  it("RELOAD keeps unix_socket_dir and the other restart-only settings, applies the rest, as PgBouncer", async () => {
    const port = await freePort();
    const ini = path.join(dir, "reload.ini");
    const write = (extra: string[]): void =>
      fs.writeFileSync(
        ini,
        [
          "[databases]",
          `app = host=127.0.0.1 port=${inject("pgPort")} user=postgres password=postgres`,
          "[pgbouncer]",
          `listen_port = ${port}`,
          ...trustLines(),
          "admin_users = postgres",
          ...extra,
        ].join("\n"),
      );
    write([`unix_socket_dir = ${dir}`]);
    const p = await startTestPooler({ DATABASE_URL: "", LISTEN_PORT: String(port) }, ini);
    const consoleUrl = `postgresql://postgres@/pgbouncer?host=${encodeURIComponent(dir)}&port=${port}`;
    try {
      write(["unix_socket_dir =", "default_pool_size = 7", `listen_port = ${port + 1}`]);
      await psql(consoleUrl, "RELOAD");
      const config = (await psql(consoleUrl, "SHOW CONFIG")).stdout;
      expect(config).toContain(`unix_socket_dir|${dir}|/tmp|no`);
      expect(config).toContain("default_pool_size|7|20|yes");
      expect(p.logs.map((l) => l.msg)).toContain(
        'unix_socket_dir: changed to "", which takes effect at a restart',
      );
      // still reachable where it listens
      expect((await psql(psqlUrl(p), "SELECT 8")).stdout.trim()).toBe("8");
    } finally {
      await p.stop();
    }
  });

  describe("in the abstract namespace (@…)", () => {
    let names = 0;
    /** A name of this run's own: the namespace is the machine's, other runs may use it too. */
    const abstractDir = (): string => `@try-ts-pooler-${process.pid}-${++names}`;
    /** What listens (or is connected) in the abstract namespace now, named as the kernel names it. */
    const abstractSockets = (): string[] =>
      fs
        .readFileSync("/proc/net/unix", "utf8")
        .split("\n")
        .map((line) => line.split(" ").at(-1)!)
        .filter((name) => name.startsWith("@"));
    const listenAbstract = (server: net.Server, name: string): Promise<void> =>
      new Promise((resolve) => server.listen(`\0${name.slice(1)}`, resolve));
    /**
     * PostgreSQL 13 cannot listen in the abstract namespace (PostgreSQL 14 can): a relay there hands
     * each connection to its socket file, so the pooler dials @dir and PostgreSQL 13 answers.
     */
    async function postgresAt(dir: string): Promise<net.Server> {
      const relay = net.createServer((client) => {
        const server = net.connect(path.join(pgSocketDir(), `.s.PGSQL.${inject("pgPort")}`));
        client.pipe(server).pipe(client);
        client.on("error", () => server.destroy());
        server.on("error", () => client.destroy());
      });
      await listenAbstract(relay, `${dir}/.s.PGSQL.${inject("pgPort")}`);
      return relay;
    }

    it("listens at unix_socket_dir=@dir, named as the kernel names it, with no file for unix_socket_group; psql comes in with host=@dir", async () => {
      const dir = abstractDir();
      let name = "";
      await withTestPooler({ UNIX_SOCKET_DIR: dir, UNIX_SOCKET_GROUP: "no-such-group" }, async (p) => {
        name = `${dir}/.s.PGSQL.${p.port}`;
        expect(abstractSockets()).toContain(name);
        expect(p.logs.find((l) => l.msg === "listening")).toMatchObject({ unix_socket: name });
        // psql, as node-postgres takes only a host starting with / for a socket directory
        const url = (db: string): string =>
          `postgresql://postgres:postgres@/${db}?host=${encodeURIComponent(dir)}&port=${p.port}`;
        expect((await psql(url("app"), "SELECT 1")).stdout.trim()).toBe("1");
        expect((await psql(url("pgbouncer"), "SHOW CONFIG")).stdout).toContain(
          `unix_socket_dir|${dir}|/tmp|no`,
        );
        // the console's own session: addr, port, local_addr, local_port as for a socket file
        expect((await psql(url("pgbouncer"), "SHOW CLIENTS")).stdout).toContain(
          `C|postgres|pgbouncer|none|idle|unix|${p.port}|unix|${p.port}|`,
        );
      });
      expect(abstractSockets()).not.toContain(name);
    });

    it("refuses at start an abstract name another process listens on", async () => {
      const dir = abstractDir();
      const port = await freePort();
      const holder = net.createServer();
      await listenAbstract(holder, `${dir}/.s.PGSQL.${port}`);
      try {
        const err = await errorOf(startTestPooler({ UNIX_SOCKET_DIR: dir, LISTEN_PORT: String(port) }));
        expect(err.message).toBe(
          `${dir}/.s.PGSQL.${port}: another process listens on it (a pooler already running?)`,
        );
        expect(
          (await errorOf(connect(`postgresql://postgres:postgres@127.0.0.1:${port}/app`))).message,
        ).toMatch(/ECONNREFUSED/);
      } finally {
        holder.close();
      }
    });

    it("reaches PostgreSQL at host=@dir, or through unix_socket_dir=@dir: queries and cancels go there, a refusal names it", async () => {
      const socketDir = abstractDir();
      const relay = await postgresAt(socketDir);
      const pgPort = inject("pgPort");
      const ini = path.join(dir, "abstract.ini");
      fs.writeFileSync(
        ini,
        [
          "[databases]",
          `app = host=${socketDir} port=${pgPort} user=postgres password=postgres`,
          `nohost = port=${pgPort} dbname=app user=postgres password=postgres`,
          "[pgbouncer]",
          // where nohost connects: PostgreSQL's, and the pooler's socket beside it (another port)
          `unix_socket_dir = ${socketDir}`,
          ...trustLines(),
          "admin_users = postgres",
          "pool_mode = transaction",
          // a refused connection is a restarting server, waited for up to server_login_retry
          "server_login_retry = 1",
        ].join("\n"),
      );
      try {
        const p = await startTestPooler({ DATABASE_URL: "" }, ini);
        try {
          // both sides abstract: psql in at @dir, PostgreSQL (inet_client_addr() NULL) out at @dir
          const url = `postgresql://postgres@/nohost?host=${encodeURIComponent(socketDir)}&port=${p.port}`;
          const { stdout } = await psql(url, "SELECT coalesce(host(inet_client_addr()), 'unix')");
          expect(stdout.trim()).toBe("unix");
          const c = await connect(p.url());
          const admin = await connect(p.url("pgbouncer"));
          try {
            const dbs = (await admin.query<{ name: string; host: string | null }>("SHOW DATABASES")).rows;
            expect(dbs.filter((d) => d.name !== "pgbouncer")).toEqual([
              expect.objectContaining({ name: "app", host: socketDir, port: pgPort }),
              expect.objectContaining({ name: "nohost", host: null, port: pgPort }),
            ]);
            await c.query("BEGIN");
            expect((await admin.query<SocketRow>("SHOW SERVERS")).rows).toContainEqual(
              expect.objectContaining({ type: "S", addr: "unix", port: pgPort, local_addr: "unix" }),
            );
            await c.query("COMMIT");
            // the pooler's CancelRequest goes to @dir too
            const key = c as unknown as { processID: number; secretKey: number };
            const slow = errorOf(c.query("SELECT pg_sleep(10)"));
            await new Promise((r) => setTimeout(r, 300));
            await rawExchange(p.port, cancelRequest(key.processID, key.secretKey), 1000);
            expect((await slow).code).toBe("57014");

            // PostgreSQL's socket goes away, the pooled server with it: the next one is refused
            relay.close();
            await admin.query("RECONNECT app");
            const refused = await errorOf(c.query("SELECT 1"));
            expect(refused.message).toContain(`connect ECONNREFUSED ${socketDir}/.s.PGSQL.${pgPort}`);
          } finally {
            await Promise.all([c.end(), admin.end()]);
          }
        } finally {
          await p.stop();
        }
      } finally {
        relay.close();
      }
    });
  });
});
