// Protocol-level prepared statements in transaction and statement pooling, as PgBouncer 1.21+
// (max_prepared_statements): a client's named statements live on whichever server it gets next.
//
// - Each distinct statement (query text + parameter types, the Parse bytes after the name, and the
//   client's own search_path) gets a pooler-wide name, POOLER_<n>, upper case so that an unquoted SQL-level PREPARE (folded to lower
//   case) can never collide with it. A client's names map to these (ClientStatements, in statements.ts
//   with the rest of what is prepared where).
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
import type { SessionEffect } from "./session-state.ts";
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
import {
  Alias,
  PARSE_CHECK,
  ParseChecks,
  Unanswered,
  UnansweredDrop,
  type ClientStatements,
  type ServerStatements,
  type Statement,
  type StatementRegistry,
} from "./statements.ts";

/** A name no server has: what the client names without having prepared it is sent as this. */
const NO_SUCH_STATEMENT = "POOLER_no_such_statement";
const NO_SUCH_BYTES = Buffer.from(NO_SUCH_STATEMENT, "utf8");

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
  const found = r.server.checks?.aliases.get(name);
  // (retaken: the name is what the client's messages made it, as far as they ran: prepare)
  const check = found?.retaken === true ? undefined : found;
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
  const answered = pendingUntilAnswered(name, alias, r);
  r.replies.push(Expect.Close, {
    done: () => {
      alias.holder = undefined;
      answered();
    },
    // a Close of the name sent since decides instead, unless a DEALLOCATE ALL sent since closed the
    // alias with every name (the name is back if that failed)
    undo: () => {
      const at = routeAt(drops, r);
      if (at !== undefined && (r.client.drops !== drops || alias.decides(name, r))) restore(name, s, at);
      answered();
    },
  });
  r.toServer(s.close);
}

/**
 * Makes what is sent now the latest of the alias's chain; the returned function, called once it is
 * answered or skipped, ends the wait its retaking (prepare) may have begun for the name.
 */
function pendingUntilAnswered(name: string, alias: Alias, r: StatementRoute): () => void {
  const { server } = r;
  const sent = new Unanswered(r.replies.syncs);
  alias.pending = sent;
  return () => {
    if (alias.pending !== sent) return;
    alias.pending = undefined;
    if (server.closing.get(name) === sent) server.closing.delete(name);
  };
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
  // failed, an eviction skipped, in this batch too) would still be there under the name standing
  // for the client's.
  const closesFirst = r.server.mayHave(s, r.replies.syncs) || r.server.size >= Math.max(1, r.capacity);
  if (r.replies.length > 0 && (r.server.mayRemain(s) || (closesFirst && r.replies.copyMayStart())))
    return parseCheck(name, s, msg, span, forget, replaced, r);
  // Until answered, the name exists exactly when the statement does here: a Parse of it again
  // behind a Sync goes under the statement's name (parseAgain). (Retaken first: the name's own
  // chain, made next, is what this Parse starts.)
  retake(s, r);
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
  const answered = pendingUntilAnswered(name, alias, r);
  return {
    undo: () => {
      answered();
      if (!alias.decides(name, r)) return forget();
      alias.answered(name, undefined, r);
      if (replaced !== undefined) r.server.checks!.aliases.set(name, replaced);
    },
    done: () => {
      alias.answered(name, s, r);
      answered();
    },
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
  const answered = pendingUntilAnswered(name, alias, r);
  const undo = (): void => {
    // (gone if the statement was prepared again since, its Close in front taking the name's place: prepare)
    const at = shared ? checks.names.lastIndexOf(checkName) : -1;
    if (at >= 0) checks.names.splice(at, 1);
    alias.answered(name, undefined, r);
    answered();
  };
  const done = (): void => {
    alias.answered(name, s, r);
    answered();
  };
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
 * server skips is tried again later; until it is answered, a shared statement's name it closes may
 * still be taken behind the next Sync (mayHave): prepared again there, it is closed first.
 */
function settleChecks(r: StatementRoute): void {
  const { server, client } = r;
  const checks = server.checks!;
  if (checks.owner === client && r.replies.length > 0) return;
  server.checks = null;
  for (const check of checks.names)
    closeName(check, close("S", check), r, (latest) => {
      // (not if the name was closed again since: in front of its statement prepared again, prepare)
      if (latest) (server.checks ??= new ParseChecks(client)).names.push(check);
    });
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
  else {
    retake(s, r);
    prepare(s, r, { swallow: true, mapError: rename });
  }
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
  if (before === "maybe") closeName(s.name, s.close, r);
  else {
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

/**
 * `s` is about to be prepared again under its own name, which stands for a client name until the
 * chain sent under it is answered: the name's unanswered Close (closeBehind), or its own Parse of
 * `s` (parseNew), and the name's Parses behind them (parseAgain). Now the statement exists there
 * whatever became of them. Messages of the same batch route by the client's names (what they say
 * if the chain ran; if it was skipped, so are they); behind a Sync, one naming the name waits for
 * the chain's answers (mustWait), as after closeUnknown.
 */
function retake(s: Statement, r: StatementRoute): void {
  if (r.server.checks === null) return;
  for (const [name, alias] of r.server.checks.aliases) {
    if (alias.bytes !== s.nameBytes || alias.retaken) continue;
    alias.retaken = true;
    if (alias.pending !== undefined) r.server.closing.set(name, alias.pending);
  }
}

function evict(victim: Statement, r: StatementRoute): void {
  r.server.set(victim, "no");
  closeName(victim.name, victim.close, r, () => r.server.set(victim, "maybe"));
}

/**
 * Sends the pooler's Close of a statement name on the server (`close`), its reply swallowed. Until
 * it is answered, what goes behind a Sync cannot count on the name being free (mayHave). `skipped`
 * runs if the server skips it, told whether it was still the name's latest Close.
 */
function closeName(
  name: string,
  close: Buffer,
  r: StatementRoute,
  skipped?: (latest: boolean) => void,
): void {
  const { server } = r;
  const sent = server.closeSent(name, r.replies.syncs);
  r.replies.push(Expect.Close, {
    swallow: true,
    done: () => void server.closeAnswered(name, sent),
    undo: () => skipped?.(server.closeAnswered(name, sent)),
  });
  r.toServer(close);
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
