// The server parameters the pooler keeps per client (PgBouncer's varcache): what a client chose at
// startup or by SET, replayed on whichever server it gets next so no client sees another's values.
import { Lru } from "./lru.ts";
import { quoteIdent, quoteLiteral } from "./sql.ts";

/** GUC_REPORT parameters PgBouncer tracks, in the case ParameterStatus uses. */
const ALWAYS_TRACKED = [
  "client_encoding",
  "DateStyle",
  "TimeZone",
  "standard_conforming_strings",
  "application_name",
];

const canonical = new Map<string, string>(ALWAYS_TRACKED.map((n) => [n.toLowerCase(), n]));

/** The canonical name if `name` is tracked (always, or via track_extra_parameters), else null. */
export function trackedParameter(name: string, extra: readonly string[]): string | null {
  const lower = name.toLowerCase();
  const known = canonical.get(lower);
  if (known) return known;
  return extra.find((e) => e.toLowerCase() === lower) ?? null;
}

/**
 * A startup value of a tracked parameter as the server keeps it. PostgreSQL (13: check_application_name)
 * makes application_name printable ASCII, each other byte a "?": done here, since its bytes reach the
 * server by SQL, where a UTF8 database would refuse one that is not UTF-8 (raw-text.ts).
 */
export function startupParamValue(name: string, value: string): string {
  return name === "application_name" ? value.replace(/[^\x20-\x7e]/g, "?") : value;
}

// Clients of one application choose the same few values (application_name, client_encoding), so
// each set of them is kept once and shared, immutable: thousands of idle clients holding a map each
// add up. Bounded, since the values come from clients (application_name_add_host makes each unique).
const sharedSets = new Lru<string, ReadonlyMap<string, string>>(1024);

/** A client's own parameters with `name` set to `value`: a new map, shared only once `shared` says so. */
export function withParam(
  own: ReadonlyMap<string, string> | null,
  name: string,
  value: string,
): ReadonlyMap<string, string> {
  return own?.get(name) === value ? own : new Map(own).set(name, value);
}

/** The shared map equal to `own` (the same entries in the same order), kept from now on if new. */
export function shared(own: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  let key = "";
  own.forEach((value, name) => (key += `${name}\0${value}\0`));
  const found = sharedSets.get(key);
  if (found) return found;
  sharedSets.set(key, own);
  return own;
}

/** The tracked parameters among those a server reported, under the names it reported them by. */
export function trackedOnly(
  reported: ReadonlyMap<string, string>,
  extra: readonly string[],
): ReadonlyMap<string, string> {
  return new Map([...reported].filter(([name]) => trackedParameter(name, extra) !== null));
}

/**
 * SET statements that make the server's tracked parameters (`current`) equal the client's, or "".
 * A client holds only the values it chose (`own`, null if none); for the others it wants what its
 * pool's servers report at login (`defaults`), which another client's SET may have changed.
 */
export function paramSyncSql(
  own: ReadonlyMap<string, string> | null,
  defaults: ReadonlyMap<string, string>,
  current: ReadonlyMap<string, string>,
): string {
  let sql = "";
  // forEach: runs once per client link, and for…of would make an entry array per parameter
  defaults.forEach((value, name) => {
    const wanted = own?.get(name) ?? value;
    if (current.get(name) !== wanted) sql += setSql(name, wanted);
  });
  own?.forEach((value, name) => {
    if (!defaults.has(name) && current.get(name) !== value) sql += setSql(name, value);
  });
  return sql;
}

function setSql(name: string, value: string): string {
  return `SET ${name} = ${quoteLiteral(value)};`;
}

// ---- session settings: everything else a client SETs or gives at startup (statement_timeout, search_path, …) ----
//
// PostgreSQL reports only a few parameters (ParameterStatus), so the values of the others come from
// the probe (session-state.ts) and are replayed with set_config(), which takes a setting's value as
// pg_settings prints it (search_path = 'a, "b c"' stays a list, as SET with that string would not).

/** What a startup parameter or `-c` option may name: a GUC, possibly a dotted custom placeholder. */
const GUC_NAME = /^[a-z_][a-z0-9_$]*(?:\.[a-z_][a-z0-9_$]*)*$/i;

export function isSettingName(name: string): boolean {
  // _pq_.* names are protocol extensions, not settings
  return GUC_NAME.test(name) && !name.toLowerCase().startsWith("_pq_.");
}

/** The session's identity: session_authorization before role, which it would undo. */
const IDENTITY = ["session_authorization", "role"];

/**
 * SQL that makes a server's session settings (`current`) what a client wants, or "": its own
 * (`own`) on top of what connect_query gave that server (`baseline`), which is every client's
 * starting point. RESET for what the server has beyond both, set_config for what differs. Three
 * maps walked rather than one merged: this runs at every link.
 *
 * A superuser-only setting changes only under a superuser identity. With a superuser login
 * (`loginSuperuser`) the others change under it, the identity reset first and set again after:
 * a superuser's SET of one, then SET ROLE, left on the server would otherwise refuse every next
 * client. Otherwise only a SET ROLE to a superuser role (a client's, connect_query's) could have set
 * one, possibly followed by a SET ROLE to a role that is none or a RESET ROLE: they change under the
 * server's current role when that is a superuser (is_superuser in its `serverParams`), the identity
 * set after; else under the identity the client wants, set first.
 */
export function settingsSyncSql(
  own: ReadonlyMap<string, string>,
  current: ReadonlyMap<string, string>,
  baseline: ReadonlyMap<string, string>,
  loginSuperuser = true,
  serverParams?: ReadonlyMap<string, string>,
): string {
  // the common case at every link, a client and a server with no settings: nothing to build
  if (own.size === 0 && current.size === 0 && baseline.size === 0) return "";
  const wanted = (name: string): string | undefined => own.get(name) ?? baseline.get(name);
  let resets = "";
  for (const name of current.keys())
    if (!IDENTITY.includes(name) && wanted(name) === undefined) resets += `RESET ${quoteIdent(name)};`;
  const sets: string[] = [];
  const want = (value: string, name: string): void => {
    if (!IDENTITY.includes(name) && current.get(name) !== value) sets.push(setConfigSql(name, value));
  };
  own.forEach(want);
  baseline.forEach((value, name) => {
    if (!own.has(name)) want(value, name);
  });
  const again = loginSuperuser && (resets !== "" || sets.length > 0);
  let identityResets = "";
  const identitySets: string[] = [];
  for (const name of IDENTITY) {
    const value = wanted(name);
    if (current.has(name) && (again || value === undefined)) identityResets += `RESET ${quoteIdent(name)};`;
    if (value !== undefined && (again || current.get(name) !== value))
      identitySets.push(setConfigSql(name, value));
  }
  if (loginSuperuser) return identityResets + resets + selectSql([...sets, ...identitySets]);
  // looked up here, past the early return, not by the caller: no Map lookup at a link with nothing to sync
  if (serverParams?.get("is_superuser") === "on")
    return resets + identityResets + selectSql([...sets, ...identitySets]);
  return identityResets + selectSql(identitySets) + resets + selectSql(sets);
}

function selectSql(calls: readonly string[]): string {
  return calls.length > 0 ? `SELECT ${calls.join(", ")};` : "";
}

function setConfigSql(name: string, value: string): string {
  return `pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`;
}

/** What a server's session settings are once settingsSyncSql(own, …, baseline) has run. */
export function syncedSettings(
  own: ReadonlyMap<string, string>,
  baseline: ReadonlyMap<string, string>,
): Map<string, string> {
  return new Map([...baseline, ...own]);
}

/**
 * The `options` startup parameter as PostgreSQL reads it (pg_split_opts + process_postgres_switches,
 * for the switches a client may send): whitespace-separated, a backslash takes the next character
 * literally; `-c name=value`, `-cname=value` or `--name=value`, dashes in names meaning underscores.
 * Throws on anything else.
 */
export function parseStartupOptions(options: string): [string, string][] {
  const args: string[] = [];
  let arg: string | null = null;
  for (let i = 0; i < options.length; i++) {
    const c = options[i]!;
    if (/\s/.test(c)) {
      if (arg !== null) args.push(arg);
      arg = null;
    } else {
      arg = (arg ?? "") + (c === "\\" && i + 1 < options.length ? options[++i]! : c);
    }
  }
  if (arg !== null) args.push(arg);
  const out: [string, string][] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    let setting: string | undefined;
    if (a === "-c") setting = args[++i];
    else if (a.startsWith("-c")) setting = a.slice(2);
    else if (a.startsWith("--")) setting = a.slice(2);
    else throw new Error(`unsupported option in "options": ${a} (only -c name=value and --name=value)`);
    const eq = setting?.indexOf("=") ?? -1;
    if (setting === undefined || eq <= 0)
      throw new Error(`-c option needs name=value, got ${setting ?? "nothing"}`);
    out.push([setting.slice(0, eq).replace(/-/g, "_"), setting.slice(eq + 1)]);
  }
  return out;
}
