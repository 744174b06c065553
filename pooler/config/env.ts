// The environment of the edoburu/pgbouncer Docker image (its entrypoint.sh): DATABASE_URL or DB_*, and
// every [pgbouncer] setting as its key upper-cased (POOL_MODE, MAX_CLIENT_CONN, ...). As in the image,
// an empty variable counts as unset.

import { ConfigError, parseAt } from "./errors.ts";
import { applySetting, checkDbName, IGNORED_SETTINGS, parseInteger, SETTINGS } from "./settings.ts";
import type { DatabaseDef, PoolerConfig, UserSecret } from "./types.ts";
import { parseHostList } from "../host-list.ts";

export type Env = Readonly<Record<string, string | undefined>>;

// `user` is PgBouncer's Unix user to switch to; as an env var it would read the shell's $USER.
const ENV_KEYS = [...SETTINGS.map((s) => s.key), ...IGNORED_SETTINGS].filter((k) => k !== "user");

/**
 * Variables the image reads that are not PgBouncer settings and that we do not (DATABASE_URLS is refused):
 * ADMIN_PASSWORD(S) and STATS_PASSWORDS add those users to its userlist, the others write ini lines.
 */
const IMAGE_ONLY = [
  "ADMIN_PASSWORD",
  "ADMIN_PASSWORDS",
  "STATS_PASSWORDS",
  "CLIENT_ENCODING",
  "TIMEZONE",
  "POOL_SIZE",
];

function envValue(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === "" ? undefined : v;
}

/** Applies the setting variables on top of `config`; returns the names of those it used. */
export function applyEnvSettings(config: PoolerConfig, env: Env, warnings: string[]): string[] {
  const used: string[] = [];
  const ignored: string[] = [];
  for (const key of ENV_KEYS) {
    const name = key.toUpperCase();
    const value = envValue(env, name);
    if (value === undefined) continue;
    used.push(name);
    if (applySetting(config, key, value, { label: name }) === "ignored") ignored.push(name);
  }
  if (ignored.length > 0)
    warnings.push(`environment: settings not implemented, ignored: ${ignored.join(", ")}`);
  const unread = IMAGE_ONLY.filter((name) => envValue(env, name) !== undefined);
  if (unread.length > 0)
    warnings.push(`environment: edoburu/pgbouncer variables not supported, ignored: ${unread.join(", ")}`);
  return used;
}

export interface DatabaseUrl {
  user?: string;
  password?: string;
  host: string;
  port?: number;
  dbname?: string;
}

const URL_FORM = "postgres://user:password@host:port/dbname (or postgresql://)";

/** postgres://user:pass@host:port/db, percent-decoded. Errors never echo the URL: it holds a password. */
export function parseDatabaseUrl(url: string, warnings: string[] = []): DatabaseUrl {
  let u: URL;
  try {
    // WHATWG's URL refuses credentials before an empty host, which libpq takes with ?host=
    // (postgres://user:password@/db?host=/var/run/postgresql): a stand-in host that ?host= replaces
    u = new URL(encodeCredentials(url).replace(/^(postgres(?:ql)?:\/\/[^/?#]*@)(?=[/?#]|$)/i, "$1-"));
  } catch {
    throw new ConfigError(`DATABASE_URL: expected ${URL_FORM}, got something that is not a URL`);
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new ConfigError(`DATABASE_URL: expected ${URL_FORM}, got a ${u.protocol}// URL`);
  }
  // libpq's ?host= and ?port= win over the URL's: the way to name a Unix socket directory
  // (postgresql://user:password@/db?host=/var/run/postgresql), as is a %2F-encoded host
  const urlHost = u.hostname === "-" ? "" : decode(u.hostname, "host").replace(/^\[(.*)\]$/, "$1");
  const host = u.searchParams.get("host") ?? urlHost;
  if (host === "") throw new ConfigError(`DATABASE_URL: expected ${URL_FORM}, got no host`);
  const port = u.searchParams.get("port") ?? u.port;
  const ignored = [...u.searchParams.keys()].filter((k) => k !== "host" && k !== "port");
  if (ignored.length > 0) warnings.push(`DATABASE_URL: query parameters ignored: ${ignored.join(", ")}`);
  const dbname = decode(u.pathname.replace(/^\//, ""), "database name");
  return {
    user: u.username === "" ? undefined : decode(u.username, "user"),
    password: u.password === "" ? undefined : decode(u.password, "password"),
    host,
    port: port === "" ? undefined : parseAt("DATABASE_URL port", port, (p) => parseInteger(p, 1, 65535)),
    dbname: dbname === "" ? undefined : dbname,
  };
}

/**
 * libpq ends user:password at the first @ before the path (the image at the last), so a password
 * may hold # and ? unencoded; WHATWG's URL would end the host there (a fragment, a query).
 */
function encodeCredentials(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/)([^/@]*)@/i, (_, scheme: string, credentials: string) => {
    return `${scheme}${credentials.replace(/[#?]/g, encodeURIComponent)}@`;
  });
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ConfigError(
      `DATABASE_URL: expected percent-encoding such as %40 for @ in the ${what}, got a stray %`,
    );
  }
}

export interface EnvDatabase {
  /** The [databases] entry the image would write, if the env names a server. */
  database?: DatabaseDef;
  /** The user of DATABASE_URL or DB_USER, if any. */
  user?: string;
  /** That user with its password, the login the image appends to userlist.txt. */
  login?: UserSecret;
  warnings: string[];
}

/**
 * DATABASE_URL, else DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME (a URL's parts win over DB_*).
 * The entry is named after the database, or `*` (any name, forwarded as is); it forces no server user,
 * so the server login uses the client's own user and the password from the auth file or URL.
 */
export function readEnvDatabase(env: Env): EnvDatabase {
  const warnings: string[] = [];
  if (envValue(env, "DATABASE_URLS") !== undefined) {
    throw new ConfigError(
      "DATABASE_URLS: not supported, expected DATABASE_URL or an ini file with [databases]",
    );
  }
  const urlText = envValue(env, "DATABASE_URL");
  const url = urlText === undefined ? undefined : parseDatabaseUrl(urlText, warnings);
  const envPort = envValue(env, "DB_PORT");
  const host = url?.host ?? envValue(env, "DB_HOST");
  if (host !== undefined) parseAt(url ? "DATABASE_URL host" : "DB_HOST", host, parseHostList);
  const user = url?.user ?? envValue(env, "DB_USER");
  const password = url?.password ?? envValue(env, "DB_PASSWORD");
  const name = url?.dbname ?? envValue(env, "DB_NAME") ?? "*";
  checkDbName(url?.dbname !== undefined ? "DATABASE_URL database name" : "DB_NAME", name);
  const port =
    url?.port ??
    (envPort === undefined ? 5432 : parseAt("DB_PORT", envPort, (p) => parseInteger(p, 1, 65535)));

  if (host === undefined) {
    const orphans = ["DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"].filter(
      (n) => envValue(env, n) !== undefined,
    );
    if (orphans.length > 0) {
      throw new ConfigError(`DB_HOST: required with ${orphans.join(", ")} (or set DATABASE_URL)`);
    }
    return { warnings };
  }
  return {
    database: { name, host, port, connectParams: {} },
    user,
    login:
      user !== undefined && password !== undefined
        ? { name: user, kind: "plain", secret: password }
        : undefined,
    warnings,
  };
}

/**
 * Defaults the image writes into the pgbouncer.ini it generates, used when we are given no ini file.
 * Unlike the image (0.0.0.0) we keep our listen_addr default, loopback only, and PgBouncer's listen_port
 * (the compose file sets both), and admin_users is DATABASE_URL's user (the app's /admin/pooler/ logs in as it), where the image
 * writes postgres.
 */
export function applyImageDefaults(config: PoolerConfig, dbUser: string | undefined): void {
  applySetting(config, "admin_users", dbUser ?? "postgres");
  // the image writes an empty unix_socket_dir (UNIX_SOCKET_DIR in later versions): TCP only
  applySetting(config, "unix_socket_dir", "");
  // JDBC sends extra_float_digits at startup; PgBouncer would refuse the connection.
  applySetting(config, "ignore_startup_parameters", "extra_float_digits");
}
