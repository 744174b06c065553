// The [pgbouncer] settings we support: one table that drives the ini parser, the environment variables
// (key upper-cased), the admin console's SHOW CONFIG and SET, and the defaults of a fresh PoolerConfig.
// Defaults and the `changeable` column follow PgBouncer 1.25 (src/main.c, bouncer_params).

import { ConfigError, InvalidValue, parseAt } from "./errors.ts";
import { KEEPALIVE_LIMITS } from "../keepalive.ts";
import {
  DHE_PARAMS,
  SSL_MODES,
  parseEcdhCurve,
  parseTls13Ciphers,
  parseTlsCiphers,
  parseTlsProtocols,
} from "./tls.ts";
import type { AuthType, PoolerConfig, PoolMode } from "./types.ts";

export const POOL_MODES: readonly PoolMode[] = ["session", "transaction", "statement"];
export const AUTH_TYPES: readonly AuthType[] = [
  "any",
  "trust",
  "plain",
  "md5",
  "scram-sha-256",
  "cert",
  "hba",
];

// ---------------------------------------------------------------------------------------------
// Value parsers, shared with the [databases] and [users] parsers. They throw InvalidValue.

const INT_MAX = 2147483647;
export const MAX_PEER_ID = 16383;
/** PgBouncer's MAX_DBNAME: PostgreSQL's NAMEDATALEN, its NUL included. */
export const MAX_DBNAME = 64;

/** PgBouncer refuses a [databases] entry whose name is MAX_DBNAME bytes or more ("too long db name"). */
export function checkDbName(label: string, name: string): void {
  if (Buffer.byteLength(name) >= MAX_DBNAME) {
    throw new ConfigError(
      `${label}: too long db name, ${MAX_DBNAME} bytes or more (PgBouncer's MAX_DBNAME): ${name}`,
    );
  }
}

/** Base 10, as PgBouncer's atoi() reads [databases] and [users] options (010 is 10); NaN for anything else. */
const decimal = (v: string): number => (/^[+-]?\d+$/.test(v) ? Number(v) : NaN);

/** C's strtol(…, 0), as PgBouncer's cf_set_int reads [pgbouncer] integers: 0x20 is 32, 010 is 8; NaN for anything else. */
function strtol0(raw: string): number {
  const m = /^([+-]?)(?:0x([0-9a-f]+)|(0[0-7]*)|([1-9]\d*))$/i.exec(raw.trim());
  if (m === null) return NaN;
  const [, sign, hex, octal, dec] = m;
  const n = hex !== undefined ? parseInt(hex, 16) : octal !== undefined ? parseInt(octal, 8) : Number(dec);
  return sign === "-" ? -n : n;
}

export function parseInteger(raw: string, min = 0, max = INT_MAX, read = decimal): number {
  const expected = max === INT_MAX ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  const n = read(raw.trim());
  if (!(n >= min && n <= max)) throw new InvalidValue(expected);
  return n;
}

/**
 * PgBouncer's durations are (possibly fractional) seconds, read by C's strtod: a + sign and hex
 * integers (0x10) too; ours are milliseconds.
 */
export function parseSeconds(raw: string): number {
  const v = raw.trim().replace(/^\+/, "");
  const hex = /^0x[0-9a-f]+$/i.test(v);
  // PgBouncer keeps microseconds; rounding there also absorbs float noise (1.1 * 1000 = 1100.0000000000002).
  const ms = Math.round((hex ? parseInt(v, 16) : Number(v)) * 1e6) / 1e3;
  // Beyond a double (1e400) strtod fails with ERANGE, which PgBouncer refuses too: Infinity would
  // reach the timers, and a socket's setTimeout throws on it.
  if ((!hex && !/^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) || !Number.isFinite(ms)) {
    throw new InvalidValue("a number of seconds >= 0, such as 5 or 0.5");
  }
  return ms;
}

export function parseBool(raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (["1", "on", "yes", "true"].includes(v)) return true;
  if (["0", "off", "no", "false"].includes(v)) return false;
  throw new InvalidValue("0 or 1 (or on/off, yes/no, true/false)");
}

/** Case-insensitive, as PgBouncer's lookups; returns the canonical spelling. */
export function parseEnum<T extends string>(raw: string, values: readonly T[]): T {
  const found = values.find((v) => v === raw.trim().toLowerCase());
  if (found === undefined) throw new InvalidValue(`one of ${values.join(", ")}`);
  return found;
}

export function parseList(raw: string): string[] {
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** C's printf("%g"), which PgBouncer uses to print durations in SHOW CONFIG: 6 significant digits. */
export function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  if (seconds === 0) return "0";
  const [mantissa = "", exponent = ""] = seconds.toExponential(5).split("e");
  const exp = Number(exponent);
  if (exp < -4 || exp >= 6) {
    return `${trimZeros(mantissa)}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  return trimZeros(seconds.toFixed(5 - exp));
}

function trimZeros(s: string): string {
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

// ---------------------------------------------------------------------------------------------
// The table.

export type SettingKind = "int" | "seconds" | "bool" | "string" | "enum" | "list";

export interface SettingDef {
  key: string;
  kind: SettingKind;
  field: keyof PoolerConfig;
  /** As SHOW CONFIG prints it; null = not set. */
  default: string | null;
  /** SHOW CONFIG's `changeable`: false for what PgBouncer only reads at start (CF_NO_RELOAD). */
  changeable: boolean;
  /** Parses and stores the value; throws InvalidValue. */
  set(config: PoolerConfig, raw: string): void;
  /** The value as SHOW CONFIG prints it. */
  show(config: PoolerConfig): string | null;
}

/** The PoolerConfig fields whose type is exactly T. */
type FieldOf<T> = {
  [K in keyof PoolerConfig]-?: [PoolerConfig[K]] extends [T]
    ? [T] extends [PoolerConfig[K]]
      ? K
      : never
    : never;
}[keyof PoolerConfig];

interface Options {
  changeable?: boolean;
  min?: number;
  max?: number;
}

/** A number setting: how it is parsed from text and printed in SHOW CONFIG. */
function numeric(
  key: string,
  kind: "int" | "seconds",
  field: FieldOf<number>,
  def: string,
  parse: (raw: string) => number,
  show: (n: number) => string,
  changeable = true,
): SettingDef {
  return {
    key,
    kind,
    field,
    default: def,
    changeable,
    set: (c, raw) => {
      c[field] = parse(raw);
    },
    show: (c) => show(c[field]),
  };
}

function int(key: string, field: FieldOf<number>, def: string, opts: Options = {}): SettingDef {
  const parse = (raw: string): number => parseInteger(raw, opts.min, opts.max, strtol0);
  return numeric(key, "int", field, def, parse, String, opts.changeable);
}

function seconds(key: string, field: FieldOf<number>, def: string): SettingDef {
  return numeric(key, "seconds", field, def, parseSeconds, formatSeconds);
}

function bool(key: string, field: FieldOf<boolean>, def: string, opts: Options = {}): SettingDef {
  return {
    key,
    kind: "bool",
    field,
    default: def,
    changeable: opts.changeable ?? true,
    set: (c, raw) => {
      c[field] = parseBool(raw);
    },
    show: (c) => (c[field] ? "1" : "0"),
  };
}

function string(key: string, field: FieldOf<string>, def: string, opts: Options = {}): SettingDef {
  return {
    key,
    kind: "string",
    field,
    default: def,
    changeable: opts.changeable ?? true,
    set: (c, raw) => {
      c[field] = raw;
    },
    show: (c) => c[field],
  };
}

/** Optional strings: PgBouncer's "not set" (SHOW CONFIG prints NULL); an empty value unsets them too. */
function optionalString(
  key: string,
  field: FieldOf<string | undefined>,
  opts: Pick<Options, "changeable"> = {},
): SettingDef {
  return {
    key,
    kind: "string",
    field,
    default: null,
    changeable: opts.changeable ?? true,
    set: (c, raw) => {
      c[field] = raw === "" ? undefined : raw;
    },
    show: (c) => c[field] ?? null,
  };
}

/** A string checked when set (TLS protocols, ciphers, curves), so a bad value is refused where it was given. */
function checkedString(
  key: string,
  field: FieldOf<string>,
  def: string,
  check: (raw: string) => unknown,
): SettingDef {
  return {
    key,
    kind: "string",
    field,
    default: def,
    changeable: true,
    set: (c, raw) => {
      check(raw);
      c[field] = raw;
    },
    show: (c) => c[field],
  };
}

/** A permission mode read as C's strtol(…, 0) does (0777 is octal); SHOW CONFIG prints it in decimal, as PgBouncer. */
function fileMode(key: string, field: FieldOf<number>, def: string): SettingDef {
  return numeric(key, "int", field, def, parseFileMode, String, false);
}

export function parseFileMode(raw: string): number {
  const n = strtol0(raw);
  if (!(n >= 0 && n <= 0o7777)) throw new InvalidValue("a permission mode such as 0777 or 0700");
  return n;
}

function list(key: string, field: FieldOf<string[]>, def: string, opts: Options = {}): SettingDef {
  return {
    key,
    kind: "list",
    field,
    default: def,
    changeable: opts.changeable ?? true,
    set: (c, raw) => {
      c[field] = parseList(raw);
    },
    show: (c) => c[field].join(","),
  };
}

function choice<
  F extends "poolMode" | "authType" | "clientTlsSslmode" | "serverTlsSslmode" | "clientTlsDheparams",
>(key: string, field: F, values: readonly PoolerConfig[F][], def: PoolerConfig[F]): SettingDef {
  return {
    key,
    kind: "enum",
    field,
    default: def,
    changeable: true,
    set: (c, raw) => {
      c[field] = parseEnum(raw, values);
    },
    show: (c) => c[field],
  };
}

/** Alphabetical, the order of PgBouncer's SHOW CONFIG. */
export const SETTINGS: readonly SettingDef[] = [
  list("admin_users", "adminUsers", ""),
  bool("application_name_add_host", "applicationNameAddHost", "0"),
  optionalString("auth_dbname", "authDbname"),
  optionalString("auth_file", "authFile"),
  optionalString("auth_hba_file", "authHbaFile"),
  string(
    "auth_query",
    "authQuery",
    "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin",
  ),
  choice("auth_type", "authType", AUTH_TYPES, "md5"),
  optionalString("auth_user", "authUser"),
  seconds("autodb_idle_timeout", "autodbIdleTimeout", "3600"),
  seconds("cancel_wait_timeout", "cancelWaitTimeout", "10"),
  seconds("client_idle_timeout", "clientIdleTimeout", "0"),
  seconds("client_login_timeout", "clientLoginTimeout", "60"),
  // PgBouncer 1.25's; 1.18 refuses them as unknown keys
  checkedString("client_tls13_ciphers", "clientTls13Ciphers", "", parseTls13Ciphers),
  optionalString("client_tls_ca_file", "clientTlsCaFile"),
  optionalString("client_tls_cert_file", "clientTlsCertFile"),
  checkedString("client_tls_ciphers", "clientTlsCiphers", "default", parseTlsCiphers),
  choice("client_tls_dheparams", "clientTlsDheparams", DHE_PARAMS, "auto"),
  checkedString("client_tls_ecdhcurve", "clientTlsEcdhcurve", "auto", parseEcdhCurve),
  optionalString("client_tls_key_file", "clientTlsKeyFile"),
  checkedString("client_tls_protocols", "clientTlsProtocols", "secure", parseTlsProtocols),
  choice("client_tls_sslmode", "clientTlsSslmode", SSL_MODES, "disable"),
  int("default_pool_size", "defaultPoolSize", "20"),
  // PgBouncer reads it only at start (CF_NO_RELOAD)
  bool("disable_pqexec", "disablePqexec", "0", { changeable: false }),
  seconds("dns_max_ttl", "dnsMaxTtl", "15"),
  seconds("dns_nxdomain_ttl", "dnsNxdomainTtl", "15"),
  seconds("idle_transaction_timeout", "idleTransactionTimeout", "0"),
  list("ignore_startup_parameters", "ignoreStartupParameters", ""),
  // PgBouncer's default is unset (Unix socket only); ours is loopback, so that the tutorial's TCP
  // clients connect out of the box. Empty means the Unix socket only, as in PgBouncer.
  string("listen_addr", "listenAddr", "127.0.0.1", { changeable: false }),
  int("listen_backlog", "listenBacklog", "128", { changeable: false, min: 1 }),
  // 0 asks the OS for a free port (tests, or several poolers side by side); the log says which.
  int("listen_port", "listenPort", "6432", { changeable: false, min: 0, max: 65535 }),
  bool("log_connections", "logConnections", "1"),
  bool("log_disconnections", "logDisconnections", "1"),
  bool("log_pooler_errors", "logPoolerErrors", "1"),
  bool("log_stats", "logStats", "1"),
  // appended to besides stdout; RELOAD/SIGHUP open it again (log rotation)
  optionalString("logfile", "logfile"),
  // a NOTICE after every login, so that people know they reach a pooler (PgBouncer 1.26)
  string("login_notify_message", "loginNotifyMessage", ""),
  int("max_client_conn", "maxClientConn", "100", { min: 1 }),
  int("max_db_client_connections", "maxDbClientConnections", "0"),
  int("max_db_connections", "maxDbConnections", "0"),
  int("max_packet_size", "maxPacketSize", "2147483647", { min: 1, max: 4294967295 }),
  int("max_prepared_statements", "maxPreparedStatements", "200"),
  int("max_user_client_connections", "maxUserClientConnections", "0"),
  int("max_user_connections", "maxUserConnections", "0"),
  // Not PgBouncer's: the Prometheus /metrics port, 0 = off.
  int("metrics_port", "metricsPort", "0", { changeable: false, max: 65535 }),
  int("min_pool_size", "minPoolSize", "0"),
  // Read at start only: the clients' cancel keys carry it (PgBouncer's limit, 14 bits).
  int("peer_id", "peerId", "0", { changeable: false, max: MAX_PEER_ID }),
  optionalString("pidfile", "pidfile", { changeable: false }),
  // Not PgBouncer's: in transaction/statement pooling, a client holding session state that cannot be
  // replayed (advisory locks, LISTEN, WITH HOLD cursors, temp tables, SQL PREPARE) keeps its server
  // while the state lives; 0 makes the statements that create such state an error instead.
  bool("pin_session_state", "pinSessionState", "1"),
  int("pkt_buf", "pktBuf", "4096", { changeable: false, min: 1 }),
  // PgBouncer 1.26: a (database, user) pool with no clients and no servers that long is freed
  seconds("pool_idle_timeout", "poolIdleTimeout", "0"),
  choice("pool_mode", "poolMode", POOL_MODES, "session"),
  seconds("query_timeout", "queryTimeout", "0"),
  // whole seconds, as in PgBouncer (an int there, not a duration)
  int("query_wait_notify", "queryWaitNotify", "5"),
  seconds("query_wait_timeout", "queryWaitTimeout", "120"),
  int("reserve_pool_size", "reservePoolSize", "0"),
  seconds("reserve_pool_timeout", "reservePoolTimeout", "5"),
  int("scram_iterations", "scramIterations", "4096", { min: 1 }),
  seconds("server_check_delay", "serverCheckDelay", "30"),
  string("server_check_query", "serverCheckQuery", "<empty>"),
  seconds("server_connect_timeout", "serverConnectTimeout", "15"),
  bool("server_fast_close", "serverFastClose", "0"),
  seconds("server_idle_timeout", "serverIdleTimeout", "600"),
  seconds("server_lifetime", "serverLifetime", "3600"),
  seconds("server_login_retry", "serverLoginRetry", "15"),
  string("server_reset_query", "serverResetQuery", "DISCARD ALL"),
  bool("server_reset_query_always", "serverResetQueryAlways", "0"),
  bool("server_round_robin", "serverRoundRobin", "0"),
  checkedString("server_tls13_ciphers", "serverTls13Ciphers", "", parseTls13Ciphers),
  optionalString("server_tls_ca_file", "serverTlsCaFile"),
  optionalString("server_tls_cert_file", "serverTlsCertFile"),
  checkedString("server_tls_ciphers", "serverTlsCiphers", "default", parseTlsCiphers),
  optionalString("server_tls_key_file", "serverTlsKeyFile"),
  checkedString("server_tls_protocols", "serverTlsProtocols", "secure", parseTlsProtocols),
  // PgBouncer 1.20+ (1.18, the tutorial's image, had disable): TLS whenever the server offers it.
  choice("server_tls_sslmode", "serverTlsSslmode", SSL_MODES, "prefer"),
  // TCP listeners only: each pooler sharing the port keeps its own Unix socket, pidfile and console
  bool("so_reuseport", "soReuseport", "0", { changeable: false }),
  // An int in PgBouncer; read as seconds here because the field is a duration in ms like the others.
  seconds("stats_period", "statsPeriod", "60"),
  list("stats_users", "statsUsers", ""),
  seconds("suspend_timeout", "suspendTimeout", "10"),
  bool("tcp_keepalive", "tcpKeepalive", "1"),
  // keepalive.ts. Whole seconds, as PgBouncer's ints; the maxima are the kernel's (MAX_TCP_KEEPCNT,
  // MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL), which PgBouncer meets as a failed setsockopt at start
  int("tcp_keepcnt", "tcpKeepcnt", "0", { max: KEEPALIVE_LIMITS.count }),
  int("tcp_keepidle", "tcpKeepidle", "0", { max: KEEPALIVE_LIMITS.idle }),
  int("tcp_keepintvl", "tcpKeepintvl", "0", { max: KEEPALIVE_LIMITS.interval }),
  list("track_extra_parameters", "trackExtraParameters", "IntervalStyle", { changeable: false }),
  seconds("transaction_timeout", "transactionTimeout", "0"),
  // Listens on <dir>/.s.PGSQL.<listen_port> besides listen_addr; also where a [databases] entry
  // without host= connects. Empty: no Unix socket; @name: Linux's abstract namespace.
  string("unix_socket_dir", "unixSocketDir", "/tmp", { changeable: false }),
  optionalString("unix_socket_group", "unixSocketGroup", { changeable: false }),
  fileMode("unix_socket_mode", "unixSocketMode", "0777"),
  // the Unix user the program becomes at start (run-as-user.ts)
  optionalString("user", "user", { changeable: false }),
  // PgBouncer prints NULL as verbose's default but starts at 0.
  int("verbose", "verbose", "0"),
];

const BY_KEY = new Map(SETTINGS.map((s) => [s.key, s]));

export function findSetting(key: string): SettingDef | undefined {
  return BY_KEY.get(key);
}

/**
 * PgBouncer settings we do not implement. They are accepted (people paste real pgbouncer.ini files)
 * and reported as warnings; a key in neither list is an error, as in PgBouncer.
 */
export const IGNORED_SETTINGS: ReadonlySet<string> = new Set([
  "auth_ident_file",
  "auth_ldap_options",
  "conffile",
  "dns_zone_check_period",
  "job_name",
  "resolv_conf",
  "sbuf_loopcnt",
  "service_name",
  "syslog",
  "syslog_facility",
  "syslog_ident",
  "tcp_defer_accept",
  "tcp_socket_buffer",
  "tcp_user_timeout",
]);

export type ApplyResult = "set" | "ignored";

export interface ApplyOptions {
  /** Where the value comes from, e.g. "/etc/pgbouncer/pgbouncer.ini:12"; prefixes error messages. */
  where?: string;
  /** Name to report instead of the key, e.g. the env var "POOL_MODE". */
  label?: string;
  /** Admin console SET: refuse what PgBouncer only reads at start. */
  online?: boolean;
}

/** Validates and stores one [pgbouncer] setting; throws ConfigError. */
export function applySetting(
  config: PoolerConfig,
  key: string,
  rawValue: string,
  opts: ApplyOptions = {},
): ApplyResult {
  const prefix = opts.where === undefined ? "" : `${opts.where}: `;
  const label = `${prefix}${opts.label ?? key}`;
  const setting = findSetting(key);
  if (setting === undefined) {
    if (!IGNORED_SETTINGS.has(key)) throw new ConfigError(`${prefix}unknown parameter: pgbouncer/${key}`);
    return "ignored";
  }
  if (opts.online === true && !setting.changeable) {
    throw new ConfigError(`${label}: cannot be changed online, restart the pooler`);
  }
  parseAt(label, rawValue, (raw) => setting.set(config, raw));
  return "set";
}

export interface ShowConfigRow {
  key: string;
  value: string | null;
  default: string | null;
  changeable: "yes" | "no";
}

export function showConfigRows(config: PoolerConfig): ShowConfigRow[] {
  return SETTINGS.map((s) => ({
    key: s.key,
    value: s.show(config),
    default: s.default,
    changeable: s.changeable ? "yes" : "no",
  }));
}

/** A config holding the table's defaults and no databases or users. */
export function defaultConfig(): PoolerConfig {
  // The loop below fills every setting field (a test checks that none is missed).
  const config = {
    databases: new Map(),
    users: new Map(),
    peers: new Map(),
    authUsers: new Map(),
    hbaRules: [],
    source: { env: false },
  } as unknown as PoolerConfig;
  for (const s of SETTINGS) {
    if (s.default !== null) s.set(config, s.default);
  }
  return config;
}
