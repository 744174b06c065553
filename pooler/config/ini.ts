// pgbouncer.ini: [pgbouncer] settings (see settings.ts), [databases], [users] and [peers] entries whose
// values are libpq-like `key=value` lists. Follows PgBouncer's parsers (libusual cfparser.c,
// src/loader.c): only whole lines are comments, `;` or `#`; `%include FILE`.

import fs from "node:fs";
import path from "node:path";
import { ConfigError, parseAt } from "./errors.ts";
import {
  applySetting,
  checkDbName,
  MAX_PEER_ID,
  parseEnum,
  parseInteger,
  parseSeconds,
  POOL_MODES,
} from "./settings.ts";
import type { DatabaseDef, PeerDef, PoolerConfig, UserDef } from "./types.ts";
import { LOAD_BALANCE_HOSTS, parseHostList } from "../host-list.ts";
import { TARGET_SESSION_ATTRS } from "../target-session.ts";

export interface IniEntry {
  file: string;
  line: number;
  section: string;
  key: string;
  value: string;
}

export interface IniFile {
  entries: IniEntry[];
  /** Every section header met, even of an empty section: PgBouncer insists on [pgbouncer]. */
  sections: Set<string>;
}

const SECTIONS = ["databases", "users", "pgbouncer", "peers"];
const MAX_INCLUDE_DEPTH = 10; // libusual's MAX_INCLUDE

// A key is bare (PgBouncer's characters) or quoted: '...', or "..." with "" for a quote (SQL identifier
// style, which PgBouncer's doc asks for database names with other characters).
const KEY_VALUE = /^(?:'([^']+)'|"((?:[^"]|"")+)"|([A-Za-z0-9_.\-*]+))[ \t]*=[ \t]*(.*)$/;
const SECTION = /^\[([^\]]*)\][ \t]*(?:[;#].*)?$/;
const INCLUDE = /^%include[ \t]+(.+)$/;

/**
 * Reads a pgbouncer.ini and its %include files; a relative %include path is taken from the working
 * directory, as PgBouncer documents (not from the including file's folder).
 */
export function readIniFile(file: string): IniFile {
  const ini: IniFile = { entries: [], sections: new Set() };
  // The current section carries into and out of included files, as in PgBouncer.
  readInto(ini, file, { section: undefined }, 0);
  return ini;
}

/** `includedAt`: the file:line of the %include that names `file`, which an error then names. */
function readInto(
  ini: IniFile,
  file: string,
  state: { section: string | undefined },
  depth: number,
  includedAt?: string,
): void {
  const lines = readText(file, includedAt).split("\n");
  lines.forEach((rawLine, i) => {
    const where = `${file}:${i + 1}`;
    const line = rawLine.trim();
    if (line === "" || line.startsWith(";") || line.startsWith("#")) return;

    const include = INCLUDE.exec(line);
    if (include !== null) {
      if (depth >= MAX_INCLUDE_DEPTH) throw new ConfigError(`${where}: %include nested more than 10 deep`);
      readInto(ini, path.resolve(include[1] ?? ""), state, depth + 1, where);
      return;
    }

    const section = SECTION.exec(line);
    if (section !== null) {
      const name = section[1] ?? "";
      if (!SECTIONS.includes(name)) {
        throw new ConfigError(
          `${where}: invalid section "${name}", expected one of ${SECTIONS.map((s) => `[${s}]`).join(", ")}`,
        );
      }
      state.section = name;
      ini.sections.add(name);
      return;
    }

    const kv = KEY_VALUE.exec(line);
    if (kv === null) {
      throw new ConfigError(`${where}: syntax error, expected "key = value", "[section]" or "%include FILE"`);
    }
    if (state.section === undefined) throw new ConfigError(`${where}: "${line}" comes before any [section]`);
    const key = kv[1] ?? kv[2]?.replaceAll('""', '"') ?? kv[3] ?? "";
    ini.entries.push({ file, line: i + 1, section: state.section, key, value: kv[4] ?? "" });
  });
}

function readText(file: string, includedAt: string | undefined): string {
  try {
    return fs.readFileSync(file, "utf8").replaceAll("\r\n", "\n");
  } catch (err) {
    const prefix = includedAt === undefined ? "" : `${includedAt}: %include: `;
    throw new ConfigError(
      `${prefix}cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

/** Applies the ini's entries on top of `config`; returns warnings (ignored settings and parameters). */
export function applyIni(config: PoolerConfig, ini: IniFile): string[] {
  if (!ini.sections.has("pgbouncer")) {
    const file = ini.entries[0]?.file ?? "the ini file";
    throw new ConfigError(`${file}: main section [pgbouncer] missing`);
  }
  const warnings: string[] = [];
  const ignoredSettings: string[] = [];
  for (const e of ini.entries) {
    const where = `${e.file}:${e.line}`;
    switch (e.section) {
      case "pgbouncer":
        if (applySetting(config, e.key, e.value, { where }) === "ignored") ignoredSettings.push(e.key);
        break;
      case "databases":
        config.databases.set(e.key, parseDatabase(e.key, e.value, where, warnings));
        break;
      case "users":
        config.users.set(e.key, parseUser(e.key, e.value, where, warnings));
        break;
      case "peers": {
        const peer = parsePeer(e.key, e.value, where, warnings);
        config.peers.set(peer.id, peer);
        break;
      }
    }
  }
  if (ignoredSettings.length > 0) {
    warnings.push(`[pgbouncer] settings not implemented, ignored: ${ignoredSettings.join(", ")}`);
  }
  return warnings;
}

// ---------------------------------------------------------------------------------------------
// Connection strings of [databases] and [users].

/**
 * `key=value key='quoted value' ...`: a quoted value uses '' for a quote (there is no backslash escape
 * in PgBouncer); an unquoted value ends at a space; empty values are refused, as in PgBouncer.
 * The string itself never appears in errors: it may hold a password.
 */
export function parseConnString(s: string, label: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  const pair = /\s*([^=\s]+)\s*=\s*(?:'((?:[^']|'')*)'|([^\s']\S*))(?=\s|$)/y;
  const end = s.trimEnd().length;
  while (pair.lastIndex < end) {
    const at = pair.lastIndex;
    const m = pair.exec(s);
    const value = m?.[2]?.replaceAll("''", "'") ?? m?.[3];
    if (m === null || value === undefined || value === "") {
      throw new ConfigError(
        `${label}: syntax error in connection string at character ${at + 1}, ` +
          `expected key=value pairs separated by spaces, values with spaces quoted as 'it''s'`,
      );
    }
    pairs.push([m[1] ?? "", value]);
  }
  return pairs;
}

type ParamSetters<T> = Record<string, (target: T, raw: string) => void>;

const poolMode = (raw: string) => parseEnum(raw, POOL_MODES);
const count = (raw: string) => parseInteger(raw);
/** PgBouncer's per-database sizes start at -1, "not set": the global value applies. */
const countOrUnset = (raw: string) => (raw.trim() === "-1" ? undefined : count(raw));

const DATABASE_PARAMS: ParamSetters<DatabaseDef> = {
  dbname: (db, v) => (db.dbname = v),
  host: (db, v) => {
    parseHostList(v);
    db.host = v;
  },
  load_balance_hosts: (db, v) => (db.loadBalanceHosts = parseEnum(v, LOAD_BALANCE_HOSTS)),
  port: (db, v) => (db.port = parseInteger(v, 1, 65535)),
  user: (db, v) => (db.user = v),
  password: (db, v) => (db.password = v),
  auth_user: (db, v) => (db.authUser = v),
  auth_dbname: (db, v) => (db.authDbname = v),
  pool_size: (db, v) => (db.poolSize = countOrUnset(v)),
  min_pool_size: (db, v) => (db.minPoolSize = countOrUnset(v)),
  reserve_pool: (db, v) => (db.reservePool = countOrUnset(v)),
  reserve_pool_size: (db, v) => (db.reservePool = countOrUnset(v)),
  max_db_connections: (db, v) => (db.maxDbConnections = countOrUnset(v)),
  max_db_client_connections: (db, v) => (db.maxDbClientConnections = count(v)),
  server_lifetime: (db, v) => (db.serverLifetime = parseSeconds(v)),
  // PgBouncer 1.26: -1 is "not set" (the user's or the global value applies)
  query_wait_timeout: (db, v) => (db.queryWaitTimeout = v.trim() === "-1" ? undefined : parseSeconds(v)),
  pool_mode: (db, v) => (db.poolMode = poolMode(v)),
  client_encoding: (db, v) => (db.connectParams.client_encoding = v),
  datestyle: (db, v) => (db.connectParams.datestyle = v),
  timezone: (db, v) => (db.connectParams.timezone = v),
  application_name: (db, v) => (db.connectParams.application_name = v),
  connect_query: (db, v) => (db.connectQuery = v),
  target_session_attrs: (db, v) => (db.targetSessionAttrs = parseEnum(v, TARGET_SESSION_ATTRS)),
};

/** PgBouncer 1.25/1.26 per-database parameters we do not implement. */
const IGNORED_DATABASE_PARAMS = new Set(["auth_query"]);

const USER_PARAMS: ParamSetters<UserDef> = {
  pool_mode: (u, v) => (u.poolMode = poolMode(v)),
  pool_size: (u, v) => (u.poolSize = count(v)),
  max_user_connections: (u, v) => (u.maxUserConnections = count(v)),
  max_user_client_connections: (u, v) => (u.maxUserClientConnections = count(v)),
  query_timeout: (u, v) => (u.queryTimeout = parseSeconds(v)),
  query_wait_timeout: (u, v) => (u.queryWaitTimeout = parseSeconds(v)),
  idle_transaction_timeout: (u, v) => (u.idleTransactionTimeout = parseSeconds(v)),
  transaction_timeout: (u, v) => (u.transactionTimeout = parseSeconds(v)),
  client_idle_timeout: (u, v) => (u.clientIdleTimeout = parseSeconds(v)),
};

/** PgBouncer 1.25/1.26 per-user parameters we do not implement. */
const IGNORED_USER_PARAMS = new Set(["reserve_pool_size"]);

function parseDatabase(name: string, connstr: string, where: string, warnings: string[]): DatabaseDef {
  const label = `${where}: [databases] ${name}`;
  if (name === "pgbouncer")
    throw new ConfigError(`${label}: the name "pgbouncer" is reserved for the admin console`);
  checkDbName(`${where}: [databases]`, name);
  const db: DatabaseDef = { name, host: "", port: 5432, connectParams: {} };
  // no host= leaves "": the Unix socket in unix_socket_dir, as in PgBouncer
  applyParams(db, connstr, label, "connection", DATABASE_PARAMS, IGNORED_DATABASE_PARAMS, warnings);
  return db;
}

function parseUser(name: string, settings: string, where: string, warnings: string[]): UserDef {
  const user: UserDef = { name };
  applyParams(
    user,
    settings,
    `${where}: [users] ${name}`,
    "user",
    USER_PARAMS,
    IGNORED_USER_PARAMS,
    warnings,
  );
  return user;
}

const PEER_PARAMS: ParamSetters<PeerDef> = {
  host: (peer, v) => (peer.host = v),
  port: (peer, v) => (peer.port = parseInteger(v, 1, 65535)),
  pool_size: (peer, v) => (peer.poolSize = parseInteger(v, 1)),
};

function parsePeer(key: string, settings: string, where: string, warnings: string[]): PeerDef {
  const label = `${where}: [peers] ${key}`;
  const id = parseAt(label, key, (raw) => parseInteger(raw, 1, MAX_PEER_ID));
  // no host= is the Unix socket in unix_socket_dir, as for [databases]; 6432 is PgBouncer's port
  const peer: PeerDef = { id, host: "", port: 6432 };
  applyParams(peer, settings, label, "peer", PEER_PARAMS, new Set(), warnings);
  return peer;
}

function applyParams<T>(
  target: T,
  connstr: string,
  label: string,
  kind: "connection" | "user" | "peer",
  setters: ParamSetters<T>,
  ignored: ReadonlySet<string>,
  warnings: string[],
): void {
  for (const [key, value] of parseConnString(connstr, label)) {
    const set = setters[key];
    if (set !== undefined) {
      parseAt(`${label}: ${key}`, value, (raw) => set(target, raw));
    } else if (ignored.has(key)) {
      warnings.push(`${label}: ${kind} parameter ${key} not implemented, ignored`);
    } else {
      throw new ConfigError(
        `${label}: unrecognized ${kind} parameter: ${key}, expected one of ${Object.keys(setters).join(", ")}`,
      );
    }
  }
}
