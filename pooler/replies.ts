// The replies a server owes, in order: one entry per message sent to it that PostgreSQL answers
// (Parse, Bind, Describe, Execute, Close, Sync, Query, FunctionCall), as PgBouncer's per-server
// queue of outstanding requests. Most entries are plain "forward"; the pooler adds others when it
// rewrites the client's stream (prepared statements, refusals):
//
// - synthetic: the pooler answered the message itself (a ParseComplete for a statement the server
//   already has, a CloseComplete) — the reply goes to the client when the entry reaches the head
//   of the queue, i.e. after every reply to what the client sent before, never earlier;
// - swallow: the pooler injected the message (a Parse before a Bind, a Close to evict): its
//   completion is not the client's business (an error is: it explains why what follows fails);
// - mapError: the server's error is rewritten (PostgreSQL's own words about the pooler's name of
//   a statement, put back in the client's name; the refusal that replaces a substituted message).
//
// After an error in the extended protocol PostgreSQL skips every message until Sync, without a
// reply; the entries for those are dropped too, and the pooler's guesses about them undone (a
// statement it counted as prepared was not).
import { Msg } from "./protocol/messages.ts";

/** What a server message the pooler tracks is answered with. */
export const Expect = {
  Parse: 0,
  Bind: 1,
  Describe: 2,
  Execute: 3,
  Close: 4,
  Sync: 5,
  Query: 6,
  FunctionCall: 7,
} as const;
export type ExpectKind = (typeof Expect)[keyof typeof Expect];

export interface Special {
  synthetic?: Buffer;
  swallow?: boolean;
  mapError?: (error: Buffer) => Buffer;
  /** Called when the server does not do the message after all (it failed, or was skipped). */
  undo?: () => void;
  /** Called when the server's reply completes it. */
  done?: () => void;
}

type Emit = (buf: Buffer) => void;

/** COMPLETES[kind][type]: the reply of this type ends the entry of this kind. */
const COMPLETES: Uint8Array[] = (() => {
  const table = Array.from({ length: 8 }, () => new Uint8Array(256));
  const set = (kind: ExpectKind, ...types: number[]): void => types.forEach((t) => (table[kind]![t] = 1));
  set(Expect.Parse, Msg.ParseComplete);
  set(Expect.Bind, Msg.BindComplete);
  set(Expect.Describe, Msg.RowDescription, Msg.NoData); // after ParameterDescription for a statement
  set(Expect.Execute, Msg.CommandComplete, Msg.EmptyQueryResponse, Msg.PortalSuspended);
  set(Expect.Close, Msg.CloseComplete);
  set(Expect.Sync, Msg.ReadyForQuery);
  set(Expect.Query, Msg.ReadyForQuery);
  set(Expect.FunctionCall, Msg.ReadyForQuery);
  return table;
})();

/** Entries whose storage an emptied queue keeps (far more than any ordinary pipeline needs). */
const KEPT_ENTRIES = 4096;

/** Messages whose error starts PostgreSQL's skip-until-Sync (doing_extended_query_message). */
const isExtended = (kind: ExpectKind): boolean => kind <= Expect.Close;

/** The client's requests: a COPY they start is not ended yet. */
const isRequest = (kind: ExpectKind): boolean =>
  kind === Expect.Execute || kind === Expect.Query || kind === Expect.FunctionCall;

/** Messages answered with a ReadyForQuery of their own, which PostgreSQL skips after such an error. */
const owesReady = (kind: ExpectKind): boolean => kind === Expect.Query || kind === Expect.FunctionCall;

export class ReplyQueue {
  // Parallel arrays with a moving head and tail: the queue empties at every ReadyForQuery, so they
  // stay tiny, and they are not truncated (V8 would drop their storage and grow it again for the
  // next query) unless a huge pipeline grew them: the plain forward entries of the hot path
  // allocate nothing.
  private kinds: ExpectKind[] = [];
  private specials: (Special | undefined)[] = [];
  /**
   * COPYs the client ended (CopyDone, CopyFail) between its request before this message and this
   * message, less those a COPY of that request started since took (copyFate).
   */
  private afterCopyEnd: number[] = [];
  /**
   * CopyDone and CopyFail messages the client sent since its latest request (Query, FunctionCall,
   * Execute): each ends one COPY it starts, and a Query of several statements may start several.
   */
  private copyEnds = 0;
  private head = 0;
  private tail = 0;
  /** Entries with a synthetic reply or swallowed replies: while there are any, every reply is looked at. */
  private specialCount = 0;
  /** Entries whose error is rewritten: while there are any, errors are looked at. */
  private mapErrorCount = 0;
  /** The server failed an extended-protocol message and no Sync has been sent since. */
  private skippingUntilSync = false;
  /** Syncs sent to the server so far: a message sent at an older count is not skipped with what is sent now. */
  syncs = 0;
  /** Called once the next Sync is answered (or ignored by a COPY): what waits for its batch's outcome. */
  private syncAnswered: (() => void)[] = [];

  /**
   * `skipped`: a Query or FunctionCall was skipped after an error (PostgreSQL skips them too until
   * Sync): the ReadyForQuery counted for it will not come. `untilSync`: no Sync has been sent
   * behind it, so PostgreSQL goes on skipping what the client sends next.
   */
  constructor(private readonly skipped: (untilSync: boolean) => void = () => undefined) {}

  get length(): number {
    return this.tail - this.head;
  }

  /** PostgreSQL skips what is sent now, up to the next Sync, without a reply: an error came, no Sync went since. */
  get skipping(): boolean {
    return this.skippingUntilSync;
  }

  /**
   * Whether a server message of this type must be handed to `reply` with an emitter (it may be
   * swallowed, rewritten or followed by a synthetic reply). Rows never are: they belong to an
   * Execute or Query, which the pooler always forwards.
   */
  mustSee(type: number): boolean {
    if (this.specialCount > 0) return type !== Msg.DataRow && type !== Msg.CopyData;
    return type === Msg.ErrorResponse && this.mapErrorCount > 0;
  }

  /**
   * A message was sent to the server (or answered by the pooler, with `special.synthetic`). A
   * synthetic reply at the head of the queue goes out through `toClient` now.
   */
  push(kind: ExpectKind, special?: Special, toClient?: Emit): void {
    const afterCopyEnd = this.copyEnds;
    if (isRequest(kind)) this.copyEnds = 0;
    if (kind === Expect.Sync) {
      this.syncs++;
      if (this.syncAnswered.length > 0) special = this.answersSync();
    }
    if (this.skippingUntilSync) {
      if (kind !== Expect.Sync) {
        if (owesReady(kind)) this.skipped(true);
        return special?.undo?.();
      }
      this.skippingUntilSync = false;
    }
    this.kinds[this.tail] = kind;
    this.afterCopyEnd[this.tail] = afterCopyEnd;
    this.specials[this.tail++] = special;
    if (special !== undefined) this.count(special, 1);
    if (toClient !== undefined) this.drain(toClient);
  }

  /**
   * Session pooling rewrites nothing, and only an extended-protocol message's error makes
   * PostgreSQL skip what follows (a Query behind a failed Parse owes no ReadyForQuery), or a COPY
   * FROM STDIN consume it (a Query sent before the COPY's CopyInResponse). So the queue is kept
   * only from such a message, or from a second request pipelined behind one still owed, until all
   * it started is answered: a lone simple Query's traffic never enters it. `owed`: the
   * ReadyForQuery messages due for requests sent untracked before it.
   */
  pushInSession(kind: ExpectKind, owed: number): void {
    if (this.head === this.tail && !this.skippingUntilSync) {
      if (!isExtended(kind) && owed === 0) {
        if (isRequest(kind)) this.copyEnds = 0;
        return;
      }
      // entries for requests sent before: a COPY they started and the client ended stays ended
      const copyEnds = this.copyEnds;
      for (; owed > 0; owed--) this.push(Expect.Query);
      this.copyEnds = copyEnds;
    }
    this.push(kind);
  }

  /** `answered` is called when the next Sync sent is answered: its batch's outcome is known. */
  atNextSync(answered: () => void): void {
    this.syncAnswered.push(answered);
  }

  /** The entry of a Sync that calls what waited for it. */
  private answersSync(): Special {
    const waiting = this.syncAnswered;
    this.syncAnswered = [];
    const answered = (): void => waiting.forEach((f) => f());
    return { done: answered, undo: answered };
  }

  /** The client sent a CopyDone or CopyFail: what it sends next is no longer COPY's to ignore. */
  copyEndSent(): void {
    this.copyEnds++;
  }

  /** A message from the server that the caller forwards itself (mustSee said no): the bookkeeping. */
  relayed(type: number): void {
    if (this.head === this.tail) return;
    const kind = this.kinds[this.head]!;
    if (type === Msg.ErrorResponse && isExtended(kind)) this.fail();
    else if (COMPLETES[kind]![type] === 1) {
      this.specials[this.head]?.done?.();
      this.pop();
    }
  }

  /**
   * A message from the server while specials are pending: passed on, dropped or replaced here, and
   * synthetic replies that become due follow it.
   */
  reply(type: number, msg: Buffer, emit: Emit): void {
    if (this.head < this.tail) {
      const special = this.specials[this.head];
      if (type === Msg.ErrorResponse && special?.mapError) emit(special.mapError(msg));
      else if (!(special?.swallow && COMPLETES[this.kinds[this.head]!]![type] === 1)) emit(msg);
    } else emit(msg);
    this.relayed(type);
    this.drain(emit);
  }

  /** The head failed: it and everything up to the next Sync are not done (PostgreSQL skips them). */
  private fail(): void {
    let end = this.head + 1;
    while (end < this.tail && this.kinds[end] !== Expect.Sync) end++;
    // Each undo restores what its own message found, so the newest goes first: a Close then a
    // Parse of one name, undone oldest first, would leave the name to the skipped Parse.
    const untilSync = end === this.tail;
    for (let i = end - 1; i >= this.head; i--) {
      this.specials[i]?.undo?.();
      if (owesReady(this.kinds[i]!)) this.skipped(untilSync);
    }
    for (let n = end - this.head; n > 0; n--) this.pop();
    if (this.head === this.tail) this.skippingUntilSync = true;
  }

  private drain(emit: Emit): void {
    while (this.head < this.tail) {
      const synthetic = this.specials[this.head]?.synthetic;
      if (synthetic === undefined) return;
      emit(synthetic);
      this.pop();
    }
  }

  private count(special: Special, delta: 1 | -1): void {
    if (special.synthetic || special.swallow) this.specialCount += delta;
    if (special.mapError) this.mapErrorCount += delta;
  }

  private pop(): void {
    const special = this.specials[this.head];
    if (special !== undefined) this.count(special, -1);
    this.specials[this.head] = undefined;
    if (++this.head === this.tail) this.emptied();
  }

  /** Back to the start; storage a huge pipeline grew is let go, not kept by an idle pooled server. */
  private emptied(): void {
    this.head = this.tail = 0;
    if (this.kinds.length > KEPT_ENTRIES) {
      this.kinds = [];
      this.specials = [];
      this.afterCopyEnd = [];
    }
  }

  /**
   * The head, an Execute or a Query, started a COPY FROM STDIN: the Syncs queued right behind it,
   * sent before the client ended the COPY, are ignored by PostgreSQL (it reads only COPY messages
   * now) and owe nothing; how many were taken out. A Sync's entry has no reply to rewrite (at most
   * what waits for its answer: atNextSync), so no special's count changes.
   */
  ignoreSyncs(): number {
    if (this.head === this.tail) return 0;
    const kind = this.kinds[this.head];
    if (kind !== Expect.Execute && kind !== Expect.Query) return 0;
    let end = this.head + 1;
    while (end < this.tail && this.kinds[end] === Expect.Sync && this.afterCopyEnd[end] === 0) end++;
    const ignored = end - this.head - 1;
    // what waited for an ignored Sync's answer has it: the batch before it is done
    for (let at = this.head + 1; at < end; at++) this.specials[at]?.undo?.();
    this.remove(this.head + 1, ignored);
    return ignored;
  }

  /** The reply at the head of the queue is owed for a message of this kind. */
  headIs(kind: ExpectKind): boolean {
    return this.head < this.tail && this.kinds[this.head] === kind;
  }

  /**
   * The head started a COPY FROM STDIN (its CopyInResponse came), the Syncs PostgreSQL ignores
   * taken out: what the client sent behind it already decides the COPY's end. "ended": a CopyDone
   * or CopyFail came first (with nothing queued behind the head, one sent since its request and not
   * taken by an earlier COPY of the same Query: each ends one). "broken": another message came
   * first, which PostgreSQL fails the COPY on (one the pooler answered itself never went). "running":
   * neither yet.
   */
  copyFate(): "running" | "ended" | "broken" {
    for (let at = this.head + 1; at < this.tail; at++) {
      if (this.afterCopyEnd[at]! > 0) return this.takeCopyEnd(at);
      if (this.specials[at]?.synthetic === undefined) return "broken";
    }
    if (this.copyEnds === 0) return "running";
    this.copyEnds--;
    return "ended";
  }

  /**
   * The COPY the head started is the one the first end before the entry at `at` ended: what was
   * sent behind that end, up to the client's next request, follows one end fewer.
   */
  private takeCopyEnd(at: number): "ended" {
    for (; at < this.tail; at++) {
      this.afterCopyEnd[at]!--;
      if (isRequest(this.kinds[at]!)) return "ended";
    }
    this.copyEnds--;
    return "ended";
  }

  /**
   * A request still unanswered may be starting a COPY FROM STDIN that the client has not ended:
   * the next message to reach the server breaks it off.
   */
  copyMayStart(): boolean {
    if (this.copyEnds > 0) return false;
    for (let at = this.head; at < this.tail; at++) if (isRequest(this.kinds[at]!)) return true;
    return false;
  }

  /**
   * Every message queued is answered without the client sending more (unless a request starts a
   * COPY FROM STDIN): the last ends a request (Sync, Query, FunctionCall; PostgreSQL holds the
   * replies to the others until a Sync or Flush).
   */
  endsRequest(): boolean {
    const last = this.kinds[this.tail - 1];
    return this.tail > this.head && (last === Expect.Sync || owesReady(last!));
  }

  /** A Sync is queued behind the head. */
  syncQueued(): boolean {
    for (let at = this.head + 1; at < this.tail; at++) if (this.kinds[at] === Expect.Sync) return true;
    return false;
  }

  /**
   * The head, a Query, started a COPY FROM STDIN that PostgreSQL failed (08P01) on the next message
   * it read, which it never does: the first entry behind the head that went to the server (in
   * session pooling too: a message sent behind a request still owed is queued). After an
   * Execute's COPY the error's skip to the next Sync drops it anyway (fail).
   */
  consumedByCopy(): void {
    if (this.head === this.tail || !owesReady(this.kinds[this.head]!)) return;
    let at = this.head + 1;
    while (at < this.tail && this.specials[at]?.synthetic !== undefined) at++;
    if (at === this.tail) return;
    const special = this.specials[at];
    special?.undo?.();
    if (special !== undefined) this.count(special, -1);
    if (owesReady(this.kinds[at]!)) this.skipped(false);
    this.remove(at, 1);
  }

  /** Takes `n` entries out from `at`, closing the gap. */
  private remove(at: number, n: number): void {
    if (n === 0) return;
    for (let i = at + n; i < this.tail; i++) {
      this.kinds[i - n] = this.kinds[i]!;
      this.afterCopyEnd[i - n] = this.afterCopyEnd[i]!;
      this.specials[i - n] = this.specials[i];
    }
    this.specials.fill(undefined, this.tail - n, this.tail);
    this.tail -= n;
  }

  /** The server's session ended or was handed over: nothing is owed any more. */
  clear(): void {
    this.specials.fill(undefined, 0, this.tail);
    this.emptied();
    this.specialCount = 0;
    this.mapErrorCount = 0;
    this.skippingUntilSync = false;
    this.copyEnds = 0;
    this.syncAnswered = [];
  }
}
