// The console's tiny grammar, PgBouncer's three regular expressions (admin.c):
//   COMMAND [argument] [;]        e.g. SHOW POOLS; PAUSE mydb; KILL_CLIENT 12
//   SET key = value | SET key TO value, the value a word or a 'quoted string'
// Case-insensitive; a word may be a "quoted identifier" ("" inside for a quote).

export type AdminStatement =
  | { kind: "empty" }
  /** `verb` lower-cased; `arg` as written (database names are case-sensitive), "" when absent. */
  | { kind: "command"; verb: string; arg: string }
  | { kind: "set"; key: string; value: string };

const WS0 = String.raw`[ \t\n\r]*`;
const WS1 = String.raw`[ \t\n\r]+`;
const WORD = String.raw`("(?:[^"]|"")+"|[0-9a-z_]+)`;
const STRING = String.raw`('(?:[^']|'')*')`;
/** Unquoted SET values: PgBouncer allows only [0-9a-z_]; we also take 0.5, -1, host:port and the like. */
const BARE_VALUE = String.raw`([^ \t\n\r;'"]+)`;
const END = String.raw`${WS0}(?:;${WS0})?$`;

const COMMAND_RE = new RegExp(`^${WS0}${WORD}(?:${WS1}${WORD})?${END}`, "i");
const SET_RE = new RegExp(
  `^${WS0}set${WS1}${WORD}${WS0}(?:=|to)${WS0}(?:${STRING}|${WORD}|${BARE_VALUE})${END}`,
  "i",
);
const EMPTY_RE = new RegExp(`^${WS0}(?:;${WS0})*$`);

function unquote(token: string, quote: string): string {
  if (!token.startsWith(quote)) return token;
  return token.slice(1, -1).replaceAll(quote + quote, quote);
}

/** Parses one console query; null when it fits none of the forms. */
export function parseAdminQuery(sql: string): AdminStatement | null {
  if (EMPTY_RE.test(sql)) return { kind: "empty" };
  const set = SET_RE.exec(sql);
  if (set) {
    const value = set[2] !== undefined ? unquote(set[2], "'") : unquote(set[3] ?? set[4] ?? "", '"');
    return { kind: "set", key: unquote(set[1]!, '"').toLowerCase(), value };
  }
  const cmd = COMMAND_RE.exec(sql);
  if (cmd)
    return { kind: "command", verb: unquote(cmd[1]!, '"').toLowerCase(), arg: unquote(cmd[2] ?? "", '"') };
  return null;
}
