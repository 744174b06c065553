import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { inDirectoryOf } from "../../test/support/cwd.ts";
import { ConfigError } from "./errors.ts";
import { applyIni, parseConnString, readIniFile } from "./ini.ts";
import { defaultConfig } from "./settings.ts";

const tempDirs: string[] = [];
afterAll(() => tempDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Writes the files into a fresh temp folder; returns the path of the first. */
function writeFiles(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-ini-"));
  tempDirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return path.join(dir, Object.keys(files)[0] ?? "");
}

function load(text: string) {
  const file = writeFiles({ "pgbouncer.ini": text });
  const config = defaultConfig();
  const warnings = applyIni(config, readIniFile(file));
  return { file, config, warnings };
}

describe("readIniFile + applyIni", () => {
  it("reads all three sections, comments and spacing", () => {
    const { config, warnings } = load(
      [
        "; comment",
        "# another comment",
        "[databases]",
        "app = host=db port=5433 dbname=app_prod user=app password='it''s secret' pool_size=10",
        "  reports=host=replica  auth_user=pgb auth_dbname=app min_pool_size=2 reserve_pool=3 max_db_connections=40 pool_mode=session",
        "enc = host=db client_encoding=UTF8 datestyle='ISO, MDY' timezone=UTC application_name=web reserve_pool_size=1",
        "* = host=fallback",
        "",
        "[users]",
        "alice = pool_mode=transaction pool_size=7 max_user_connections=9",
        "",
        "[pgbouncer]",
        "pool_mode=transaction",
        "  default_pool_size   =   30  ",
        "server_reset_query = DISCARD ALL ; not a comment here",
      ].join("\n"),
    );
    expect(warnings).toEqual([]);
    expect([...config.databases.values()]).toEqual([
      {
        name: "app",
        host: "db",
        port: 5433,
        dbname: "app_prod",
        user: "app",
        password: "it's secret",
        poolSize: 10,
        connectParams: {},
      },
      {
        name: "reports",
        host: "replica",
        port: 5432,
        authUser: "pgb",
        authDbname: "app",
        minPoolSize: 2,
        reservePool: 3,
        maxDbConnections: 40,
        poolMode: "session",
        connectParams: {},
      },
      {
        name: "enc",
        host: "db",
        port: 5432,
        reservePool: 1,
        connectParams: {
          client_encoding: "UTF8",
          datestyle: "ISO, MDY",
          timezone: "UTC",
          application_name: "web",
        },
      },
      { name: "*", host: "fallback", port: 5432, connectParams: {} },
    ]);
    expect(config.users.get("alice")).toEqual({
      name: "alice",
      poolMode: "transaction",
      poolSize: 7,
      maxUserConnections: 9,
    });
    expect(config.poolMode).toBe("transaction");
    expect(config.defaultPoolSize).toBe(30);
    // PgBouncer: ; and # only start comments at the beginning of a line
    expect(config.serverResetQuery).toBe("DISCARD ALL ; not a comment here");
  });

  it("reads a per-database pool_size, min_pool_size, reserve_pool or max_db_connections of -1 as unset, as PgBouncer", () => {
    const { config } = load(
      "[databases]\nd = host=h pool_size=-1 min_pool_size=-1 reserve_pool=-1 max_db_connections=-1\n[pgbouncer]\n",
    );
    const d = config.databases.get("d")!;
    expect([d.poolSize, d.minPoolSize, d.reservePool, d.maxDbConnections]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(() => load("[databases]\nd = host=h pool_size=-2\n[pgbouncer]\n")).toThrow(/pool_size/);
  });

  it("reads PgBouncer 1.24–1.26's per-database and per-user limits and timeouts", () => {
    const { config, warnings } = load(
      [
        "[databases]",
        "a = host=h max_db_client_connections=5 server_lifetime=30 query_wait_timeout=2.5",
        "b = host=h query_wait_timeout=-1",
        "[users]",
        "u = max_user_client_connections=3 query_timeout=1 query_wait_timeout=2 idle_transaction_timeout=3 transaction_timeout=4 client_idle_timeout=5",
        "[pgbouncer]",
      ].join("\n"),
    );
    expect(warnings).toEqual([]);
    expect(config.databases.get("a")).toMatchObject({
      maxDbClientConnections: 5,
      serverLifetime: 30_000,
      queryWaitTimeout: 2_500,
    });
    expect(config.databases.get("b")!.queryWaitTimeout).toBeUndefined();
    expect(config.users.get("u")).toEqual({
      name: "u",
      maxUserClientConnections: 3,
      queryTimeout: 1_000,
      queryWaitTimeout: 2_000,
      idleTransactionTimeout: 3_000,
      transactionTimeout: 4_000,
      clientIdleTimeout: 5_000,
    });
    expect(() => load("[users]\nu = transaction_timeout=soon\n[pgbouncer]")).toThrow(/transaction_timeout/);
    expect(() => load("[databases]\na = host=h1,h2 load_balance_hosts=sideways\n[pgbouncer]")).toThrow(
      /load_balance_hosts: expected one of round-robin, disable, got "sideways"/,
    );
  });

  it("reads connect_query, a quoted value with '' for a quote (PgBouncer's example)", () => {
    const { config, warnings } = load(
      [
        "[databases]",
        "app = host=db connect_query='SET search_path = app, public; SET application_name = ''it''''s''' pool_size=3",
        "[pgbouncer]",
      ].join("\n"),
    );
    expect(warnings).toEqual([]);
    expect(config.databases.get("app")?.connectQuery).toBe(
      "SET search_path = app, public; SET application_name = 'it''s'",
    );
    expect(config.databases.get("app")?.poolSize).toBe(3);
  });

  it("accepts quoted database names", () => {
    const { config } = load(
      `[databases]\n"my db" = host=a\n'other-db' = host=b\n"q""uote" = host=c\n[pgbouncer]\n`,
    );
    expect([...config.databases.keys()]).toEqual(["my db", "other-db", 'q"uote']);
  });

  it("refuses a database name of 64 bytes or more, as PgBouncer's MAX_DBNAME, which stops its start", () => {
    const longest = `l${"é".repeat(31)}`;
    expect(Buffer.byteLength(longest)).toBe(63);
    expect([...load(`[databases]\n"${longest}" = host=a\n[pgbouncer]\n`).config.databases.keys()]).toEqual([
      longest,
    ]);
    for (const name of ["d".repeat(64), "é".repeat(32)]) {
      expect(() => load(`[databases]\n"${name}" = host=a\n[pgbouncer]\n`)).toThrow(
        new RegExp(`pgbouncer\\.ini:2: \\[databases\\]: too long db name, 64 bytes or more .*: ${name}$`),
      );
    }
  });

  it("follows %include from the working directory, as PgBouncer, keeping the current section", () => {
    const main = writeFiles({
      "main.ini": "[pgbouncer]\nlisten_port = 7000\n%include conf.d/dbs.ini\nmax_client_conn = 500\n",
      // from the working directory, not from conf.d/
      "conf.d/dbs.ini": "pool_mode = statement\n[databases]\nx = host=h\n%include conf.d/more.ini\n",
      "conf.d/more.ini": "y = host=h2\n[pgbouncer]\n",
    });
    const config = defaultConfig();
    applyIni(
      config,
      inDirectoryOf(main, () => readIniFile(main)),
    );
    expect(config).toMatchObject({ listenPort: 7000, poolMode: "statement", maxClientConn: 500 });
    expect([...config.databases.keys()]).toEqual(["x", "y"]);
  });

  it("stops endless %include", () => {
    const file = writeFiles({ "loop.ini": "[pgbouncer]\n%include loop.ini\n" });
    expect(() => inDirectoryOf(file, () => readIniFile(file))).toThrow(
      /loop\.ini:2: %include nested more than 10 deep/,
    );
  });

  it("names the line of an %include whose file cannot be read", () => {
    const file = writeFiles({ "main.ini": "[pgbouncer]\n\n%include conf.d/gone.ini\n" });
    expect(() => inDirectoryOf(file, () => readIniFile(file))).toThrow(
      /main\.ini:3: %include: cannot read .*conf\.d\/gone\.ini: ENOENT$/,
    );
  });

  it("warns about ignored settings and parameters", () => {
    const { warnings } = load(
      [
        "[databases]",
        "a = host=h auth_query='SELECT 1' target_session_attrs=read-write",
        "sock =",
        "[users]",
        "u = reserve_pool_size=5",
        "[peers]",
        "1 = host=/tmp/pgbouncer1",
        "[pgbouncer]",
        "syslog = 1",
        "tcp_defer_accept = 1",
        "unix_socket_dir =",
      ].join("\n"),
    );
    expect(warnings).toEqual([
      expect.stringMatching(
        /pgbouncer\.ini:2: \[databases\] a: connection parameter auth_query not implemented/,
      ),
      expect.stringMatching(
        /pgbouncer\.ini:5: \[users\] u: user parameter reserve_pool_size not implemented/,
      ),
      "[pgbouncer] settings not implemented, ignored: syslog, tcp_defer_accept",
    ]);
  });

  it("reads [peers]: host, port (6432 unless given) and pool_size by peer_id", () => {
    const { config, warnings } = load(
      [
        "[peers]",
        "1 = host=/tmp/pgbouncer1",
        "2 = host=10.0.0.2 port=6433 pool_size=5",
        "16383 = host=peer.example",
        "[pgbouncer]",
        "peer_id = 2",
      ].join("\n"),
    );
    expect(warnings).toEqual([]);
    expect(config.peerId).toBe(2);
    expect([...config.peers.values()]).toEqual([
      { id: 1, host: "/tmp/pgbouncer1", port: 6432 },
      { id: 2, host: "10.0.0.2", port: 6433, poolSize: 5 },
      { id: 16383, host: "peer.example", port: 6432 },
    ]);
  });

  it.each([
    ["[peers]\n0 = host=h\n[pgbouncer]", ':2: [peers] 0: expected an integer from 1 to 16383, got "0"'],
    ["[peers]\n16384 = host=h\n[pgbouncer]", ":2: [peers] 16384: expected an integer from 1 to 16383"],
    ["[peers]\nx = host=h\n[pgbouncer]", ':2: [peers] x: expected an integer from 1 to 16383, got "x"'],
    [
      "[peers]\n1 = host=h dbname=x\n[pgbouncer]",
      ":2: [peers] 1: unrecognized peer parameter: dbname, expected one of host, port, pool_size",
    ],
    ["[peers]\n1 = port=0\n[pgbouncer]", ':2: [peers] 1: port: expected an integer from 1 to 65535, got "0"'],
    ["[peers]\n1 = pool_size=0\n[pgbouncer]", ":2: [peers] 1: pool_size: expected an integer >= 1"],
    ["[pgbouncer]\npeer_id = 16384", ':2: peer_id: expected an integer from 0 to 16383, got "16384"'],
  ])("refuses a bad peer: %j", (text, message) => {
    expect(() => load(text)).toThrow(message);
  });

  it.each([
    ["[pgbouncer]\nxyz = 1", ":2: unknown parameter: pgbouncer/xyz"],
    [
      "[pgbouncer]\npool_mode = transactoin",
      ':2: pool_mode: expected one of session, transaction, statement, got "transactoin"',
    ],
    ["[pgbouncer]\n\nlisten_port = http", ':3: listen_port: expected an integer from 0 to 65535, got "http"'],
    [
      "[databases]\na = host=h port=x\n[pgbouncer]",
      ':2: [databases] a: port: expected an integer from 1 to 65535, got "x"',
    ],
    [
      "[databases]\na = host=h pool_mode=fast\n[pgbouncer]",
      ":2: [databases] a: pool_mode: expected one of session",
    ],
    [
      "[databases]\na = host=h,g target_session_attrs=master\n[pgbouncer]",
      ':2: [databases] a: target_session_attrs: expected one of any, read-write, read-only, primary, standby, prefer-standby, got "master"',
    ],
    [
      "[databases]\na = host=h sslmode=require\n[pgbouncer]",
      ":2: [databases] a: unrecognized connection parameter: sslmode",
    ],
    [
      "[databases]\npgbouncer = host=h\n[pgbouncer]",
      ':2: [databases] pgbouncer: the name "pgbouncer" is reserved',
    ],
    [
      "[users]\nu = pool_size=-2\n[pgbouncer]",
      ':2: [users] u: pool_size: expected an integer >= 0, got "-2"',
    ],
    [
      "[users]\nu = role=admin\n[pgbouncer]",
      ":2: [users] u: unrecognized user parameter: role, expected one of pool_mode",
    ],
    [
      "[pgbouncer]\n[mysection]",
      ':2: invalid section "mysection", expected one of [databases], [users], [pgbouncer], [peers]',
    ],
    ["listen_port = 1", ':1: "listen_port = 1" comes before any [section]'],
    ["[pgbouncer]\nthis is not an assignment", ':2: syntax error, expected "key = value"'],
    ["[databases]\na = x", "main section [pgbouncer] missing"],
  ])("names file, line, key and expected form: %j", (text, message) => {
    const run = () => load(text);
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(message);
  });

  it("reports a missing file", () => {
    expect(() => readIniFile("/nonexistent/pgbouncer.ini")).toThrow(
      "cannot read /nonexistent/pgbouncer.ini: ENOENT",
    );
  });
});

describe("parseConnString", () => {
  it("splits key=value pairs, unquoting '...' with ''", () => {
    expect(parseConnString(" host=a  port = 5 password='x y''z' user=it's ", "L")).toEqual([
      ["host", "a"],
      ["port", "5"],
      ["password", "x y'z"],
      ["user", "it's"],
    ]);
    expect(parseConnString("", "L")).toEqual([]);
  });

  it.each(["host", "host=", "password='unterminated", "password=''", "a='b'c"])(
    "refuses %j without echoing it",
    (s) => {
      expect(() => parseConnString(s, "L")).toThrow(
        /^L: syntax error in connection string at character \d+, expected/,
      );
    },
  );
});
