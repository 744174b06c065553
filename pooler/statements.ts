// What is prepared where, for the pooler's statement routing (prepared.ts): the statements every
// client shares (StatementRegistry), each client's names for them (ClientStatements), each server's
// LRU of what it holds and what is on its way to it (ServerStatements), and the parse checks that
// stand for a client's name until PostgreSQL has said what became of its Parses (ParseChecks, Alias).
import crypto from "node:crypto";
import type { StatementRoute } from "./prepared.ts";
import type { SessionEffect } from "./session-state.ts";
import { classifySql } from "./streamed-query.ts";
import { close, withStatementName } from "./protocol/messages.ts";

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
export class UnansweredDrop {
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
  /**
   * The latest of the pooler's Closes of each name still unanswered, if any: a statement's eviction,
   * or a parse check's settling (a client's Parse sent under a statement's name may hold that name).
   */
  private readonly closes = new Map<string, Unanswered>();
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
   * Whether the server may have `s` for what is sent now: it is in the LRU, or a Close of its name
   * is unanswered with a Sync sent behind it (an error before that Sync skips the Close).
   */
  mayHave(s: Statement, syncs: number): boolean {
    return this.lru.has(s) || (this.closes.size > 0 && (this.closes.get(s.name)?.syncs ?? syncs) !== syncs);
  }

  /**
   * Whether the server may have `s` should an error skip what is sent now: it is in the LRU, or a
   * Close of its name is unanswered (one sent since the last Sync is skipped with it).
   */
  mayRemain(s: Statement): boolean {
    return this.lru.has(s) || this.closes.has(s.name);
  }

  /** The pooler sends a Close of the statement `name` after `syncs` Syncs. */
  closeSent(name: string, syncs: number): Unanswered {
    const close = new Unanswered(syncs);
    this.closes.set(name, close);
    return close;
  }

  /** `close` of `name` was answered (or skipped): whether it was the latest Close of `name`. */
  closeAnswered(name: string, close: Unanswered): boolean {
    if (this.closes.get(name) !== close) return false;
    this.closes.delete(name);
    return true;
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
    this.closes.clear();
    this.closing.clear();
    for (const drop of this.drops) drop.saved.clear();
    this.drops.length = 0;
    // the checks' statements went too (the pool's DISCARD ALL, or the server is gone)
    this.checks = null;
  }
}

/** One of the pooler's Parses or Closes of a statement, sent after `syncs` Syncs and not answered yet. */
export class Unanswered {
  constructor(readonly syncs: number) {}
}

/** The prefix of the throwaway names of Parses sent only for PostgreSQL's verdict on them (parseNew). */
export const PARSE_CHECK = "POOLER_parse_check";

/**
 * One client's parse checks on its server: the client names they stand in for and the statements
 * to close. Until every reply to what was sent behind a check is in, a Bind or Describe of its name
 * goes to the check's statement, which exists only if the Parse succeeded: one behind a failed or
 * skipped Parse (after a Sync, in the same write) gets 26000 there, as from PostgreSQL directly,
 * instead of running the statement the server keeps for everyone (a skipped ROLLBACK would run).
 */
export class ParseChecks {
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
export class Alias {
  /** The statement of the chain's Parse that succeeded, once it has (the one `closing` closes, until that is done). */
  holder: Statement | undefined;
  /** A Close of the client's name (or DEALLOCATE ALL) came behind the Parses: their outcomes no longer decide its meaning. */
  closed = false;
  /** The chain's latest message (its Close, a Parse) while unanswered: what the name waits for once `retaken`. */
  pending: Unanswered | undefined;
  /**
   * The statement named `bytes` was prepared again under that name (for another of its names): it
   * exists whatever becomes of the chain, so it no longer stands for the client's name.
   */
  retaken = false;
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
