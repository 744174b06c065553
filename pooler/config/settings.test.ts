import { describe, expect, it } from "vitest";
import { ConfigError } from "./errors.ts";
import {
  applySetting,
  defaultConfig,
  findSetting,
  formatSeconds,
  IGNORED_SETTINGS,
  SETTINGS,
  showConfigRows,
} from "./settings.ts";

// PgBouncer 1.25's bouncer_params defaults (src/main.c), copied by hand: the table must not drift.
const PGBOUNCER_DEFAULTS: Record<string, string | null> = {
  admin_users: "",
  application_name_add_host: "0",
  auth_dbname: null,
  auth_file: null,
  auth_hba_file: null,
  auth_query:
    "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin",
  auth_type: "md5",
  auth_user: null,
  autodb_idle_timeout: "3600",
  cancel_wait_timeout: "10",
  client_idle_timeout: "0",
  client_login_timeout: "60",
  client_tls13_ciphers: "",
  client_tls_ca_file: null,
  client_tls_cert_file: null,
  client_tls_ciphers: "default",
  client_tls_dheparams: "auto",
  client_tls_ecdhcurve: "auto",
  client_tls_key_file: null,
  client_tls_protocols: "secure",
  client_tls_sslmode: "disable",
  default_pool_size: "20",
  disable_pqexec: "0",
  dns_max_ttl: "15",
  dns_nxdomain_ttl: "15",
  idle_transaction_timeout: "0",
  ignore_startup_parameters: "",
  listen_addr: "",
  listen_backlog: "128",
  listen_port: "6432",
  log_connections: "1",
  log_disconnections: "1",
  log_pooler_errors: "1",
  log_stats: "1",
  logfile: null,
  login_notify_message: "",
  max_client_conn: "100",
  max_db_client_connections: "0",
  max_db_connections: "0",
  max_packet_size: "2147483647",
  max_prepared_statements: "200",
  max_user_client_connections: "0",
  max_user_connections: "0",
  min_pool_size: "0",
  peer_id: "0",
  pidfile: null,
  pkt_buf: "4096",
  pool_idle_timeout: "0",
  pool_mode: "session",
  query_timeout: "0",
  query_wait_notify: "5",
  query_wait_timeout: "120",
  reserve_pool_size: "0",
  reserve_pool_timeout: "5",
  scram_iterations: "4096",
  server_check_delay: "30",
  server_check_query: "<empty>",
  server_connect_timeout: "15",
  server_fast_close: "0",
  server_idle_timeout: "600",
  server_lifetime: "3600",
  server_login_retry: "15",
  server_reset_query: "DISCARD ALL",
  server_reset_query_always: "0",
  server_round_robin: "0",
  server_tls13_ciphers: "",
  server_tls_ca_file: null,
  server_tls_cert_file: null,
  server_tls_ciphers: "default",
  server_tls_key_file: null,
  server_tls_protocols: "secure",
  server_tls_sslmode: "prefer",
  so_reuseport: "0",
  stats_period: "60",
  stats_users: "",
  suspend_timeout: "10",
  tcp_keepalive: "1",
  tcp_keepcnt: "0",
  tcp_keepidle: "0",
  tcp_keepintvl: "0",
  track_extra_parameters: "IntervalStyle",
  transaction_timeout: "0",
  unix_socket_dir: "/tmp",
  unix_socket_group: null,
  unix_socket_mode: "0777",
  user: null,
  verbose: null,
};

/** Where we differ on purpose: TCP on loopback by default, verbose starts at 0 anyway, metrics_port and pin_session_state are ours. */
const OUR_DEFAULTS: Record<string, string> = {
  listen_addr: "127.0.0.1",
  verbose: "0",
  metrics_port: "0",
  pin_session_state: "1",
};

const NOT_CHANGEABLE = [
  "disable_pqexec",
  "listen_addr",
  "listen_backlog",
  "listen_port",
  "metrics_port",
  // ours: the cancel keys already given out carry it, a new one would strand their cancels
  "peer_id",
  "pidfile",
  "pkt_buf",
  "so_reuseport",
  "track_extra_parameters",
  "unix_socket_dir",
  "unix_socket_group",
  "unix_socket_mode",
  "user",
];

describe("the settings table", () => {
  it("has PgBouncer 1.25's defaults, except the documented differences", () => {
    const ours = Object.fromEntries(SETTINGS.map((s) => [s.key, s.default]));
    expect(ours).toEqual({ ...PGBOUNCER_DEFAULTS, ...OUR_DEFAULTS });
  });

  it("marks as not changeable what PgBouncer only reads at start", () => {
    expect(SETTINGS.filter((s) => !s.changeable).map((s) => s.key)).toEqual(NOT_CHANGEABLE);
  });

  it("is in SHOW CONFIG's alphabetical order and has no key twice", () => {
    const keys = SETTINGS.map((s) => s.key);
    expect(keys).toEqual([...keys].sort());
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("sets every field of PoolerConfig, each from one key", () => {
    const fields = SETTINGS.map((s) => s.field);
    expect(new Set(fields).size).toBe(fields.length);
    const structural = ["databases", "users", "peers", "authUsers", "hbaRules", "source"];
    const optional = [
      "authFile",
      "authUser",
      "authDbname",
      "authHbaFile",
      "unixSocketGroup",
      "logfile",
      "pidfile",
      "user",
      ...["client", "server"].flatMap((side) => ["Key", "Cert", "Ca"].map((f) => `${side}Tls${f}File`)),
    ];
    expect(Object.keys(defaultConfig()).sort()).toEqual(
      [...structural, ...fields.filter((f) => !optional.includes(f))].sort(),
    );
  });

  it("does not list a supported key as ignored", () => {
    expect(SETTINGS.filter((s) => IGNORED_SETTINGS.has(s.key))).toEqual([]);
  });
});

describe("defaultConfig", () => {
  it("holds the defaults in milliseconds and native types", () => {
    const c = defaultConfig();
    expect(c).toMatchObject({
      listenAddr: "127.0.0.1",
      listenPort: 6432,
      authType: "md5",
      poolMode: "session",
      maxClientConn: 100,
      defaultPoolSize: 20,
      reservePoolTimeout: 5000,
      serverLifetime: 3_600_000,
      serverIdleTimeout: 600_000,
      queryWaitTimeout: 120_000,
      statsPeriod: 60_000,
      serverRoundRobin: false,
      tcpKeepalive: true,
      maxPreparedStatements: 200,
      adminUsers: [],
      ignoreStartupParameters: [],
      trackExtraParameters: ["IntervalStyle"],
      metricsPort: 0,
    });
    expect(c.authFile).toBeUndefined();
  });
});

describe("applySetting", () => {
  it("parses each kind", () => {
    const c = defaultConfig();
    applySetting(c, "default_pool_size", "50");
    applySetting(c, "query_timeout", "0.25");
    applySetting(c, "server_round_robin", "yes");
    applySetting(c, "log_stats", "off");
    applySetting(c, "pool_mode", "Transaction");
    applySetting(c, "admin_users", "alice, bob,,carol ");
    applySetting(c, "auth_user", "pgbouncer");
    expect(c).toMatchObject({
      defaultPoolSize: 50,
      queryTimeout: 250,
      serverRoundRobin: true,
      logStats: false,
      poolMode: "transaction",
      adminUsers: ["alice", "bob", "carol"],
      authUser: "pgbouncer",
    });
    applySetting(c, "auth_user", "");
    expect(c.authUser).toBeUndefined();
  });

  it("keeps sub-millisecond precision without float noise", () => {
    const c = defaultConfig();
    applySetting(c, "server_lifetime", "1.1");
    applySetting(c, "client_idle_timeout", "0.0005");
    expect([c.serverLifetime, c.clientIdleTimeout]).toEqual([1100, 0.5]);
  });

  it.each([
    [
      "pool_mode",
      "transactoin",
      'pool_mode: expected one of session, transaction, statement, got "transactoin"',
    ],
    [
      "auth_type",
      "pam",
      'auth_type: expected one of any, trust, plain, md5, scram-sha-256, cert, hba, got "pam"',
    ],
    ["listen_port", "70000", 'listen_port: expected an integer from 0 to 65535, got "70000"'],
    ["default_pool_size", "-1", 'default_pool_size: expected an integer >= 0, got "-1"'],
    ["default_pool_size", "2.5", 'default_pool_size: expected an integer >= 0, got "2.5"'],
    [
      "server_lifetime",
      "1h",
      'server_lifetime: expected a number of seconds >= 0, such as 5 or 0.5, got "1h"',
    ],
    [
      "server_lifetime",
      "-1",
      'server_lifetime: expected a number of seconds >= 0, such as 5 or 0.5, got "-1"',
    ],
    ["log_stats", "maybe", 'log_stats: expected 0 or 1 (or on/off, yes/no, true/false), got "maybe"'],
    [
      "unix_socket_mode",
      "0800",
      'unix_socket_mode: expected a permission mode such as 0777 or 0700, got "0800"',
    ],
    ["unix_socket_mode", "rw", 'unix_socket_mode: expected a permission mode such as 0777 or 0700, got "rw"'],
  ])("refuses %s = %s", (key, value, message) => {
    expect(() => applySetting(defaultConfig(), key, value)).toThrow(new ConfigError(message));
  });

  it("reads [pgbouncer] integers as PgBouncer's cf_set_int, C's strtol(…, 0): 0x20 is 32, 010 is 8", () => {
    const c = defaultConfig();
    for (const [raw, n] of [
      ["0x20", 32],
      ["0X20", 32],
      ["+0x10", 16],
      ["010", 8],
      ["0x0a", 10],
      ["017", 15],
      ["0x7fffffff", 2147483647],
    ] as const) {
      applySetting(c, "max_client_conn", raw);
      expect(c.maxClientConn).toBe(n);
    }
    for (const bad of ["08", "0x", "1e3", "1_000", "0x80000000", "-0x1"]) {
      expect(() => applySetting(c, "max_client_conn", bad)).toThrow(ConfigError);
    }
  });

  it("reads durations as PgBouncer's strtod does: a + sign and hex integers (0x10 is 16 seconds)", () => {
    const c = defaultConfig();
    for (const [raw, ms] of [
      ["+5", 5000],
      ["0x10", 16000],
      ["0X1a", 26000],
      ["+1.5e1", 15000],
    ] as const) {
      applySetting(c, "query_timeout", raw);
      expect(c.queryTimeout).toBe(ms);
    }
    // beyond a double, strtod's ERANGE: PgBouncer 1.18 refuses it (side by side)
    for (const bad of ["-1", "0x", "0x1g", "++5", "1e400", `0x${"f".repeat(300)}`]) {
      expect(() => applySetting(c, "query_timeout", bad)).toThrow(ConfigError);
    }
  });

  it("reads unix_socket_mode as C's strtol(…, 0) does and shows it in decimal, as PgBouncer", () => {
    const c = defaultConfig();
    expect(c.unixSocketMode).toBe(0o777);
    for (const [raw, mode] of [
      ["0700", 0o700],
      ["0x1ff", 0o777],
      ["384", 0o600],
      ["0", 0],
    ] as const) {
      applySetting(c, "unix_socket_mode", raw);
      expect(c.unixSocketMode).toBe(mode);
    }
    applySetting(c, "unix_socket_mode", "0660");
    expect(showConfigRows(c).find((r) => r.key === "unix_socket_mode")).toMatchObject({
      value: "432",
      default: "0777",
    });
  });

  it("labels errors with where the value came from", () => {
    const c = defaultConfig();
    expect(() => applySetting(c, "pool_mode", "x", { label: "POOL_MODE" })).toThrow(
      /^POOL_MODE: expected one of/,
    );
    expect(() => applySetting(c, "pool_mode", "x", { where: "a.ini:3" })).toThrow(
      /^a\.ini:3: pool_mode: expected/,
    );
  });

  it("refuses an unknown key as PgBouncer does", () => {
    expect(() => applySetting(defaultConfig(), "xyz", "1", { where: "a.ini:3" })).toThrow(
      new ConfigError("a.ini:3: unknown parameter: pgbouncer/xyz"),
    );
  });

  it("accepts and ignores PgBouncer keys we do not implement", () => {
    const c = defaultConfig();
    const before = JSON.stringify(showConfigRows(c));
    expect(applySetting(c, "tcp_defer_accept", "1")).toBe("ignored");
    expect(applySetting(c, "tcp_user_timeout", "1000")).toBe("ignored");
    expect(JSON.stringify(showConfigRows(c))).toBe(before);
  });

  it("takes every sslmode and refuses TLS protocols, ciphers, curves or DH params it cannot honour, naming the key", () => {
    const c = defaultConfig();
    expect(applySetting(c, "client_tls_sslmode", "Verify-Full")).toBe("set");
    expect(c.clientTlsSslmode).toBe("verify-full");
    expect(() => applySetting(c, "server_tls_sslmode", "required", { label: "SERVER_TLS_SSLMODE" })).toThrow(
      /^SERVER_TLS_SSLMODE: expected one of disable, allow, prefer, require, verify-ca, verify-full, got "required"$/,
    );
    expect(() => applySetting(c, "client_tls_protocols", "tlsv1.0,tlsv1.3")).toThrow(
      /^client_tls_protocols: expected TLS versions without a gap/,
    );
    expect(() => applySetting(c, "client_tls13_ciphers", "ECDHE-RSA-AES128-GCM-SHA256")).toThrow(
      /^client_tls13_ciphers: expected TLS 1\.3 suites separated by colons, of TLS_AES_256_GCM_SHA384, /,
    );
    expect(
      applySetting(c, "client_tls13_ciphers", "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"),
    ).toBe("set");
    expect(() => applySetting(c, "server_tls_ciphers", "NO-SUCH-CIPHER")).toThrow(
      /^server_tls_ciphers: expected a cipher keyword .* or an OpenSSL cipher list/,
    );
    expect(() => applySetting(c, "client_tls_ecdhcurve", "P-385", { where: "a.ini:7" })).toThrow(
      /^a\.ini:7: client_tls_ecdhcurve: expected none, auto, or a curve this OpenSSL knows, .*, got "P-385"$/,
    );
    expect(() => applySetting(c, "client_tls_dheparams", "2048", { label: "CLIENT_TLS_DHEPARAMS" })).toThrow(
      /^CLIENT_TLS_DHEPARAMS: expected one of none, auto, legacy, got "2048"$/,
    );
    applySetting(c, "client_tls_dheparams", "Legacy");
    applySetting(c, "client_tls_ecdhcurve", "secp384r1");
    expect(showConfigRows(c).filter((r) => /dhe|ecdh/.test(r.key))).toEqual([
      { key: "client_tls_dheparams", value: "legacy", default: "auto", changeable: "yes" },
      { key: "client_tls_ecdhcurve", value: "secp384r1", default: "auto", changeable: "yes" },
    ]);
  });

  it("refuses online changes of start-only settings, like SHOW CONFIG says", () => {
    const c = defaultConfig();
    expect(() => applySetting(c, "listen_port", "7000", { online: true })).toThrow(
      "listen_port: cannot be changed online, restart the pooler",
    );
    expect(applySetting(c, "default_pool_size", "5", { online: true })).toBe("set");
    expect(findSetting("listen_port")?.changeable).toBe(false);
  });
});

describe("showConfigRows", () => {
  it("prints values as PgBouncer does", () => {
    const c = defaultConfig();
    applySetting(c, "query_wait_timeout", "0.5");
    applySetting(c, "stats_users", "a, b");
    const rows = new Map(showConfigRows(c).map((r) => [r.key, r]));
    expect(rows.get("server_lifetime")).toEqual({
      key: "server_lifetime",
      value: "3600",
      default: "3600",
      changeable: "yes",
    });
    expect(rows.get("query_wait_timeout")?.value).toBe("0.5");
    expect(rows.get("server_round_robin")?.value).toBe("0");
    expect(rows.get("tcp_keepalive")?.value).toBe("1");
    expect(rows.get("auth_file")).toEqual({
      key: "auth_file",
      value: null,
      default: null,
      changeable: "yes",
    });
    expect(rows.get("stats_users")?.value).toBe("a,b");
    expect(rows.get("listen_port")).toEqual({
      key: "listen_port",
      value: "6432",
      default: "6432",
      changeable: "no",
    });
    expect(showConfigRows(c).map((r) => r.key)).toEqual(SETTINGS.map((s) => s.key));
  });

  it.each([
    [0, "0"],
    [3_600_000, "3600"],
    [500, "0.5"],
    [1100, "1.1"],
    [100, "0.1"],
    [0.1, "0.0001"],
    [0.01, "1e-05"],
    [1_000_000_000, "1e+06"],
    [123_456_789, "123457"],
  ])("formats %f ms as %s (printf %%g of seconds)", (ms, text) => {
    expect(formatSeconds(ms)).toBe(text);
  });
});
