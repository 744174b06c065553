// Protocol-level prepared statements in transaction and statement pooling, as PgBouncer 1.21+
// (max_prepared_statements): a client's named statements live on whichever server it gets next.
//
// - Each distinct statement (query text + parameter types, the Parse bytes after the name, and the
//   client's own search_path) gets a pooler-wide name, POOLER_<n>, upper case so that an unquoted SQL-level PREPARE (folded to lower
//   case) can never collide with it. A client's names map to these (ClientStatements).
// - Each server keeps an LRU of what is prepared on it (ServerStatements), at most
//   max_prepared_statements; the least recently used is closed to make room.
// - The client's Parse/Bind/Describe/Close are rewritten to the pooler's names. A statement the
//   server lacks is prepared there first by an injected Parse whose ParseComplete is swallowed; a
//   Parse the server already has, and a Close with nothing unanswered before it, are answered by
//   the pooler (the server keeps it for other clients); the ReplyQueue puts those replies in order.
// - Failures look like PostgreSQL's own: a client name it does not know is sent under a name no
//   server has, so PostgreSQL raises 26000 and aborts the transaction exactly as it would, and its
//   message is given back the client's name; a second Parse of a name is let fail on the
//   statement's own name (42P05). A failed or skipped Parse leaves no mapping behind.
// - What the pooler cannot route without knowing whether PostgreSQL skipped an earlier message (a
//   name's Close, behind a Sync, with nothing on the server to stand for the name) is not guessed:
//   the client's input waits, unread, until the server has answered (mustWait).
import crypto from "node:crypto";
import type { SessionEffect } from "./session-state.ts";
import { classifySql } from "./streamed-query.ts";
import {
  Msg,
  close,
  closeComplete,
  errorResponseFrom,
  parseComplete,
  parseErrorFields,
  statementNameSpan,
  target,
  withStatementName,
} from "./protocol/messages.ts";
import { Expect, type ExpectKind, type ReplyQueue, type Special } from "./replies.ts";
import type { Counters } from "./stats.ts";

/** A statement in the pooler's registry, shared by every client that prepared the same text and types. */
export class Statement {
  readonly nameBytes: Buffer;
  /** The Parse a server gets, under the pooler's name. */
  readonly parse: Buffer;
  readonly close: Buffer;
  /** Session state its execution (from a Bind) may touch (a prepared `SELECT pg_advisory_lock($1)`). */
  readonly effect: SessionEffect;
  /** The same for a Parse or Describe of it, which do not run it: a prepared DEALLOCATE ALL drops nothing yet. */
  readonly unrunEffect: SessionEffect;
  /** Client mappings and server LRUs holding it; at 0 it leaves the registry. */
  refs = 0;

  constructor(
    readonly key: string,
    readonly name: string,
    clientParse: Buffer,
    span: { start: number; end: number },
  ) {
    this.nameBytes = Buffer.from(name, "utf8");
    this.parse = withStatementName(clientParse, span, this.nameBytes);
    this.close = close("S", name);
    const sqlEnd = clientParse.indexOf(0, span.end + 1);
    this.effect = classifySql(clientParse, span.end + 1, sqlEnd);
    this.unrunEffect = this.effect.dropsStatements ? { ...this.effect, dropsStatements: false } : this.effect;
  }
}

/** Longest statement whose bytes are its registry key as they are; a longer one is keyed by its digest. */
const LITERAL_KEY_LIMIT = 4096;

/**
 * Query, NUL, parameter type OIDs: the exact bytes, or for a long text its digest (not held a second
 * time as its key; a digest key has no NUL, so it never equals an exact one); then the client's
 * search_path, if it has one of its own. PostgreSQL analyses a Parse under the session's
 * search_path and refuses to run it later under one that changes its result columns ("cached plan
 * must not change result type"): one text shared by clients of different schemas would fail.
 * A search_path that may have changed since it was last read (null) is unknown: the key is
 * `unique`, the statement no one else's.
 */
function statementKey(text: Buffer, searchPath: string | null | undefined, unique: number): string {
  const key =
    text.length <= LITERAL_KEY_LIMIT
      ? text.toString("latin1")
      : `sha256:${text.length}:${crypto.createHash("sha256").update(text).digest("base64")}`;
  // after the fixed-length OIDs (or the digest): no other key ends in this
  if (searchPath === null) return `${key}\0unsettled=${unique}`;
  return searchPath === undefined ? key : `${key}\0search_path=${searchPath}`;
}

export class StatementRegistry {
  private readonly byKey = new Map<string, Statement>();
  private next = 1;

  get size(): number {
    return this.byKey.size;
  }

  /** The statement a client's Parse describes, new or shared; unreferenced until someone holds it. */
  intern(parse: Buffer, span: { start: number; end: number }, searchPath?: string | null): Statement {
    const key = statementKey(parse.subarray(span.end + 1), searchPath, this.next);
    let s = this.byKey.get(key);
    if (s === undefined) {
      s = new Statement(key, `POOLER_${this.next++}`, parse, span);
      this.byKey.set(key, s);
    }
    return s;
  }

  hold(s: Statement): void {
    // A statement dropped and taken back (an undone Close) returns unless its text has a newer entry.
    if (s.refs++ === 0 && !this.byKey.has(s.key)) this.byKey.set(s.key, s);
  }

  drop(s: Statement): void {
    if (--s.refs === 0 && this.byKey.get(s.key) === s) this.byKey.delete(s.key);
  }
}

/** One client's statement names. */
export class ClientStatements {
  private readonly byName = new Map<string, Statement>();
  /** How many times all its names were dropped (DEALLOCATE ALL): an undo from before acts on the names before (namesAt). */
  drops = 0;
  /** The drops counted from here on all failed (dropFailed): the names are what they were then. */
  private kept = 0;

  constructor(private readonly registry: StatementRegistry) {}

  get size(): number {
    return this.byName.size;
  }

  get(name: string): Statement | undefined {
    return this.byName.get(name);
  }

  set(name: string, s: Statement): void {
    const old = this.byName.get(name);
    this.registry.hold(s);
    this.byName.set(name, s);
    if (old !== undefined) this.registry.drop(old);
  }

  /** Removes `name` if it still means `s` (an undo must not remove a newer mapping). */
  delete(name: string, s: Statement): void {
    if (this.byName.get(name) !== s) return;
    this.byName.delete(name);
    this.registry.drop(s);
  }

  clear(): void {
    for (const s of this.byName.values()) this.registry.drop(s);
    this.byName.clear();
    this.kept = ++this.drops;
  }

  /** Whether the names are what they were after `drops` drops: every drop since failed. */
  unchangedSince(drops: number): boolean {
    return drops >= this.kept;
  }

  /** Its drop after `after` others failed: `saved`, the names before it, are put back. */
  dropFailed(saved: ClientStatements, after: number): void {
    this.restore(saved);
    if (this.kept === after + 1) this.kept = after;
  }

  /** A copy holding the same statements, for putting the names back (restore). */
  copy(): ClientStatements {
    const copy = new ClientStatements(this.registry);
    for (const [name, s] of this.byName) copy.set(name, s);
    return copy;
  }

  /** Puts back the names of `saved` that were not taken again since, and lets `saved` go. */
  restore(saved: ClientStatements): void {
    for (const [name, s] of saved.byName) if (!this.byName.has(name)) this.set(name, s);
    saved.clear();
  }
}

/**
 * A client's DEALLOCATE ALL or DISCARD ALL, not answered yet: its names are dropped for what
 * follows, but PostgreSQL drops them only if the statement runs (not in a failed transaction, not
 * DISCARD ALL in a transaction block, not behind an error in its Query or batch); what they were is
 * kept until the ReadyForQuery of its Query, or of the Sync ending its extended-protocol batch.
 */
class UnansweredDrop {
  /** The server's CommandComplete said it ran. */
  ran = false;
  /**
   * `syncs`: the Syncs sent before its batch; null for a Query, which nothing the client sends behind
   * shares. `after`: how many times the client's names were dropped before.
   */
  constructor(
    readonly saved: ClientStatements,
    readonly syncs: number | null,
    readonly after: number,
  ) {}
}

const DROP_TAGS = new Set(["DEALLOCATE ALL", "DISCARD ALL"]);

/**
 * What one server has prepared, least recently used first. "maybe" marks statements whose fate the
 * pooler cannot know (a client's DEALLOCATE ALL may or may not have run, an eviction Close was
 * skipped): using one means Close first, which PostgreSQL answers alike whether it existed or not.
 */
export class ServerStatements {
  private readonly lru = new Map<Statement, "yes" | "maybe">();
  /** The latest of the pooler's Parses of each statement still unanswered, if any. */
  private readonly parsing = new Map<Statement, Unanswered>();
  /** The latest of the pooler's eviction Closes of each statement still unanswered, if any. */
  private readonly evicting = new Map<Statement, Unanswered>();
  /** Client names whose Close is unanswered with nothing here standing for them (closeUnknown). */
  readonly closing = new Map<string, Unanswered>();
  /** The client's DEALLOCATE ALLs and DISCARD ALLs not answered yet, oldest first (dropNames). */
  readonly drops: UnansweredDrop[] = [];

  constructor(private readonly registry: StatementRegistry) {}

  get size(): number {
    return this.lru.size;
  }

  state(s: Statement): "yes" | "maybe" | "no" {
    return this.lru.get(s) ?? "no";
  }

  /**
   * The pooler's Parse of `s` is unanswered and a Sync was sent behind it (`syncs` Syncs so far):
   * an error before that Sync skips the Parse, not what is sent now, which cannot count on `s`.
   */
  unsettled(s: Statement, syncs: number): boolean {
    return this.parsing.size > 0 && (this.parsing.get(s)?.syncs ?? syncs) !== syncs;
  }

  /** The server has `s` whatever fails of what was sent to it so far. */
  settled(s: Statement): boolean {
    return this.lru.get(s) === "yes" && !this.parsing.has(s);
  }

  /** The pooler sends a Parse of `s` after `syncs` Syncs; until answered, it decides whether the server has `s`. */
  parseSent(s: Statement, syncs: number): Unanswered {
    const parse = new Unanswered(syncs);
    this.parsing.set(s, parse);
    return parse;
  }

  /** `parse` of `s` was answered (or skipped): whether it was the latest Parse of `s`, whose outcome counts. */
  parseAnswered(s: Statement, parse: Unanswered): boolean {
    if (this.parsing.get(s) !== parse) return false;
    this.parsing.delete(s);
    return true;
  }

  /**
   * Whether the server may have `s` for what is sent now: it is in the LRU, or its eviction Close
   * is unanswered with a Sync sent behind it (an error before that Sync skips the Close).
   */
  mayHave(s: Statement, syncs: number): boolean {
    return this.lru.has(s) || (this.evicting.size > 0 && (this.evicting.get(s)?.syncs ?? syncs) !== syncs);
  }

  /** The pooler sends a Close of `s` to evict it after `syncs` Syncs. */
  evictSent(s: Statement, syncs: number): Unanswered {
    const close = new Unanswered(syncs);
    this.evicting.set(s, close);
    return close;
  }

  /** `close` of `s` was answered (or skipped). */
  evictAnswered(s: Statement, close: Unanswered): void {
    if (this.evicting.get(s) === close) this.evicting.delete(s);
  }

  set(s: Statement, state: "yes" | "maybe" | "no"): void {
    const had = this.lru.has(s);
    if (state === "no") {
      if (had) {
        this.lru.delete(s);
        this.registry.drop(s);
      }
      return;
    }
    if (!had) this.registry.hold(s);
    this.lru.delete(s); // re-inserted: most recently used
    this.lru.set(s, state);
  }

  /**
   * The least recently used statement that may be closed: not one whose Parse for a client's name is
   * unanswered, as a second Parse of that name goes under its name (parseAgain) for PostgreSQL's
   * 42P05, which a Close between them would turn into a success.
   */
  evictable(): Statement | undefined {
    if (this.checks === null) return this.lru.keys().next().value;
    const needed = new Set<Buffer>();
    for (const alias of this.checks.aliases.values()) needed.add(alias.bytes);
    for (const s of this.lru.keys()) if (!needed.has(s.nameBytes)) return s;
    return undefined;
  }

  /** This server's parse checks whose statements are not closed yet (parseNew), if any. */
  checks: ParseChecks | null = null;
  private nextCheck = 1;

  /** A parse check's statement name, unique on this server until it is closed. */
  checkName(): string {
    return `${PARSE_CHECK}_${this.nextCheck++}`;
  }

  /**
   * The client gave the server back, all answered: its checks are due for settling by the next to
   * route here, itself too (its names may have changed on other servers since; the checks' aliases,
   * still consulted behind a reply it is owed then, would route them as they were).
   */
  released(): void {
    if (this.checks !== null) this.checks.owner = null;
  }

  /** `owner`'s names were all dropped (DEALLOCATE ALL): its Parses still unanswered no longer decide them. */
  namesDropped(owner: ClientStatements): void {
    if (this.checks?.owner !== owner) return;
    for (const alias of this.checks.aliases.values()) alias.closed = true;
  }

  /** Whether a client's DEALLOCATE ALL or DISCARD ALL is unanswered: whether its names exist is not known yet. */
  get dropsUnanswered(): boolean {
    return this.drops.length > 0;
  }

  /** Whether what is sent now, after `syncs` Syncs, comes behind an unanswered drop's Query or batch. */
  behindDrop(syncs: number): boolean {
    return this.drops.some((d) => d.syncs !== syncs);
  }

  /** The server completed a statement of the client's Query (`tag`): a DEALLOCATE ALL or DISCARD ALL ran. */
  commandCompleted(tag: string): void {
    if (!DROP_TAGS.has(tag)) return;
    const drop = this.drops.find((d) => !d.ran);
    if (drop === undefined) return;
    drop.ran = true;
    drop.saved.clear();
  }

  /**
   * The client's names as they were when it had dropped them `drops` times, for an undo of what it
   * sent then: the client's own, or the copy an unanswered DEALLOCATE ALL or DISCARD ALL sent since
   * keeps for its failure; undefined once one sent since ran (the names are gone).
   */
  namesAt(client: ClientStatements, drops: number): ClientStatements | undefined {
    if (client.unchangedSince(drops)) return client;
    const drop = this.drops.find((d) => d.after === drops);
    return drop === undefined || drop.ran ? undefined : drop.saved;
  }

  markAllUncertain(): void {
    for (const s of this.lru.keys()) this.lru.set(s, "maybe");
  }

  clear(): void {
    for (const s of this.lru.keys()) this.registry.drop(s);
    this.lru.clear();
    this.parsing.clear();
    this.evicting.clear();
    this.closing.clear();
    for (const drop of this.drops) drop.saved.clear();
    this.drops.length = 0;
    // the checks' statements went too (the pool's DISCARD ALL, or the server is gone)
    this.checks = null;
  }
}

/** One of the pooler's Parses or Closes of a statement, sent after `syncs` Syncs and not answered yet. */
class Unanswered {
  constructor(readonly syncs: number) {}
}

/** A name no server has: what the client names without having prepared it is sent as this. */
const NO_SUCH_STATEMENT = "POOLER_no_such_statement";
const NO_SUCH_BYTES = Buffer.from(NO_SUCH_STATEMENT, "utf8");

/** The prefix of the throwaway names of Parses sent only for PostgreSQL's verdict on them (parseNew). */
const PARSE_CHECK = "POOLER_parse_check";

/**
 * One client's parse checks on its server: the client names they stand in for and the statements
 * to close. Until every reply to what was sent behind a check is in, a Bind or Describe of its name
 * goes to the check's statement, which exists only if the Parse succeeded: one behind a failed or
 * skipped Parse (after a Sync, in the same write) gets 26000 there, as from PostgreSQL directly,
 * instead of running the statement the server keeps for everyone (a skipped ROLLBACK would run).
 */
class ParseChecks {
  readonly aliases = new Map<string, Alias>();
  readonly names: string[] = [];
  /** The client whose link to the server they belong to; null once it gave the server back. */
  constructor(public owner: ClientStatements | null) {}

  /** Takes `name` off the statements to close at settling: whether it was there. */
  unclose(name: string): boolean {
    let found = false;
    for (let i = this.names.length - 1; i >= 0; i--)
      if (this.names[i] === name) {
        this.names.splice(i, 1);
        found = true;
      }
    return found;
  }
}

/**
 * A client name's Parses still unanswered, all sent under one server name (`bytes`): a check's, or
 * the shared statement's its first Parse prepared. PostgreSQL lets only the first of them to
 * succeed have the name (the others get 42P05), so once they are answered the client's name means
 * that one's statement, or nothing if all failed, whatever was assumed when each was routed.
 */
class Alias {
  /** The statement of the chain's Parse that succeeded, once it has (the one `closing` closes, until that is done). */
  holder: Statement | undefined;
  /** A Close of the client's name (or DEALLOCATE ALL) came behind the Parses: their outcomes no longer decide its meaning. */
  closed = false;
  /**
   * `closing`: the chain starts with an unanswered Close of the name under this statement's own
   * name (closeBehind), not with a Parse.
   */
  constructor(
    readonly bytes: Buffer,
    readonly closing?: Statement,
  ) {
    this.holder = closing;
  }

  /** Whether the Parses' outcomes still decide what the client's name means. */
  decides(name: string, r: StatementRoute): boolean {
    return !this.closed && r.server.checks?.aliases.get(name) === this;
  }

  /** A Parse of the chain succeeded (`s`) or failed or was skipped (undefined): the name follows. */
  answered(name: string, s: Statement | undefined, r: StatementRoute): void {
    if (s !== undefined) this.holder ??= s;
    if (!this.decides(name, r)) return;
    const meant = this.holder;
    if (meant !== undefined) return r.client.set(name, meant);
    const now = r.client.get(name);
    if (now !== undefined) r.client.delete(name, now);
  }
}

/** What routing one client message needs: the client's names, the server's, and both directions. */
export interface StatementRoute {
  registry: StatementRegistry;
  /** The pool's SHOW STATS counters of client Parses, server Parses and Binds. */
  stats: Pick<Counters, "clientParseCount" | "serverParseCount" | "bindCount">;
  client: ClientStatements;
  server: ServerStatements;
  replies: ReplyQueue;
  /** max_prepared_statements */
  capacity: number;
  /**
   * The client's own search_path (SET in an earlier transaction, or at startup), if any; null when
   * its transaction may have changed it (a SET, not yet read back by the probe).
   */
  searchPath(): string | null | undefined;
  toServer(buf: Buffer): void;
  toClient(buf: Buffer): void;
  /** A statement the client refers to may touch session state when executed. */
  noteEffect(effect: SessionEffect): void;
  /**
   * The server's transaction may have failed by the time it reads what is sent now: it had at its
   * last ReadyForQuery, or a request sent before is still unanswered (its error may abort the
   * transaction). PostgreSQL refuses a Parse (25P02) until the transaction ends, except of the
   * statement that ends it.
   */
  mayBeInFailedTransaction(): boolean;
  /**
   * The message is the first other than COPY's that the client sent during a COPY FROM STDIN:
   * PostgreSQL fails the COPY on it (08P01) and never does it.
   */
  breaksCopy: boolean;
}

/**
 * Routes a named-statement Parse, Bind, Describe or Close (the unnamed statement and portals pass
 * through unchanged: they do not outlive the transaction, during which the server is the client's).
 * Whatever goes to the server under the pooler's name has PostgreSQL's errors put back in the
 * client's name.
 */
export function routeStatementMessage(type: number, msg: Buffer, r: StatementRoute): void {
  const kind = EXPECT_OF[type]!;
  // Skipped by PostgreSQL, it changes nothing: routed, the pooler's own messages for it would be
  // undone as they are sent (an eviction's Close, undone, left the server full: evicting again
  // without end). Reached by a message held for the server's answers (mustWait), or sent after a
  // Flush brought the error.
  if (r.replies.skipping) return passThrough(kind, msg, r);
  if (r.server.checks !== null) settleChecks(r);
  if ((type === Msg.Describe || type === Msg.Close) && target(msg) === "P") return passThrough(kind, msg, r);
  const span = statementNameSpan(type, msg);
  if (span.start === span.end) return passThrough(kind, msg, r);
  const name = msg.toString("utf8", span.start, span.end);
  if (type === Msg.Parse) r.stats.clientParseCount++;
  else if (type === Msg.Bind) r.stats.bindCount++;
  // It must reach the server, alone: answered by the pooler (a Parse it has) the COPY went on, the
  // client's Syncs ignored, a hang; behind an injected Parse that Parse would be consumed.
  if (r.breaksCopy) return passThrough(kind, withStatementName(msg, span, NO_SUCH_BYTES), r);
  const s = r.client.get(name);
  if (type === Msg.Close) {
    // the server keeps the statement for other clients; closing an unknown name is no error in PostgreSQL either
    if (s !== undefined) r.client.delete(name, s);
    // (one a Close before this one closed already stays closed should this one be skipped)
    const found = r.server.checks?.aliases.get(name);
    const alias = found?.closed === false ? found : undefined;
    if (alias !== undefined) alias.closed = true;
    const { drops } = r.client;
    const undo =
      s === undefined && alias === undefined
        ? undefined
        : (): void => {
            const at = routeAt(drops, r);
            if (at === undefined) return;
            if (alias !== undefined) {
              alias.closed = false;
              // the name's Parses came before: it means what the first of them to succeed prepared
              // (restored, a failed one's statement was prepared again for a Bind and failed there)
              const decides = alias.decides(name, at);
              if (decides) alias.answered(name, undefined, at);
              // (the client's names dropped since no longer follow its chain)
              alias.closed = r.client.drops !== drops;
              if (decides) return;
            }
            if (s === undefined || at.client.get(name) !== undefined) return;
            // a chain of Parses of the name sent behind it was skipped too: it no longer routes the name
            const later = r.server.checks?.aliases.get(name);
            if (later !== undefined && later !== found) r.server.checks!.aliases.delete(name);
            restore(name, s, at);
          };
    if (r.replies.length === 0) return r.replies.push(kind, { synthetic: closeComplete(), undo }, r.toClient);
    if (s !== undefined && found === undefined && r.server.settled(s)) return closeBehind(name, s, r);
    if (undo !== undefined) return closeUnknown(name, msg, span, undo, r);
    // Behind a request, which may start a COPY FROM STDIN: PostgreSQL must fail the COPY on it
    // (08P01), as directly; answered here, the COPY went on and the client's Sync was ignored.
    r.replies.push(kind, { undo });
    return r.toServer(withStatementName(msg, span, NO_SUCH_BYTES));
  }
  const check = r.server.checks?.aliases.get(name);
  if (s === undefined && check?.closing !== undefined && check.decides(name, r)) {
    // the name's Close is unanswered: the statement's own name exists exactly while the name does
    if (type === Msg.Parse) return parseAgain(name, msg, span, check, r);
    r.noteEffect(type === Msg.Bind ? check.closing.effect : check.closing.unrunEffect);
    r.replies.push(kind, { mapError: renameInError(check.closing.name, name) });
    return r.toServer(withStatementName(msg, span, check.bytes));
  }
  if (type === Msg.Parse && s === undefined) return parseNew(name, msg, span, r);
  if (s === undefined) {
    // Bind or Describe of a name the client never prepared: PostgreSQL's own 26000
    r.replies.push(kind, { mapError: renameInError(NO_SUCH_STATEMENT, name) });
    return r.toServer(withStatementName(msg, span, NO_SUCH_BYTES));
  }
  if (type === Msg.Parse && check !== undefined) return parseAgain(name, msg, span, check, r);
  // (an unanswered Parse of the name under the statement's own name: routed as usual, prepared
  // again if evicted, not if only unsettled, as the name exists exactly when the statement does)
  if (check !== undefined && check.bytes !== s.nameBytes) {
    r.noteEffect(type === Msg.Bind ? s.effect : s.unrunEffect);
    r.replies.push(kind, { mapError: renameInError(check.bytes.toString("utf8"), name) });
    return r.toServer(withStatementName(msg, span, check.bytes));
  }
  // Bind, Describe, or a second Parse of the name (PostgreSQL's own 42P05 about the statement)
  const rename = renameInError(s.name, name);
  r.noteEffect(type === Msg.Bind ? s.effect : s.unrunEffect);
  ensurePrepared(s, rename, r, check !== undefined);
  r.replies.push(kind, { mapError: rename });
  r.toServer(withStatementName(msg, span, s.nameBytes));
}

const EXPECT_OF: Partial<Record<number, ExpectKind>> = {
  [Msg.Parse]: Expect.Parse,
  [Msg.Bind]: Expect.Bind,
  [Msg.Describe]: Expect.Describe,
  [Msg.Close]: Expect.Close,
};

function passThrough(kind: ExpectKind, msg: Buffer, r: StatementRoute): void {
  r.replies.push(kind);
  r.toServer(msg);
}

/**
 * A Close of the client's name behind messages not answered yet, which PostgreSQL skips if one of
 * them fails: then the name still exists for what the client sends behind the next Sync (a Parse
 * of it gets 42P05, a Bind runs it). So the statement's own name stands for the client's until the
 * Close is answered: it is closed for real (the server may or may not have it afterwards), and the
 * name's Parses, Binds and Describes go there meanwhile (a Parse, for 42P05 or to take the freed
 * name, is then closed at settling). Only for a statement the server has whatever fails (settled):
 * one evicted or prepared again since the last Sync may be gone exactly when the Close is skipped.
 */
function closeBehind(name: string, s: Statement, r: StatementRoute): void {
  const alias = new Alias(s.nameBytes, s);
  (r.server.checks ??= new ParseChecks(r.client)).aliases.set(name, alias);
  r.server.set(s, "maybe");
  const { drops } = r.client;
  r.replies.push(Expect.Close, {
    done: () => (alias.holder = undefined),
    // a Close of the name sent since decides instead, unless a DEALLOCATE ALL sent since closed the
    // alias with every name (the name is back if that failed)
    undo: () => {
      const at = routeAt(drops, r);
      if (at !== undefined && (r.client.drops !== drops || alias.decides(name, r))) restore(name, s, at);
    },
  });
  r.toServer(s.close);
}

/**
 * A Close of the client's name behind messages not answered yet that closeBehind cannot stand in
 * for: the name's statement is not one the server has whatever fails (evicted, or prepared again,
 * since the last Sync; or never prepared on this server), or the name's own Parse is unanswered.
 * Should an error skip the Close, the name exists as before it, and nothing on the server can be
 * made to stand for it now: only what was sent before the error is there. So the Close goes to the
 * server as it is (under no server's name: it may break a COPY off, as directly), and what names
 * the name behind the next Sync waits, unread, until the Close is answered or skipped (mustWait):
 * then the pooler knows what the name means. (Routed at once, a Parse of it there took the name as
 * free where PostgreSQL answered 42P05, a Bind got 26000 where it ran the statement.)
 */
function closeUnknown(
  name: string,
  msg: Buffer,
  span: { start: number; end: number },
  undo: () => void,
  r: StatementRoute,
): void {
  const { server } = r;
  const close = new Unanswered(r.replies.syncs);
  server.closing.set(name, close);
  const answered = (): void => void (server.closing.get(name) === close && server.closing.delete(name));
  r.replies.push(Expect.Close, {
    done: answered,
    undo: () => {
      undo();
      answered();
    },
  });
  r.toServer(withStatementName(msg, span, NO_SUCH_BYTES));
}

/**
 * Whether a client's Parse, Bind, Describe or Close must wait, unread, for the server's answers:
 * it names a name whose Close (closeUnknown) is unanswered with a Sync sent behind it, so the name
 * exists exactly if an error skipped that Close, which the pooler cannot tell yet; or any name
 * behind a DEALLOCATE ALL or DISCARD ALL not answered yet (dropNames).
 */
export function mustWait(type: number, msg: Buffer, r: StatementRoute): boolean {
  const { closing } = r.server;
  if (
    (closing.size === 0 && !r.server.dropsUnanswered) ||
    ((type === Msg.Describe || type === Msg.Close) && target(msg) === "P")
  )
    return false;
  const span = statementNameSpan(type, msg);
  if (span.start === span.end) return false;
  if (r.server.behindDrop(r.replies.syncs)) return true;
  const close = closing.get(msg.toString("utf8", span.start, span.end));
  return close !== undefined && close.syncs !== r.replies.syncs;
}

/**
 * A client's DEALLOCATE ALL or DISCARD ALL goes to the server: its names are dropped now, for what
 * follows in the same Query or batch (which PostgreSQL skips if it fails), and put back at the
 * ReadyForQuery of the Query (`until` "query": the Query's reply entry, returned) or of the Sync
 * ending the batch ("sync"), unless the server's CommandComplete said it ran. Meanwhile what names
 * a statement behind them waits (mustWait), as whether the name exists is not known. ("now": a
 * streamed Query's, whose entry was queued before its text was read: dropped, as if it ran.)
 */
export function dropNames(r: StatementRoute, until: "query" | "sync" | "now"): Special | undefined {
  const { server, client } = r;
  let answered: (() => void) | undefined;
  if (until !== "now") {
    const drop = new UnansweredDrop(client.copy(), until === "query" ? null : r.replies.syncs, client.drops);
    server.drops.push(drop);
    answered = (): void => {
      const at = server.drops.indexOf(drop);
      if (at < 0) return; // the server's statements were cleared
      server.drops.splice(at, 1);
      if (drop.ran) return;
      // (into what a later one, not answered yet, keeps for its own failure; gone if that one ran)
      const names = server.namesAt(client, drop.after + 1);
      if (names === client) client.dropFailed(drop.saved, drop.after);
      else if (names === undefined) drop.saved.clear();
      else names.restore(drop.saved);
    };
  }
  client.clear();
  server.namesDropped(client);
  if (answered === undefined) return undefined;
  if (until === "query") return { done: answered, undo: answered };
  r.replies.atNextSync(answered);
  return undefined;
}

/**
 * The route an undo of what the client sent when it had dropped its names `drops` times acts on
 * (ServerStatements.namesAt); undefined when they were dropped since for good.
 */
function routeAt(drops: number, r: StatementRoute): StatementRoute | undefined {
  const names = r.server.namesAt(r.client, drops);
  if (names === r.client) return r;
  return names === undefined ? undefined : { ...r, client: names };
}

/** A Close the server skipped did not happen: the name is the client's again, unless it was reused since. */
function restore(name: string, s: Statement, r: StatementRoute): void {
  if (r.client.get(name) === undefined) r.client.set(name, s);
}

function parseNew(name: string, msg: Buffer, span: { start: number; end: number }, r: StatementRoute): void {
  const replaced = r.server.checks?.aliases.get(name);
  r.server.checks?.aliases.delete(name);
  const s = r.registry.intern(msg, span, r.searchPath());
  r.noteEffect(s.unrunEffect);
  r.client.set(name, s);
  const { drops } = r.client;
  const forget = (): void => r.server.namesAt(r.client, drops)?.delete(name, s);
  if (r.server.state(s) === "yes") {
    r.server.set(s, "yes");
    // In a failed transaction PostgreSQL refuses a Parse (25P02) unless its statement ends the
    // transaction (COMMIT, ROLLBACK…); behind a request not answered yet, it skips the Parse if
    // that fails, or reads it as COPY's 08P01: the same Parse under a throwaway name, closed at
    // once, gets PostgreSQL's own verdict without touching the statement the server keeps for
    // everyone. (Answered here, what is routed behind it would take the name as existing.)
    if (r.replies.length > 0 || r.mayBeInFailedTransaction())
      return parseCheck(name, s, msg, span, forget, replaced, r);
    r.replies.push(Expect.Parse, { synthetic: parseComplete(), undo: forget }, r.toClient);
    return;
  }
  // Where a COPY may be starting, the pooler's Close in front (of this statement if the server
  // may have it, of one evicted to make room) would be what breaks it off, and the client's Parse
  // would then be done: it goes alone, as a check.
  // Behind a message that may fail, a statement the server may have goes as a check too: should
  // the error skip the Close in front and the Parse, the statement (left by a DEALLOCATE ALL that
  // failed, an eviction skipped) would still be there under the name standing for the client's.
  const mayHave = r.server.mayHave(s, r.replies.syncs);
  const closesFirst = mayHave || r.server.size >= Math.max(1, r.capacity);
  if (r.replies.length > 0 && (mayHave || (closesFirst && r.replies.copyMayStart())))
    return parseCheck(name, s, msg, span, forget, replaced, r);
  // Until answered, the name exists exactly when the statement does here: a Parse of it again
  // behind a Sync goes under the statement's name (parseAgain).
  prepare(s, r, {
    ...unanswered(name, s, s.nameBytes, forget, replaced, r),
    mapError: renameInError(s.name, name),
  });
}

/**
 * Marks the client's name as standing for the server's statement `bytes` until its Parse (of `s`)
 * and those of the name sent behind it are answered; that Parse's undo and done. `replaced`: the
 * name's earlier chain, which decides again if this Parse is skipped (so is the Close of the name
 * before it, whose undo is next: the name then means what that chain left it).
 */
function unanswered(
  name: string,
  s: Statement,
  bytes: Buffer,
  forget: () => void,
  replaced: Alias | undefined,
  r: StatementRoute,
): Pick<Special, "undo" | "done"> {
  const alias = new Alias(bytes);
  (r.server.checks ??= new ParseChecks(r.client)).aliases.set(name, alias);
  return {
    undo: () => {
      if (!alias.decides(name, r)) return forget();
      alias.answered(name, undefined, r);
      if (replaced !== undefined) r.server.checks!.aliases.set(name, replaced);
    },
    done: () => alias.answered(name, s, r),
  };
}

function parseCheck(
  name: string,
  s: Statement,
  msg: Buffer,
  span: { start: number; end: number },
  forget: () => void,
  replaced: Alias | undefined,
  r: StatementRoute,
): void {
  const check = r.server.checkName();
  const bytes = Buffer.from(check, "utf8");
  const outcome = unanswered(name, s, bytes, forget, replaced, r);
  r.server.checks!.names.push(check);
  r.replies.push(Expect.Parse, { ...outcome, mapError: renameInError(check, name) });
  r.toServer(withStatementName(msg, span, bytes));
}

/**
 * A Parse of a name whose Parse (a check, or under the statement's own name) may still fail behind
 * a Sync (a ROLLBACK ending a failed transaction between them, a syntax error): the name exists
 * exactly when that Parse's statement does, so it is sent under the same name, for PostgreSQL's
 * 42P05 or, once that Parse failed, the statement the name then holds for the Binds behind it (a
 * shared statement's name is closed at settling, if it did). Once answered, the name means what
 * the first of them to succeed prepared (Alias).
 */
function parseAgain(
  name: string,
  msg: Buffer,
  span: { start: number; end: number },
  alias: Alias,
  r: StatementRoute,
): void {
  const checks = r.server.checks!;
  const checkName = alias.bytes.toString("utf8");
  const shared = !checkName.startsWith(PARSE_CHECK);
  if (shared) checks.names.push(checkName);
  const s = r.registry.intern(msg, span, r.searchPath());
  r.noteEffect(s.unrunEffect);
  r.client.set(name, s);
  const undo = (): void => {
    // (gone if the statement was prepared again since, its Close in front taking the name's place: prepare)
    const at = shared ? checks.names.lastIndexOf(checkName) : -1;
    if (at >= 0) checks.names.splice(at, 1);
    alias.answered(name, undefined, r);
  };
  const done = (): void => alias.answered(name, s, r);
  r.replies.push(Expect.Parse, { undo, done, mapError: renameInError(checkName, name) });
  r.toServer(withStatementName(msg, span, alias.bytes));
}

/**
 * A simple Query is about to go to the server: parse checks due for settling are closed in front of
 * it, or a server that serves only simple queries from now on would keep them.
 */
export function settleBeforeQuery(r: StatementRoute): void {
  if (r.server.checks !== null) settleChecks(r);
}

/**
 * Once everything sent behind them is answered (or another client has the server), the checks'
 * statements are closed and their names are routed to the shared statement again. A Close the
 * server skips is tried again later.
 */
function settleChecks(r: StatementRoute): void {
  const { server, client } = r;
  const checks = server.checks!;
  if (checks.owner === client && r.replies.length > 0) return;
  server.checks = null;
  for (const check of checks.names) {
    const retry = (): void => void (server.checks ??= new ParseChecks(client)).names.push(check);
    r.replies.push(Expect.Close, { swallow: true, undo: retry });
    r.toServer(close("S", check));
  }
}

/** Makes sure the server has `s` before a message that uses it; the injected messages' replies are swallowed. */
function ensurePrepared(
  s: Statement,
  rename: (error: Buffer) => Buffer,
  r: StatementRoute,
  followsParse: boolean,
): void {
  if (r.server.state(s) === "yes" && (followsParse || !r.server.unsettled(s, r.replies.syncs)))
    r.server.set(s, "yes");
  else prepare(s, r, { swallow: true, mapError: rename });
}

/**
 * Sends `s.parse` (after a Close if the server may have it, after evicting if the LRU is full).
 * If the server fails or skips it, the server is known not to have it — or, after a skipped
 * Close, may still have it.
 */
function prepare(s: Statement, r: StatementRoute, reply: Special): void {
  // A client's Parse sent under the statement's name (parseAgain) may hold it, to be closed at
  // settling: the Close in front does that now, as the settling's would close what is prepared here.
  const taken = r.server.checks?.unclose(s.name) ?? false;
  // "yes" here: its Parse is unsettled, the server may or may not have it
  const before = taken || r.server.mayHave(s, r.replies.syncs) ? "maybe" : "no";
  if (before === "maybe") {
    r.replies.push(Expect.Close, { swallow: true });
    r.toServer(s.close);
  } else {
    while (r.server.size >= Math.max(1, r.capacity)) {
      const victim = r.server.evictable();
      // every statement there still needed as it is: beyond the limit for a while
      if (victim === undefined) break;
      evict(victim, r);
    }
  }
  r.server.set(s, "yes");
  r.stats.serverParseCount++;
  const sent = r.server.parseSent(s, r.replies.syncs);
  r.replies.push(Expect.Parse, {
    ...reply,
    done: () => {
      r.server.parseAnswered(s, sent);
      reply.done?.();
    },
    undo: () => {
      // a Parse of it sent since (behind a Sync) decides instead
      if (r.server.parseAnswered(s, sent)) r.server.set(s, before);
      reply.undo?.();
    },
  });
  r.toServer(s.parse);
}

function evict(victim: Statement, r: StatementRoute): void {
  r.server.set(victim, "no");
  const sent = r.server.evictSent(victim, r.replies.syncs);
  r.replies.push(Expect.Close, {
    swallow: true,
    done: () => r.server.evictAnswered(victim, sent),
    undo: () => {
      r.server.evictAnswered(victim, sent);
      r.server.set(victim, "maybe");
    },
  });
  r.toServer(victim.close);
}

/** PostgreSQL's error about the pooler's name of a statement, in the client's name. */
function renameInError(from: string, to: string): (error: Buffer) => Buffer {
  return (error) => {
    const fields = parseErrorFields(error);
    const message = fields.get("M");
    // a function, not a replacement string: a client's name may hold `$&`, `$$`, …
    if (message !== undefined)
      fields.set(
        "M",
        message.replace(`"${from}"`, () => `"${to}"`),
      );
    return errorResponseFrom(fields);
  };
}
