// The server parameters the pooler keeps per client (PgBouncer's varcache): what a client chose at
// startup or by SET, replayed on whichever server it gets next so no client sees another's values.

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

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** SET statements that make the server's tracked parameters equal the client's, or "". */
export function paramSyncSql(
  wanted: ReadonlyMap<string, string>,
  current: ReadonlyMap<string, string>,
): string {
  let sql = "";
  for (const [name, value] of wanted) {
    if (current.get(name) !== value) sql += `SET ${name} = ${quoteLiteral(value)};`;
  }
  return sql;
}
