import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { inDirectoryOf } from "../../test/support/cwd.ts";
import { applySetting, ConfigError, loadConfig, SETTINGS } from "./index.ts";

const FIXTURE = path.join(import.meta.dirname, "fixtures/pgbouncer.ini");

const tempDirs: string[] = [];
afterAll(() => tempDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function writeIni(text: string, userlist?: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-config-"));
  tempDirs.push(dir);
  if (userlist !== undefined) fs.writeFileSync(path.join(dir, "userlist.txt"), userlist);
  fs.writeFileSync(path.join(dir, "pgbouncer.ini"), text);
  return path.join(dir, "pgbouncer.ini");
}

describe("loadConfig", () => {
  it("loads a real-world pgbouncer.ini with its auth file", () => {
    const { config, warnings } = inDirectoryOf(FIXTURE, () => loadConfig({ env: {}, iniPath: FIXTURE }));
    expect(config).toMatchObject({
      listenAddr: "127.0.0.1",
      listenPort: 6432,
      authType: "scram-sha-256",
      authFile: "userlist.txt",
      adminUsers: ["postgres"],
      statsUsers: ["stats", "monitor"],
      poolMode: "transaction",
      defaultPoolSize: 20,
      maxClientConn: 10000,
      logConnections: false,
      logDisconnections: false,
      ignoreStartupParameters: ["extra_float_digits"],
      serverIdleTimeout: 500,
      serverTlsSslmode: "prefer",
      logfile: "/tmp/bench-pgb/pgbouncer.log",
      pidfile: "/tmp/bench-pgb/pgbouncer.pid",
      source: { iniPath: FIXTURE, env: false },
    });
    expect([...config.databases.keys()]).toEqual(["bench", "*"]);
    expect(config.users.get("report")).toEqual({
      name: "report",
      poolMode: "session",
      maxUserConnections: 5,
    });
    expect([...config.authUsers.values()].map((u) => `${u.name}:${u.kind}`)).toEqual([
      "postgres:scram",
      "stats:md5",
      "monitor:plain",
    ]);
    expect(config.authUsers.get("monitor")?.secret).toBe('plain "quoted" password');
    expect(warnings).toEqual([]);
  });

  it("connects a [databases] entry without host= through unix_socket_dir, as PgBouncer", () => {
    const { config } = loadConfig({
      env: {},
      iniPath: writeIni("[databases]\nlocal = port=5433\n[pgbouncer]\nauth_type = trust\n"),
    });
    expect(config.databases.get("local")).toMatchObject({ host: "", port: 5433 });
    expect(config.unixSocketDir).toBe("/tmp");
  });

  it("takes a name starting with @ as Linux's abstract namespace, as PgBouncer and libpq", () => {
    const { config } = loadConfig({
      env: {},
      iniPath: writeIni(
        [
          "[databases]",
          "local = port=5433",
          "abstract = host=@pg13 port=5434",
          "listed = host=@pg13,/var/run/postgresql,db1",
          "[peers]",
          "2 = host=@pooler2 port=6433",
          "[pgbouncer]",
          "auth_type = trust",
          "unix_socket_dir = @pooler",
        ].join("\n"),
      ),
    });
    expect(config.unixSocketDir).toBe("@pooler");
    expect(config.databases.get("abstract")).toMatchObject({ host: "@pg13", port: 5434 });
    expect(config.databases.get("listed")?.host).toBe("@pg13,/var/run/postgresql,db1");
    expect(config.peers.get(2)).toMatchObject({ host: "@pooler2", port: 6433 });
    const url = "postgresql://u:p@/app?host=%40pg13&port=5435";
    expect([...loadConfig({ env: { DATABASE_URL: url } }).config.databases.values()]).toEqual([
      expect.objectContaining({ host: "@pg13", port: 5435 }),
    ]);
    // DB_HOST too, up to libpq's 107 bytes for "@<dir>/.s.PGSQL.5432", as for a socket file
    const dir = (bytes: number): string => `@${"d".repeat(bytes - "@/.s.PGSQL.5432".length)}`;
    const env = (host: string) => ({ DB_HOST: host, DB_PORT: "5432", AUTH_TYPE: "trust" });
    expect([...loadConfig({ env: env(dir(107)) }).config.databases.values()]).toEqual([
      expect.objectContaining({ host: dir(107) }),
    ]);
    expect(() => loadConfig({ env: env(dir(108)) })).toThrow(
      `Unix-domain socket path "${dir(108)}/.s.PGSQL.5432" is too long (maximum 107 bytes)`,
    );
  });

  it.each([
    [
      "unix_socket_dir =\n",
      /\[databases\] local: no host= means the Unix socket in unix_socket_dir, which is empty/,
    ],
    [
      `unix_socket_dir = @${"d".repeat(100)}\n`,
      // local has no host=: it would connect there first
      /\[databases\] local: Unix-domain socket path "@d+\/\.s\.PGSQL\.5433" is too long \(maximum 107 bytes\)/,
    ],
    [
      "listen_addr =\nunix_socket_dir =\n",
      /listen_addr and unix_socket_dir are both empty: nothing to listen on/,
    ],
    ["listen_addr =\nlisten_port = 0\n", /listen_port: 0 \(a free port\) needs a TCP listen_addr/],
    [
      "listen_addr =\nmetrics_port = 9127\n",
      /metrics_port: the metrics endpoint listens on listen_addr, which is empty/,
    ],
  ])("refuses a Unix-socket setup that cannot work: %j", (settings, message) => {
    const iniPath = writeIni(`[databases]\nlocal = port=5433\n[pgbouncer]\nauth_type = trust\n${settings}`);
    expect(() => loadConfig({ env: {}, iniPath })).toThrow(message);
  });

  it.each([
    [
      "[peers]\n2 = port=6433\n[pgbouncer]\nunix_socket_dir =",
      /\[peers\] 2: no host= means the Unix socket in unix_socket_dir/,
    ],
    [
      `[peers]\n2 = host=@${"d".repeat(120)}\n[pgbouncer]`,
      /\[peers\] 2: .*"@d+\/\.s\.PGSQL\.6432" is too long/,
    ],
    ["[peers]\n2 = host=a,b\n[pgbouncer]", "[peers] 2: host: expected one host, got a list"],
    [`[peers]\n2 = host=/${"d".repeat(120)}\n[pgbouncer]`, /\[peers\] 2: .*too long/],
  ])("refuses a peer it could not reach: %j", (text, message) => {
    const iniPath = writeIni(`[databases]\nlocal = host=h\n${text}\nauth_type = trust\n`);
    expect(() => loadConfig({ env: {}, iniPath })).toThrow(message);
  });

  it("refuses client certificate checks without a CA of its own, and auth_type cert without verified ones", () => {
    const certs = [
      `client_tls_key_file = ${path.join(import.meta.dirname, "fixtures/pgbouncer.ini")}`,
      `client_tls_cert_file = ${path.join(import.meta.dirname, "fixtures/pgbouncer.ini")}`,
    ].join("\n");
    const load = (settings: string) =>
      loadConfig({
        env: {},
        iniPath: writeIni(`[databases]\n* = host=h\n[pgbouncer]\n${certs}\n${settings}\n`),
      });
    expect(() => load("auth_type = trust\nclient_tls_sslmode = verify-ca")).toThrow(
      "client_tls_sslmode: verify-ca needs client_tls_ca_file (CLIENT_TLS_CA_FILE), the CA that signs client certificates",
    );
    expect(() => load("auth_type = cert\nclient_tls_sslmode = require")).toThrow(
      "auth_type: cert needs client_tls_sslmode verify-ca or verify-full, with client_tls_ca_file",
    );
  });

  it("keeps PgBouncer's defaults with an ini file, not the image's", () => {
    const { config } = loadConfig({
      env: {},
      iniPath: writeIni("[databases]\n* = host=h\n[pgbouncer]\nauth_type = trust\n"),
    });
    expect(config).toMatchObject({ adminUsers: [], ignoreStartupParameters: [], source: { env: false } });
  });

  it("adds the env login to the auth file unless the file has that user", () => {
    const iniPath = writeIni("[pgbouncer]\nauth_file = userlist.txt\n", '"app" "from-file"\n');
    // a relative auth_file is read from the working directory, as PgBouncer reads it
    expect(() => loadConfig({ env: {}, iniPath })).toThrow(/auth_file: cannot read .*userlist\.txt: ENOENT/);
    const load = (url: string) =>
      inDirectoryOf(iniPath, () => loadConfig({ env: { DATABASE_URL: url }, iniPath }));
    const same = load("postgres://app:from-env@db/app").config;
    expect(same.authUsers.get("app")?.secret).toBe("from-file");
    const other = load("postgres://web:from-env@db/app").config;
    expect([...other.authUsers.keys()]).toEqual(["app", "web"]);
    expect(other.databases.get("app")).toEqual({ name: "app", host: "db", port: 5432, connectParams: {} });
  });

  it("reads AUTH_FILE given by the environment", () => {
    const list = path.join(import.meta.dirname, "fixtures/userlist.txt");
    const { config } = loadConfig({ env: { DB_HOST: "db", AUTH_FILE: list } });
    expect(config.authUsers.size).toBe(3);
  });

  it.each([
    [{}, "no database defined: expected DATABASE_URL or DB_HOST, or a [databases] section in the ini file"],
    [
      { DB_HOST: "db" },
      "auth_type: md5 needs users: expected auth_file (AUTH_FILE), auth_user (AUTH_USER) or a user and password in DATABASE_URL (DB_USER/DB_PASSWORD)",
    ],
    [
      { DB_HOST: "db", AUTH_TYPE: "trust", MIN_POOL_SIZE: "30" },
      'min_pool_size: expected at most default_pool_size (20), got "30"',
    ],
    [
      { DB_HOST: "db", AUTH_FILE: "/nonexistent/users.txt" },
      "auth_file: cannot read /nonexistent/users.txt: ENOENT",
    ],
  ])("validates the whole: %j", (env, message) => {
    expect(() => loadConfig({ env })).toThrow(new ConfigError(message));
  });

  it("accepts trust and any without users, and min_pool_size with an unlimited pool", () => {
    expect(() => loadConfig({ env: { DB_HOST: "db", AUTH_TYPE: "any" } })).not.toThrow();
    expect(() =>
      loadConfig({ env: { DB_HOST: "db", AUTH_TYPE: "trust", DEFAULT_POOL_SIZE: "0", MIN_POOL_SIZE: "5" } }),
    ).not.toThrow();
  });

  it("reads user from the ini file, and keeps the running one at a reload, as PgBouncer (read at start only)", () => {
    const iniPath = writeIni("[databases]\n* = host=h\n[pgbouncer]\nauth_type = trust\nuser = postgres\n");
    const started = loadConfig({ env: {}, iniPath });
    expect(started).toMatchObject({ config: { user: "postgres" }, warnings: [] });
    fs.writeFileSync(iniPath, fs.readFileSync(iniPath, "utf8").replace("user = postgres", "user = nobody"));
    const reloaded = loadConfig({ env: {}, iniPath, running: started.config });
    expect(reloaded.config.user).toBe("postgres");
    expect(reloaded.warnings).toEqual(['user: changed to "nobody", which takes effect at a restart']);
  });

  /** A value other than the default for each setting PgBouncer reads at start only. */
  const RESTART_ONLY: Record<string, string> = {
    disable_pqexec: "1",
    listen_addr: "0.0.0.0",
    listen_backlog: "64",
    listen_port: "7432",
    metrics_port: "9127",
    peer_id: "3",
    pidfile: "/tmp/pooler-other.pid",
    pkt_buf: "8192",
    so_reuseport: "1",
    track_extra_parameters: "search_path",
    unix_socket_dir: "/var/run",
    unix_socket_group: "postgres",
    unix_socket_mode: "0700",
    user: "nobody",
  };

  it("lists every setting SHOW CONFIG marks not changeable", () => {
    expect(SETTINGS.filter((s) => !s.changeable).map((s) => s.key)).toEqual(Object.keys(RESTART_ONLY));
  });

  it.each(Object.entries(RESTART_ONLY))(
    "%s: a RELOAD keeps the running value with a warning, SET refuses it",
    (key, value) => {
      const iniPath = writeIni("[databases]\n* = host=h\n[pgbouncer]\nauth_type = trust\n");
      const started = loadConfig({ env: {}, iniPath });
      const running = SETTINGS.find((s) => s.key === key)!.show(started.config);
      fs.appendFileSync(iniPath, `${key} = ${value}\n`);
      const reloaded = loadConfig({ env: {}, iniPath, running: started.config });
      expect(reloaded.config).toEqual(started.config);
      // the warning quotes SHOW CONFIG's form of the value: a mode in decimal, as PgBouncer prints it
      expect(reloaded.warnings).toEqual([
        `${key}: changed to ${JSON.stringify(value === "0700" ? "448" : value)}, which takes effect at a restart`,
      ]);
      expect(() => applySetting(started.config, key, value, { online: true })).toThrow(
        new ConfigError(`${key}: cannot be changed online, restart the pooler`),
      );
      expect(SETTINGS.find((s) => s.key === key)!.show(started.config)).toBe(running);
    },
  );

  it("names the ini file and line of a bad value", () => {
    const iniPath = writeIni("[databases]\n* = host=h\n[pgbouncer]\npool_mode = transactoin\n");
    expect(() => loadConfig({ env: {}, iniPath })).toThrow(
      new ConfigError(
        `${iniPath}:4: pool_mode: expected one of session, transaction, statement, got "transactoin"`,
      ),
    );
  });
});
