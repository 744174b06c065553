import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeCerts } from "../../test/support/certs.ts";
import { inDirectoryOf } from "../../test/support/cwd.ts";
import { parseDatabaseUrl, readEnvDatabase } from "./env.ts";
import { ConfigError } from "./errors.ts";
import { loadConfig } from "./index.ts";
import { SETTINGS, showConfigRows, type SettingDef } from "./settings.ts";

const DB = { DATABASE_URL: "postgres://app:pw@db:5432/app" };
const USERLIST = path.join(import.meta.dirname, "fixtures/userlist.txt");

const certs = makeCerts();
afterAll(() => certs.remove());

/** A valid value differing from the default, how SHOW CONFIG then prints it, and other variables it needs. */
function sample(s: SettingDef): [string, string, Record<string, string>?] {
  const clientPair = { CLIENT_TLS_KEY_FILE: certs.serverKey, CLIENT_TLS_CERT_FILE: certs.serverCert };
  const special: Record<string, [string, string, Record<string, string>?]> = {
    auth_file: [USERLIST, USERLIST],
    client_tls_sslmode: ["require", "require", clientPair],
    client_tls_protocols: ["tlsv1.3", "tlsv1.3"],
    client_tls_ciphers: ["fast", "fast"],
    client_tls_dheparams: ["none", "none"],
    client_tls_ecdhcurve: ["secp384r1", "secp384r1"],
    server_tls_sslmode: ["verify-ca", "verify-ca"],
    server_tls_ca_file: [certs.caCert, certs.caCert],
    server_tls_key_file: [certs.clientKey, certs.clientKey, { SERVER_TLS_CERT_FILE: certs.clientCert }],
    server_tls_cert_file: [certs.clientCert, certs.clientCert, { SERVER_TLS_KEY_FILE: certs.clientKey }],
    server_tls_protocols: ["tlsv1.3", "tlsv1.3"],
    server_tls_ciphers: ["fast", "fast"],
    client_tls13_ciphers: ["TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"],
    server_tls13_ciphers: ["TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"],
    auth_type: ["scram-sha-256", "scram-sha-256"],
    pool_mode: ["transaction", "transaction"],
    listen_addr: ["0.0.0.0", "0.0.0.0"],
  };
  const byKind: Record<SettingDef["kind"], [string, string]> = {
    int: ["7", "7"],
    seconds: ["0.5", "0.5"],
    bool: s.default === "1" ? ["off", "0"] : ["on", "1"],
    string: ["some value", "some value"],
    enum: ["?", "?"],
    list: ["a, b", "a,b"],
  };
  return special[s.key] ?? byKind[s.kind];
}

describe("setting variables", () => {
  // but USER, the shell's own (below)
  const settings = SETTINGS.filter((s) => s.key !== "user");
  it.each(settings.map((s) => [s.key.toUpperCase(), s] as const))("%s sets its key", (name, setting) => {
    const [value, shown, needs] = sample(setting);
    const { config } = loadConfig({ env: { ...DB, ...needs, [name]: value } });
    const row = showConfigRows(config).find((r) => r.key === setting.key);
    expect(row?.value).toBe(shown);
    expect(row?.value).not.toBe(setting.default);
  });

  it("win over the ini file", () => {
    const iniPath = path.join(import.meta.dirname, "fixtures/pgbouncer.ini");
    const { config } = inDirectoryOf(iniPath, () =>
      loadConfig({ env: { POOL_MODE: "session", LISTEN_PORT: "5432" }, iniPath }),
    );
    expect(config).toMatchObject({ poolMode: "session", listenPort: 5432, maxClientConn: 10000 });
  });

  it("count as unset when empty, as in the image", () => {
    const { config } = loadConfig({ env: { ...DB, POOL_MODE: "", SERVER_LIFETIME: "" } });
    expect(config).toMatchObject({ poolMode: "session", serverLifetime: 3_600_000 });
  });

  it("name the variable in errors", () => {
    expect(() => loadConfig({ env: { ...DB, POOL_MODE: "transactoin" } })).toThrow(
      new ConfigError('POOL_MODE: expected one of session, transaction, statement, got "transactoin"'),
    );
    expect(() => loadConfig({ env: { ...DB, QUERY_TIMEOUT: "soon" } })).toThrow(
      /^QUERY_TIMEOUT: expected a number/,
    );
  });

  it("accept and report PgBouncer settings we ignore, but not $USER", () => {
    const { config, warnings } = loadConfig({
      env: { ...DB, SYSLOG: "1", TCP_DEFER_ACCEPT: "1", USER: "me" },
    });
    expect(warnings).toEqual(["environment: settings not implemented, ignored: SYSLOG, TCP_DEFER_ACCEPT"]);
    expect(config.user).toBeUndefined();
  });

  it("name the image's variables they do not read, which would leave its admin or stats users out", () => {
    const { warnings } = loadConfig({
      env: { ...DB, ADMIN_USERS: "ops", ADMIN_PASSWORDS: "secret", TIMEZONE: "UTC", TZ: "UTC" },
    });
    expect(warnings).toEqual([
      "environment: edoburu/pgbouncer variables not supported, ignored: ADMIN_PASSWORDS, TIMEZONE",
    ]);
  });

  it("override the image's defaults, which apply without an ini file", () => {
    const defaults = loadConfig({ env: DB }).config;
    expect(defaults).toMatchObject({
      adminUsers: ["app"],
      ignoreStartupParameters: ["extra_float_digits"],
      listenAddr: "127.0.0.1",
      listenPort: 6432,
      authType: "md5",
    });
    const set = loadConfig({
      env: { ...DB, ADMIN_USERS: "root", IGNORE_STARTUP_PARAMETERS: "options" },
    }).config;
    expect(set).toMatchObject({ adminUsers: ["root"], ignoreStartupParameters: ["options"] });
    expect(loadConfig({ env: { DB_HOST: "db", AUTH_TYPE: "trust" } }).config.adminUsers).toEqual([
      "postgres",
    ]);
  });
});

describe("DATABASE_URL", () => {
  it("gives the database entry and the accepted login, percent-decoded", () => {
    const { config } = loadConfig({
      env: { DATABASE_URL: "postgresql://my%40user:p%40ss%3Aw%2Frd%20x@db.example:6543/my%20db" },
    });
    expect([...config.databases.values()]).toEqual([
      { name: "my db", host: "db.example", port: 6543, connectParams: {} },
    ]);
    expect([...config.authUsers.values()]).toEqual([
      { name: "my@user", kind: "plain", secret: "p@ss:w/rd x" },
    ]);
    expect(config.source).toEqual({
      iniPath: undefined,
      env: true,
      envLogin: config.authUsers.get("my@user"),
    });
  });

  it("takes # and ? unencoded in the password, as libpq and the image do", () => {
    expect(parseDatabaseUrl("postgres://app:s3#cr?t@db:5433/app?sslmode=disable")).toMatchObject({
      user: "app",
      password: "s3#cr?t",
      host: "db",
      port: 5433,
      dbname: "app",
    });
    // an @ in the query is not the end of a password
    for (const url of ["postgres://u:p@h/d?application_name=a@b", "postgres://u:p@h?application_name=a@b"]) {
      expect(parseDatabaseUrl(url)).toMatchObject({ password: "p", host: "h" });
    }
  });

  it("without a database name serves any database (*), on port 5432 by default", () => {
    expect(parseDatabaseUrl("postgres://u:p@host")).toEqual({
      user: "u",
      password: "p",
      host: "host",
      port: undefined,
      dbname: undefined,
    });
    const db = readEnvDatabase({ DATABASE_URL: "postgres://u:p@host/" }).database;
    expect(db).toEqual({ name: "*", host: "host", port: 5432, connectParams: {} });
  });

  it("accepts IPv6 hosts and warns about query parameters", () => {
    const warnings: string[] = [];
    expect(parseDatabaseUrl("postgres://[::1]:5433/db?sslmode=require", warnings)).toMatchObject({
      host: "::1",
      port: 5433,
      dbname: "db",
    });
    expect(warnings).toEqual(["DATABASE_URL: query parameters ignored: sslmode"]);
  });

  it("takes a Unix socket directory from ?host= (libpq's way) or a %2F-encoded host", () => {
    const warnings: string[] = [];
    const viaQuery = "postgres://u:p@localhost:5433/db?host=/var/run/postgresql&sslmode=disable";
    expect(parseDatabaseUrl(viaQuery, warnings)).toMatchObject({ host: "/var/run/postgresql", port: 5433 });
    expect(warnings).toEqual(["DATABASE_URL: query parameters ignored: sslmode"]);
    expect(parseDatabaseUrl("postgres://u:p@%2Frun%2Fpg/db").host).toBe("/run/pg");
    // libpq's own form: no host before the path, credentials and all; ?port= names the socket
    expect(parseDatabaseUrl("postgres://u:p@/db?host=/run/pg&port=5433")).toMatchObject({
      user: "u",
      password: "p",
      host: "/run/pg",
      port: 5433,
      dbname: "db",
    });
    expect(() => parseDatabaseUrl("postgres://u:p@/db")).toThrow("got no host");
  });

  it("leaves the Unix socket off, as the image writes it, unless UNIX_SOCKET_DIR is set", () => {
    expect(loadConfig({ env: DB }).config.unixSocketDir).toBe("");
    expect(loadConfig({ env: { ...DB, UNIX_SOCKET_DIR: "/run/pooler" } }).config.unixSocketDir).toBe(
      "/run/pooler",
    );
  });

  it.each([
    ["not a url", "got something that is not a URL"],
    ["mysql://u:secretpw@h/db", "got a mysql:// URL"],
    ["postgres:///db", "got no host"],
    ["postgres://u:secret%zzpw@h/db", "got a stray %"],
  ])("refuses %j without echoing the password", (url, reason) => {
    const run = () => parseDatabaseUrl(url);
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(/^DATABASE_URL: expected /);
    expect(run).toThrow(reason);
    expect(run).not.toThrow(/secretpw/);
  });

  it("wins over DB_* and falls back to them for missing parts", () => {
    const { database, login } = readEnvDatabase({
      DATABASE_URL: "postgres://urluser@urlhost",
      DB_HOST: "envhost",
      DB_PORT: "7777",
      DB_USER: "envuser",
      DB_PASSWORD: "envpw",
    });
    expect(database).toMatchObject({ host: "urlhost", port: 7777 });
    expect(login).toEqual({ name: "urluser", kind: "plain", secret: "envpw" });
  });
});

describe("DB_* variables", () => {
  it("give the database entry and login", () => {
    const { config } = loadConfig({
      env: { DB_HOST: "pg", DB_PORT: "5433", DB_USER: "django", DB_PASSWORD: "pw", DB_NAME: "app" },
    });
    expect([...config.databases.values()]).toEqual([
      { name: "app", host: "pg", port: 5433, connectParams: {} },
    ]);
    expect(config.authUsers.get("django")).toEqual({ name: "django", kind: "plain", secret: "pw" });
  });

  it("default to any database on port 5432", () => {
    expect(readEnvDatabase({ DB_HOST: "pg" }).database).toEqual({
      name: "*",
      host: "pg",
      port: 5432,
      connectParams: {},
    });
  });

  it("need DB_HOST", () => {
    expect(() => readEnvDatabase({ DB_USER: "u", DB_NAME: "d" })).toThrow(
      "DB_HOST: required with DB_USER, DB_NAME (or set DATABASE_URL)",
    );
    expect(() => readEnvDatabase({ DB_HOST: "h", DB_PORT: "x" })).toThrow(
      'DB_PORT: expected an integer from 1 to 65535, got "x"',
    );
  });

  it("make no login without a password", () => {
    expect(readEnvDatabase({ DB_HOST: "pg", DB_USER: "u" }).login).toBeUndefined();
  });

  it("refuses a database name of 64 bytes or more, as PgBouncer refuses the entry the image would write", () => {
    const name = "d".repeat(64);
    expect(() => readEnvDatabase({ DATABASE_URL: `postgres://u:p@h/${name}` })).toThrow(
      `DATABASE_URL database name: too long db name, 64 bytes or more (PgBouncer's MAX_DBNAME): ${name}`,
    );
    expect(() => readEnvDatabase({ DB_HOST: "h", DB_NAME: name })).toThrow(/^DB_NAME: too long db name/);
    expect(readEnvDatabase({ DB_HOST: "h", DB_NAME: name.slice(1) }).database?.name).toBe(name.slice(1));
  });

  it("refuse DATABASE_URLS, which we do not support", () => {
    expect(() => readEnvDatabase({ DATABASE_URLS: "postgres://a/b,postgres://c/d" })).toThrow(
      /^DATABASE_URLS: not supported/,
    );
  });
});
