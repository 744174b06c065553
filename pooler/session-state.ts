// What a client's SQL may leave on its server connection beyond the transaction, for transaction
// and statement pooling. Two halves:
//
// - A lexical classifier of the SQL clients send (simple Query text, Parse text). It is not a
//   parser: it only has to say (a) "this may have changed session state, look afterwards", which
//   may err on the side of yes, and (b) which unreplayable state a statement creates, for
//   PIN_SESSION_STATE=off, which must not refuse harmless SQL: comments and literals are skipped.
// - The probe: one query the pooler runs on the server at the end of a transaction in which the
//   classifier said yes. It asks PostgreSQL itself what the session now holds — settings changed
//   with SET (pg_settings.source = 'session'), and the state that cannot be replayed on another
//   server (session advisory locks, LISTEN, WITH HOLD cursors, temporary tables, SQL-level
//   PREPARE). Asking, rather than counting lock/unlock calls or tracking SET values, is exact
//   whatever happened in between: rolled-back SETs, pg_try_advisory_lock returning false,
//   unlocks of locks never taken, ON COMMIT DROP, RESET ALL, errors mid-transaction.
import { fromEscaped, rawText } from "./protocol/raw-text.ts";
import { quoteLiteral } from "./sql.ts";

/** Session state the pooler cannot recreate on another server: while it lives, the client keeps its server. */
export type HeldState =
  | "LISTEN"
  | "advisory lock"
  | "WITH HOLD cursor"
  | "temporary table"
  | "PREPARE"
  | "unnamed setting"
  | "pg_temp in search_path";

/** How the refusals of PIN_SESSION_STATE=off name each kind of state. */
export const HELD_STATE_NAMES: Record<HeldState, string> = {
  LISTEN: "LISTEN",
  "advisory lock": "a session-level advisory lock",
  "WITH HOLD cursor": "a WITH HOLD cursor",
  "temporary table": "a temporary table",
  PREPARE: "SQL-level PREPARE",
  "unnamed setting": "a setting whose name the pooler cannot read (set_config with a computed name)",
  "pg_temp in search_path": "a search_path that creates new objects in pg_temp",
};

export interface SessionEffect {
  /** May have changed session state (settings or held state): probe at the end of the transaction. */
  readonly touches: boolean;
  /** Unreplayable state the statement creates, if any. */
  readonly creates: HeldState | null;
  /** DEALLOCATE ALL or DISCARD ALL: every prepared statement of the session is gone. */
  readonly dropsStatements: boolean;
  /** RESET ALL or DISCARD ALL: every setting is back to the session's default. */
  readonly resetsSettings: boolean;
  /** Settings a RESET name names (lowercase): each back to the session's default. */
  readonly resets: readonly string[];
  /**
   * Settings touched that pg_settings does not list, so the probe must ask for them by name:
   * custom placeholders ("app.tenant"), role, session_authorization.
   */
  readonly hidden: readonly string[];
  /**
   * A setting may have been set whose name the classifier cannot read (set_config with a computed
   * name, a name past what was read): the probe cannot ask for it, so the client keeps its server.
   */
  readonly unnamedSetting: boolean;
  /**
   * SET LOCAL search_path: the session is as it was once the transaction ends (nothing to probe),
   * but until then a Parse is analysed under another search_path than the client's.
   */
  readonly setsSearchPathLocally: boolean;
}

export const NO_EFFECT: SessionEffect = Object.freeze({
  touches: false,
  creates: null,
  dropsStatements: false,
  resetsSettings: false,
  resets: Object.freeze([]),
  hidden: Object.freeze([]),
  unnamedSetting: false,
  setsSearchPathLocally: false,
});

const LOCAL_SEARCH_PATH: SessionEffect = Object.freeze({ ...NO_EFFECT, setsSearchPathLocally: true });

/**
 * The cheap test every Query and Parse goes through. It must match whenever the full classifier
 * could find something: a statement starting with one of these words or with a comment (first in
 * the text or after a `;`), these names anywhere, or a U&'…' / U&"…" that may spell one. What
 * matches is then classified properly; most SQL (SELECT/INSERT/UPDATE/DELETE) never gets past it.
 * No nested quantifier: a regex that can backtrack exponentially lets 129 bytes of comments stall
 * the pooler.
 */
const MAY_AFFECT =
  /(?:^|;)\s*(?:--|\/\*|(?:set|reset|listen|unlisten|declare|close|drop|prepare|deallocate|discard|do|call|explain)\b)|advisory|set_config|pg_settings|\btemp(?:orary)?\b|\bpg_temp|u&['"]|query_to_xml|ts_stat|ts_rewrite/i;

const LOCKS = new Set([
  "pg_advisory_lock",
  "pg_advisory_lock_shared",
  "pg_try_advisory_lock",
  "pg_try_advisory_lock_shared",
]);
const UNLOCKS = new Set(["pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all"]);
/**
 * Built-ins that run SQL given as text, which may be assembled at run time: what it does cannot be
 * read, so the client keeps its server.
 */
const RUNS_SQL_TEXT = new Set([
  "query_to_xml",
  "query_to_xmlschema",
  "query_to_xml_and_xmlschema",
  "ts_stat",
  "ts_rewrite",
]);

/**
 * Read both ways when the text has a backslash: with standard_conforming_strings off a backslash
 * escapes a quote in '…' too (PostgreSQL runs the SET in `SELECT 'x\''; SET …`, which the standard
 * rules read as one literal), and the pooler cannot know the session's setting at the moment a
 * message is read (a SET of it may be in the same packet).
 */
export function classify(sql: string): SessionEffect {
  if (!MAY_AFFECT.test(sql)) return NO_EFFECT;
  const c = new Classification().add(sql, false);
  if (sql.includes("\\")) c.add(sql, true);
  return c.result();
}

/**
 * What classify says of a text, for SQL that arrives in pieces (a Query too big to assemble,
 * streamed-query.ts): the effects of every piece together.
 */
export class Classification {
  private readonly found = new Found();

  /**
   * Whole statements, or the start of one, or a stretch of one from a token on; `backslashQuote`:
   * '…' read as with standard_conforming_strings off.
   */
  add(sql: string, backslashQuote: boolean): this {
    if (!MAY_AFFECT.test(sql)) return this;
    for (const statement of statements(tokenize(sql, backslashQuote))) this.found.statement(statement);
    return this;
  }

  /** A statement not read whole may have done anything: the probe must ask. */
  unread(): void {
    this.found.touch();
  }

  /** A setting whose name could not be read may have been set. */
  unnamed(): void {
    this.found.unnamed();
  }

  result(): SessionEffect {
    return this.found.result();
  }
}

// ---- the lexer: words (lowercased), quoted identifiers, string literals, single-char symbols ----

type Token = { kind: "word" | "ident" | "string" | "symbol"; text: string };

const isWordStart = (c: string): boolean => /[A-Za-z_\u0080-\uffff]/.test(c);
const isWordPart = (c: string): boolean => /[A-Za-z0-9_$\u0080-\uffff]/.test(c);

export function tokenize(sql: string, backslashQuote = false): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (isSpace(c)) {
      i++;
    } else if (c === "-" && sql[i + 1] === "-") {
      i = lineEnd(sql, i);
    } else if ((c === "U" || c === "u") && sql[i + 1] === "&" && (sql[i + 2] === "'" || sql[i + 2] === '"')) {
      i = unicodeEscaped(sql, i + 2, tokens);
    } else if (c === "/" && sql[i + 1] === "*") {
      i = skipBlockComment(sql, i);
    } else if (c === "'") {
      i = quoted(sql, i, "'", backslashQuote, "string", tokens);
    } else if (c === '"') {
      i = quoted(sql, i, '"', false, "ident", tokens);
    } else if ((c === "E" || c === "e") && sql[i + 1] === "'") {
      i = quoted(sql, i + 1, "'", true, "string", tokens);
    } else if (c === "$" && dollarTag(sql, i) !== null) {
      const tag = dollarTag(sql, i)!;
      const close = sql.indexOf(tag, i + tag.length);
      const end = close < 0 ? n : close;
      tokens.push({ kind: "string", text: sql.slice(i + tag.length, end) });
      i = close < 0 ? n : close + tag.length;
    } else if (isWordStart(c)) {
      let j = i + 1;
      while (j < n && isWordPart(sql[j]!)) j++;
      tokens.push({ kind: "word", text: sql.slice(i, j).toLowerCase() });
      i = j;
    } else {
      tokens.push({ kind: "symbol", text: c });
      i++;
    }
  }
  return tokens;
}

/** PostgreSQL's whitespace (scan.l): a no-break space and other Unicode spaces are identifier characters. */
const isSpace = (c: string): boolean =>
  c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v";

/** A `--` comment ends at a newline or a carriage return, as in PostgreSQL. Returns the position after it. */
function lineEnd(sql: string, start: number): number {
  for (let i = start; i < sql.length; i++) if (sql[i] === "\n" || sql[i] === "\r") return i + 1;
  return sql.length;
}

/**
 * U&'…' or U&"…" at `start` (its quote), with an optional UESCAPE 'c': the token's text with its
 * \XXXX and \+XXXXXX escapes decoded, so `U&"\0073et_config"` is the function it names.
 */
function unicodeEscaped(sql: string, start: number, out: Token[]): number {
  const q = sql[start]!;
  const raw: Token[] = [];
  let i = quoted(sql, start, q, false, q === "'" ? "string" : "ident", raw);
  let escape = "\\";
  // UESCAPE is the next token: comments may come before it and its literal
  const at = skipSpaceAndComments(sql, i);
  if (/^uescape/i.test(sql.slice(at, at + 7)) && !isWordPartAt(sql, at + 7)) {
    const lit = skipSpaceAndComments(sql, at + 7);
    if (sql[lit] === "'" && sql[lit + 2] === "'") {
      escape = sql[lit + 1]!;
      i = lit + 3;
    }
  }
  const token = raw[0]!;
  out.push({ kind: token.kind, text: decodeUnicodeEscapes(token.text, escape) });
  return i;
}

function skipSpaceAndComments(sql: string, start: number): number {
  let i = start;
  for (;;) {
    if (isSpace(sql[i] ?? "")) i++;
    else if (sql.startsWith("--", i)) i = lineEnd(sql, i);
    else if (sql.startsWith("/*", i)) i = skipBlockComment(sql, i);
    else return i;
  }
}

const isWordPartAt = (sql: string, i: number): boolean => i < sql.length && isWordPart(sql[i]!);

function decodeUnicodeEscapes(text: string, escape: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== escape) {
      out += c;
    } else if (text[i + 1] === escape) {
      out += escape;
      i++;
    } else {
      const long = text[i + 1] === "+";
      const hex = text.slice(i + (long ? 2 : 1), i + (long ? 8 : 5));
      const code = /^[0-9A-Fa-f]+$/.test(hex) ? parseInt(hex, 16) : NaN;
      // PostgreSQL refuses a bad escape: what the text then means does not matter
      out += Number.isNaN(code) || code > 0x10ffff ? "" : String.fromCodePoint(code);
      i += long ? 7 : 4;
    }
  }
  return out;
}

/** PostgreSQL's block comments nest. Returns the position after the comment. */
function skipBlockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.startsWith("/*", i)) {
      depth++;
      i += 2;
    } else if (sql.startsWith("*/", i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return i;
}

/** A '…' string (doubled quote escapes; backslash too in E'…') or a "…" identifier. */
function quoted(
  sql: string,
  start: number,
  q: string,
  backslash: boolean,
  kind: Token["kind"],
  out: Token[],
): number {
  // built from slices between escapes: a character at a time, a long literal is a long chain of strings
  let text = "";
  let from = start + 1;
  let i = from;
  while (i < sql.length) {
    const c = sql[i]!;
    if (backslash && c === "\\") {
      text += sql.slice(from, i) + (sql[i + 1] ?? "");
      i += 2;
      from = i;
    } else if (c === q && sql[i + 1] === q) {
      text += sql.slice(from, i + 1);
      i += 2;
      from = i;
    } else if (c === q) {
      break;
    } else if (!backslash) {
      const next = sql.indexOf(q, i);
      i = next < 0 ? sql.length : next;
    } else {
      i++;
    }
  }
  out.push({ kind, text: text + sql.slice(from, Math.min(i, sql.length)) });
  return i + 1;
}

/** "$tag$" or "$$" opening a dollar-quoted string at `i`, else null ($1 is a parameter). */
function dollarTag(sql: string, i: number): string | null {
  const m = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 64));
  return m ? m[0] : null;
}

function statements(tokens: Token[]): Token[][] {
  const out: Token[][] = [[]];
  for (const t of tokens) {
    if (t.kind === "symbol" && t.text === ";") out.push([]);
    else out[out.length - 1]!.push(t);
  }
  return out.filter((s) => s.length > 0);
}

// ---- what each statement does ----

/** More distinct hidden names than this in one piece of SQL: asked for one by one they would make a probe PostgreSQL cannot plan. */
const MAX_HIDDEN = 64;

class Found {
  private touches = false;
  private creates: HeldState | null = null;
  private dropsStatements = false;
  private resetsSettings = false;
  private unnamedSetting = false;
  private setsSearchPathLocally = false;
  // Sets: thousands of set_config calls in one bulk statement must not cost a scan each
  private readonly resets = new Set<string>();
  private readonly hidden = new Set<string>();

  result(): SessionEffect {
    if (!this.touches) return this.setsSearchPathLocally ? LOCAL_SEARCH_PATH : NO_EFFECT;
    return {
      touches: true,
      creates: this.creates,
      dropsStatements: this.dropsStatements,
      resetsSettings: this.resetsSettings,
      resets: [...this.resets],
      hidden: [...this.hidden],
      unnamedSetting: this.unnamedSetting,
      setsSearchPathLocally: this.setsSearchPathLocally,
    };
  }

  touch(setting?: string): void {
    this.touches = true;
    if (setting === undefined || !isHidden(setting) || this.hidden.has(setting)) return;
    if (this.hidden.size < MAX_HIDDEN) this.hidden.add(setting);
    else this.unnamed();
  }

  unnamed(): void {
    this.unnamedSetting = true;
    this.create("unnamed setting");
  }

  private create(state: HeldState): void {
    this.touch();
    this.creates ??= state;
  }

  statement(tokens: Token[]): void {
    // EXPLAIN ANALYZE runs its statement: EXPLAIN [ANALYZE] [VERBOSE] [(options)] statement, as often
    // as it is written (a loop: one call, or one copy of the tokens, per EXPLAIN would be quadratic)
    let start = 0;
    while (tokens[start]?.kind === "word" && tokens[start]!.text === "explain") {
      start++;
      while (["analyze", "analyse", "verbose"].includes(wordAt(tokens, start))) start++;
      if (tokens[start]?.kind === "symbol" && tokens[start]!.text === "(") {
        while (start < tokens.length && !(tokens[start]!.kind === "symbol" && tokens[start]!.text === ")"))
          start++;
        start++;
      }
    }
    const t = start === 0 ? tokens : tokens.slice(start);
    const w = (i: number): string => wordAt(t, i);
    switch (w(0)) {
      case "set":
        this.set(t, w);
        break;
      case "reset":
        if (w(1) === "all") {
          this.resetsSettings = true;
          this.touch();
        } else if (w(1) === "session" && w(2) === "authorization") this.touch("session_authorization");
        else {
          const name = settingName(t, 1);
          if (name !== undefined) this.resets.add(name);
          this.touch(name);
        }
        break;
      case "listen":
        this.create("LISTEN");
        break;
      case "declare":
        if (hasSequence(t, ["with", "hold"], "for")) this.create("WITH HOLD cursor");
        break;
      // (a plain CREATE TABLE makes a temporary one when pg_temp comes first in search_path: such a
      // session is pinned as a whole, readProbe)
      case "create":
        // CREATE [OR REPLACE] [GLOBAL|LOCAL] TEMP|TEMPORARY [UNLOGGED] TABLE|VIEW|SEQUENCE …, or
        // CREATE TABLE|VIEW|FUNCTION|… pg_temp.name …
        if ([1, 2, 3, 4].some((i) => w(i) === "temp" || w(i) === "temporary") || createsInPgTemp(t)) {
          if (hasSequence(t, ["on", "commit", "drop"])) this.touch();
          else this.create("temporary table");
        }
        break;
      case "select":
      case "with": {
        // SELECT … INTO [LOCAL|GLOBAL] TEMP|TEMPORARY t
        const into = t.findIndex((tok) => tok.kind === "word" && tok.text === "into");
        const next = ["local", "global"].includes(w(into + 1)) ? w(into + 2) : w(into + 1);
        if ((into >= 0 && (next === "temp" || next === "temporary")) || createsInPgTemp(t))
          this.create("temporary table");
        break;
      }
      case "prepare":
        if (w(1) !== "transaction") this.create("PREPARE");
        break;
      case "deallocate":
        this.touch();
        if (w(1) === "all" || (w(1) === "prepare" && w(2) === "all")) this.dropsStatements = true;
        break;
      case "discard":
        this.touch();
        if (w(1) === "all") {
          this.dropsStatements = true;
          this.resetsSettings = true;
        }
        break;
      case "update":
        // UPDATE pg_settings SET setting = … is set_config() by another name
        if (t.some((tok) => (tok.kind === "word" || tok.kind === "ident") && tok.text === "pg_settings"))
          this.touch();
        break;
      // DO and CALL: procedural code can do anything the pooler cannot see
      case "unlisten":
      case "close":
      case "drop":
      case "do":
      case "call":
        this.touch();
        break;
    }
    this.functionCalls(t, w(0) === "prepare");
  }

  /** SET [SESSION] name {TO|=} …; SET LOCAL and the transaction-scoped forms change nothing after the transaction. */
  private set(t: Token[], w: (i: number) => string): void {
    // LOCAL, SESSION, TRANSACTION are also a custom placeholder's first part: SET local.x = 1
    const keyword = (i: number, word: string): boolean => w(i) === word && t[i + 1]?.text !== ".";
    let i = 1;
    if (keyword(1, "local")) {
      // SET LOCAL SCHEMA 'x' is PostgreSQL's other spelling of SET LOCAL search_path = 'x'
      const name = settingName(t, 2);
      if (name !== "search_path" && name !== "schema") return;
      this.setsSearchPathLocally = true;
      // with pg_temp first, a plain CREATE TABLE until the transaction ends makes a temporary one,
      // which outlives the SET: the probe must look
      if (t.some((tok) => /pg_temp/i.test(tok.text))) this.touch();
      return;
    }
    if (keyword(1, "session")) {
      if (w(2) === "authorization") return this.touch("session_authorization");
      if (w(2) === "characteristics") return this.touch();
      i = 2;
    }
    if (keyword(i, "transaction") || keyword(i, "constraints")) return;
    const name = settingName(t, i);
    if (name === undefined) this.unnamed();
    else this.touch(name);
  }

  /**
   * Calls by name, as a word or a "quoted" identifier (which must then be spelt in lower case).
   * `later`: a PREPARE's statement, run at each EXECUTE, which the pooler does not look at.
   */
  private functionCalls(t: Token[], later: boolean): void {
    for (let i = 0; i + 1 < t.length; i++) {
      const tok = t[i]!;
      if (
        (tok.kind !== "word" && tok.kind !== "ident") ||
        t[i + 1]!.text !== "(" ||
        t[i + 1]!.kind !== "symbol"
      )
        continue;
      if (LOCKS.has(tok.text)) this.create("advisory lock");
      else if (UNLOCKS.has(tok.text)) this.touch();
      else if (RUNS_SQL_TEXT.has(tok.text)) this.unnamed();
      else if (tok.text === "set_config") {
        // only a plain literal is a name the probe can ask for: ('x'), 'a' || 'b', $1 are not; nor
        // one set at an EXECUTE, after which the probe would ask for it only by chance
        const arg = t[i + 2];
        const after = t[i + 3];
        if (!later && arg?.kind === "string" && after?.kind === "symbol" && after.text === ",")
          this.touch(arg.text.toLowerCase());
        else this.unnamed();
      }
    }
    // a set_config the tokens end after (a statement's head cut short): its name was not read
    const last = t[t.length - 1];
    if (last !== undefined && last.kind !== "string" && last.text === "set_config") this.unnamed();
  }
}

function wordAt(t: Token[], i: number): string {
  return t[i]?.kind === "word" ? t[i]!.text : "";
}

/** A setting name at token `i`: word or "identifier", possibly dotted (a custom placeholder). */
function settingName(t: Token[], i: number): string | undefined {
  const part = (tok: Token | undefined): string | undefined =>
    tok?.kind === "word" || tok?.kind === "ident" ? tok.text.toLowerCase() : undefined;
  let name = part(t[i]);
  if (name === undefined) return undefined;
  while (t[i + 1]?.text === "." && part(t[i + 2]) !== undefined) {
    name += `.${part(t[i + 2])!}`;
    i += 2;
  }
  return name;
}

/** Settings the probe must ask for by name: pg_settings does not show them. */
export function isHidden(name: string): boolean {
  return name.includes(".") || name === "role" || name === "session_authorization";
}

/** The words a created object's name follows: TABLE, VIEW, SEQUENCE, FUNCTION, …, IF NOT EXISTS, INTO. */
const BEFORE_NEW_NAME = new Set([
  "table",
  "view",
  "sequence",
  "function",
  "procedure",
  "type",
  "domain",
  "aggregate",
  "operator",
  "collation",
  "conversion",
  // TEXT SEARCH CONFIGURATION, DICTIONARY, PARSER, TEMPLATE; OPERATOR CLASS, FAMILY
  "configuration",
  "dictionary",
  "parser",
  "template",
  "class",
  "family",
  "statistics",
  "exists",
  "into",
]);

/** A new object named in the session's temporary schema: `pg_temp.name` (or `pg_temp_3.name`). */
function createsInPgTemp(t: Token[]): boolean {
  return t.some(
    (tok, i) =>
      tok.kind !== "string" &&
      /^pg_temp(?:_\d+)?$/i.test(tok.text) &&
      t[i + 1]?.kind === "symbol" &&
      t[i + 1]!.text === "." &&
      t[i - 1]?.kind === "word" &&
      BEFORE_NEW_NAME.has(t[i - 1]!.text),
  );
}

/** Whether the words `seq` appear in a row, before the word `stop` if given. */
function hasSequence(t: Token[], seq: string[], stop?: string): boolean {
  for (let i = 0; i + seq.length <= t.length; i++) {
    if (stop !== undefined && t[i]!.kind === "word" && t[i]!.text === stop) return false;
    if (seq.every((s, k) => t[i + k]!.kind === "word" && t[i + k]!.text === s)) return true;
  }
  return false;
}

// ---- the probe ----

/**
 * Each kind of held state with a query listing its objects, one text identity each (so a server's
 * own, connect_query's, can be told from a client's): functions and operators schema-qualified, as
 * the client may have put a schema of its own, with an `=` of its own, before pg_catalog.
 */
const HELD_OBJECTS: [HeldState, string][] = [
  [
    "advisory lock",
    "SELECT pg_catalog.concat_ws(':', classid, objid, objsubid, mode) FROM pg_catalog.pg_locks " +
      "WHERE locktype OPERATOR(pg_catalog.=) 'advisory' AND pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()",
  ],
  ["LISTEN", "SELECT pg_catalog.pg_listening_channels()"],
  // A name alone would let a client's own, declared after it closed the server's under that name,
  // pass for the server's and reach the next client: with the time it was made (in microseconds,
  // printed the same whatever DateStyle, TimeZone or extra_float_digits), a name is one object.
  [
    "WITH HOLD cursor",
    `SELECT ${createdAs("name", "creation_time")} FROM pg_catalog.pg_cursors WHERE is_holdable`,
  ],
  ["temporary table", inTempSchema()],
  [
    "PREPARE",
    `SELECT ${createdAs("name", "prepare_time")} FROM pg_catalog.pg_prepared_statements WHERE from_sql`,
  ],
];

/**
 * Any object in the temporary schema, from each catalog of objects a schema holds (tables, views and
 * sequences are in pg_class; functions and aggregates in pg_proc), an oid tagged with its catalog.
 */
function inTempSchema(): string {
  return [
    ["c", "pg_class", "relnamespace"],
    ["p", "pg_proc", "pronamespace"],
    ["t", "pg_type", "typnamespace"],
    ["o", "pg_operator", "oprnamespace"],
    ["l", "pg_collation", "collnamespace"],
    ["v", "pg_conversion", "connamespace"],
    ["f", "pg_ts_config", "cfgnamespace"],
    ["d", "pg_ts_dict", "dictnamespace"],
    ["r", "pg_ts_parser", "prsnamespace"],
    ["m", "pg_ts_template", "tmplnamespace"],
    ["k", "pg_opclass", "opcnamespace"],
    ["y", "pg_opfamily", "opfnamespace"],
    ["s", "pg_statistic_ext", "stxnamespace"],
  ]
    .map(
      ([tag, catalog, schema]) =>
        `SELECT pg_catalog.concat('${tag}', oid) FROM pg_catalog.${catalog} WHERE ${schema} OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()`,
    )
    .join(" UNION ALL ");
}

function createdAs(name: string, time: string): string {
  return `pg_catalog.concat(pg_catalog.quote_ident(${name}), ' ', (pg_catalog.date_part('epoch', ${time}) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8)`;
}

/** The held objects of the kinds in `kinds`: rows (kind, identity). For a server's baseline (connect-query.ts). */
export function heldObjectsSql(kinds: ReadonlySet<HeldState>): string {
  return HELD_OBJECTS.filter(([state]) => kinds.has(state))
    .map(([state, objects]) => `SELECT ${quoteLiteral(state)}, held.id FROM (${objects}) AS held(id)`)
    .join(" UNION ALL ");
}

/**
 * The probe, run when the server is idle (outside a transaction, so transaction-level locks,
 * cursors and ON COMMIT DROP tables are already gone). Rows: (name, value) for each session
 * setting, (NULL, state) for each kind of held state, not counting the server's own objects
 * (`baseline`: what connect_query left).
 */
export function probeSql(hidden: Iterable<string>, baseline: ServerBaseline = NO_BASELINE): string {
  const parts = [
    `SELECT name, ${rawSetting("setting")} FROM pg_catalog.pg_settings WHERE source OPERATOR(pg_catalog.=) 'session' AND name OPERATOR(pg_catalog.<>) 'statement_timeout' AND name OPERATOR(pg_catalog.<>) 'lock_timeout'`,
  ];
  // role and session_authorization always: a DO block or a procedure may have changed them unseen
  for (const name of new Set(["role", "session_authorization", ...hidden]))
    parts.push(
      `SELECT ${quoteLiteral(name)}, ${rawSetting(`pg_catalog.current_setting(${quoteLiteral(name)}, true)`)}`,
    );
  for (const [state, objects] of HELD_OBJECTS) {
    const own = baseline.held.get(state);
    const others =
      own === undefined
        ? ""
        : ` WHERE NOT held.id OPERATOR(pg_catalog.=) ANY (ARRAY[${own.map(quoteLiteral).join(", ")}]::pg_catalog.text[])`;
    parts.push(
      `SELECT NULL, ${quoteLiteral(state)} WHERE EXISTS (SELECT FROM (${objects}) AS held(id)${others})`,
    );
  }
  return PROBE_UNTIMED + parts.join(" UNION ALL ") + PROBE_OWN_TIMEOUTS;
}

/**
 * A setting's bytes in the server's encoding, ASCII spelling the others (raw-text.ts fromEscaped):
 * read as text, they would come converted to the session's client_encoding, and a value the client
 * gave at startup may not even be valid there (PostgreSQL keeps those bytes unchecked); replayed,
 * it must be the same bytes, whatever client_encoding the server has by then.
 */
function rawSetting(text: string): string {
  return `pg_catalog.encode(pg_catalog.decode(pg_catalog.replace(${text}, E'\\\\', E'\\\\\\\\'), 'escape'), 'escape')`;
}

/**
 * The probe's catalog views take tens of milliseconds on a backend whose caches are cold (or wait
 * for a lock: a VACUUM FULL of pg_proc, say), and a client's short statement_timeout or
 * lock_timeout (its SET, its role's) would cancel them: the client lost its connection for a
 * setting only its own statements should feel. So they run with neither, by SET LOCAL in the query
 * string's implicit transaction (PostgreSQL arms the timeout again for each statement of a string,
 * and a SET reads no catalog): query_wait_timeout, which the client waits under meanwhile, bounds
 * the probe (server_connect_timeout where it is 0: janitor.ts). The two show as session settings
 * until the transaction ends, so they are read once it has, under the client's own values again:
 * BEGIN turns the implicit block into one that COMMIT ends without a warning, and the read needs
 * nothing the probe has not just brought into the caches. An error before it ends the implicit
 * transaction as any would.
 */
const PROBE_UNTIMED = "SET LOCAL statement_timeout TO 0; SET LOCAL lock_timeout TO 0; ";
const PROBE_OWN_TIMEOUTS =
  "; BEGIN; COMMIT; SELECT name, setting FROM pg_catalog.pg_settings WHERE source OPERATOR(pg_catalog.=) 'session' AND (name OPERATOR(pg_catalog.=) 'statement_timeout' OR name OPERATOR(pg_catalog.=) 'lock_timeout')";

/**
 * What connect_query left on a server (connect-query.ts): the state every client of that server
 * starts from, and comes back to after RESET, RESET ALL or DISCARD ALL (the link's settings sync
 * replays it, params.ts).
 */
export interface ServerBaseline {
  /** Session settings, lowercase name → value as pg_settings prints it (reported parameters excluded). */
  readonly settings: ReadonlyMap<string, string>;
  /** Unreplayable objects, by kind: the server's own, not a client's (the probe leaves them out). */
  readonly held: ReadonlyMap<HeldState, readonly string[]>;
}

export const NO_SETTINGS: ReadonlyMap<string, string> = new Map();

export const NO_BASELINE: ServerBaseline = { settings: NO_SETTINGS, held: new Map() };

export interface ProbeResult {
  /** Session settings, lowercase name → value as pg_settings / current_setting print it. */
  settings: Map<string, string>;
  held: HeldState[];
}

/**
 * Reads the probe's rows. Hidden settings at their fresh-session value are left out (RESET ROLE
 * gives "none", a reset placeholder ""), so they are not replayed for nothing.
 */
export function readProbe(
  rows: readonly (string | null)[][],
  sessionUser: string,
  baseline: ServerBaseline = NO_BASELINE,
): ProbeResult {
  const result = readRows(rows, sessionUser);
  const searchPath = result.settings.get("search_path");
  // connect_query's own search_path is the server's, every client's: not a client's doing
  if (searchPathCreatesInPgTemp(searchPath) && searchPath !== baseline.settings.get("search_path"))
    result.held.push("pg_temp in search_path");
  return result;
}

/**
 * pg_temp named first (after a "$user" that usually does not exist): a plain CREATE TABLE (or
 * SELECT … INTO) makes a temporary object, at any time.
 */
function searchPathCreatesInPgTemp(searchPath: string | undefined): boolean {
  const schemas = (searchPath ?? "").split(",").map((s) => s.trim().replace(/^"|"$/g, "").toLowerCase());
  const first = schemas.find((s) => s !== "$user");
  return first !== undefined && /^pg_temp(?:_\d+)?$/.test(first);
}

function readRows(rows: readonly (string | null)[][], sessionUser: string): ProbeResult {
  const settings = new Map<string, string>();
  const held: HeldState[] = [];
  for (const [name, value] of rows) {
    if (name === null || name === undefined) {
      held.push(value as HeldState);
    } else if (value !== null && value !== undefined) {
      const lower = name.toLowerCase();
      const raw = fromEscaped(value);
      if (isHidden(lower) && raw === freshValue(lower, sessionUser)) continue;
      settings.set(lower, raw);
    }
  }
  return { settings, held };
}

function freshValue(hidden: string, sessionUser: string): string {
  if (hidden === "role") return "none";
  // as the probe reads it: the name's bytes, raw where not ASCII
  if (hidden === "session_authorization") return rawText(Buffer.from(sessionUser, "utf8"));
  return "";
}

// ---- one client's session ----

/** A client's session as PostgreSQL would keep it on a server of its own, for transaction pooling. */
export class ClientSession {
  /** Session settings, lowercase name → value: replayed on each server the client gets. */
  settings: ReadonlyMap<string, string> = NO_SETTINGS;
  // The maps exist only once used: thousands of idle clients each holding empty ones add up.
  /** The settings given at startup: what RESET returns a setting to (PostgreSQL's source 'client'). */
  private startup: Map<string, string> | null = null;
  /** A statement since the last probe may have changed the session: probe at the end of the transaction. */
  touched = false;
  /** Hidden settings (isHidden) touched since the last probe. */
  private touchedHidden: Set<string> | null = null;
  /** A setting whose name the probe cannot ask for may be set: the client keeps its server until it leaves. */
  unnamedSetting = false;

  setAtStartup(name: string, value: string): void {
    (this.startup ??= new Map()).set(name, value);
    this.settings = new Map(this.startup);
  }

  note(effect: SessionEffect): void {
    if (!effect.touches) return;
    this.touched = true;
    if (effect.unnamedSetting) this.unnamedSetting = true;
    for (const name of effect.hidden) (this.touchedHidden ??= new Set()).add(name);
  }

  /** The probe on a server whose connect_query left `baseline`. */
  probeSql(baseline: ServerBaseline): string {
    const hidden = new Set(this.touchedHidden);
    for (const name of this.settings.keys()) if (isHidden(name)) hidden.add(name);
    for (const name of baseline.settings.keys()) if (isHidden(name)) hidden.add(name);
    return probeSql(hidden, baseline);
  }

  /**
   * Takes in what the probe found; returns the settings the server now carries. The client's own
   * are those, but for the values connect_query gave the server (`baseline`: every server of the
   * pool has them, and a RELOAD may change them), plus its startup values where RESET took the
   * server back to the server's defaults. `reported` settings are left to ParameterStatus tracking
   * (params.ts).
   */
  update(
    result: ProbeResult,
    reported: (name: string) => boolean,
    baseline: ReadonlyMap<string, string>,
  ): Map<string, string> {
    const server = new Map([...result.settings].filter(([name]) => !reported(name)));
    const settings = new Map([...server].filter(([name, value]) => baseline.get(name) !== value));
    for (const [name, value] of this.startup ?? []) if (!server.has(name)) settings.set(name, value);
    this.settings = settings.size > 0 ? settings : NO_SETTINGS;
    this.touched = false;
    this.touchedHidden = null;
    return server;
  }
}
