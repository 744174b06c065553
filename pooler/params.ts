// The server parameters the pooler keeps per client (PgBouncer's varcache): what a client chose at
// startup or by SET, replayed on whichever server it gets next so no client sees another's values.
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

/** SET statements that make the server's tracked parameters equal the client's, or "". */
export function paramSyncSql(
  wanted: ReadonlyMap<string, string>,
  current: ReadonlyMap<string, string>,
): string {
  let sql = "";
  // forEach: runs once per client link, and for…of would make an entry array per parameter
  wanted.forEach((value, name) => {
    if (current.get(name) !== value) sql += `SET ${name} = ${quoteLiteral(value)};`;
  });
  return sql;
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

/** Applied last: a role switched to first could lack the privilege for the other settings. */
const IDENTITY = new Set(["role", "session_authorization"]);

/**
 * SQL that makes a server's session settings (`current`) equal to a client's (`wanted`), or "":
 * RESET for what only the server has, set_config for what differs.
 */
export function settingsSyncSql(
  wanted: ReadonlyMap<string, string>,
  current: ReadonlyMap<string, string>,
): string {
  let sql = "";
  for (const name of current.keys()) if (!wanted.has(name)) sql += `RESET ${quoteIdent(name)};`;
  const sets: string[] = [];
  const last: string[] = [];
  for (const [name, value] of wanted) {
    if (current.get(name) === value) continue;
    (IDENTITY.has(name) ? last : sets).push(
      `pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`,
    );
  }
  if (sets.length + last.length > 0) sql += `SELECT ${[...sets, ...last].join(", ")};`;
  return sql;
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
