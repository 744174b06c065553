import { describe, expect, it } from "vitest";
import { Msg, closeComplete, errorResponse, parseComplete, readyForQuery } from "./protocol/messages.ts";
import { Expect, ReplyQueue } from "./replies.ts";

const BIND_COMPLETE = Buffer.from([Msg.BindComplete, 0, 0, 0, 4]);
const ERROR = errorResponse({ severity: "ERROR", code: "42601", message: "syntax error" });

function collect(): { out: string[]; emit: (b: Buffer) => void } {
  const out: string[] = [];
  return { out, emit: (b) => out.push(String.fromCharCode(b[0]!)) };
}

describe("ReplyQueue", () => {
  it("puts a synthetic reply after the replies to what was sent before it", () => {
    const q = new ReplyQueue();
    const { out, emit } = collect();
    q.push(Expect.Bind);
    q.push(Expect.Parse, { synthetic: parseComplete() }, emit);
    expect(out).toEqual([]); // the Bind's reply comes first
    q.push(Expect.Sync);
    q.reply(Msg.BindComplete, BIND_COMPLETE, emit);
    expect(out).toEqual(["2", "1"]);
    q.reply(Msg.ReadyForQuery, readyForQuery("I"), emit);
    expect(out).toEqual(["2", "1", "Z"]);
    expect(q.length).toBe(0);
  });

  it("keeps an ordinary pipeline's storage once answered, lets go of what a huge one grew", () => {
    const q = new ReplyQueue();
    const storage = (): unknown[] => (q as unknown as { kinds: unknown[] }).kinds;
    const pipeline = (n: number): void => {
      for (let i = 0; i < n; i++) q.push(Expect.Execute);
      q.push(Expect.Sync);
      for (let i = 0; i < n; i++) q.relayed(Msg.CommandComplete);
      q.relayed(Msg.ReadyForQuery);
      expect(q.length).toBe(0);
    };
    pipeline(10);
    const kept = storage();
    pipeline(10);
    expect(storage()).toBe(kept); // the hot path allocates nothing
    pipeline(100_000);
    expect(storage().length).toBe(0);
  });

  it("answers at once when nothing is owed", () => {
    const q = new ReplyQueue();
    const { out, emit } = collect();
    q.push(Expect.Close, { synthetic: closeComplete() }, emit);
    expect(out).toEqual(["3"]);
  });

  it("swallows the completion of an injected message, not its error", () => {
    const q = new ReplyQueue();
    const { out, emit } = collect();
    q.push(Expect.Parse, { swallow: true });
    q.push(Expect.Bind);
    q.reply(Msg.ParseComplete, parseComplete(), emit);
    q.reply(Msg.BindComplete, BIND_COMPLETE, emit);
    expect(out).toEqual(["2"]);
    q.push(Expect.Parse, { swallow: true });
    q.reply(Msg.ErrorResponse, ERROR, emit);
    expect(out).toEqual(["2", "E"]);
  });

  it("after an extended-protocol error drops and undoes everything up to Sync, even what comes later", () => {
    const q = new ReplyQueue();
    const { out, emit } = collect();
    const undone: string[] = [];
    q.push(Expect.Parse, { undo: () => undone.push("parse") });
    q.push(Expect.Parse, { synthetic: parseComplete(), undo: () => undone.push("synthetic") }, emit);
    q.reply(Msg.ErrorResponse, ERROR, emit);
    expect(undone).toEqual(["synthetic", "parse"]); // newest first: each restores what its message found
    // the client keeps sending before its Sync: the server skips those too
    q.push(Expect.Close, { synthetic: closeComplete(), undo: () => undone.push("close") }, emit);
    q.push(Expect.Execute);
    expect(undone).toEqual(["synthetic", "parse", "close"]);
    q.push(Expect.Sync);
    q.reply(Msg.ReadyForQuery, readyForQuery("I"), emit);
    expect(out).toEqual(["E", "Z"]);
    expect(q.length).toBe(0);
  });

  it("does not start skipping on an error inside a simple query", () => {
    const q = new ReplyQueue();
    const { out, emit } = collect();
    q.push(Expect.Query);
    q.push(Expect.Parse, { synthetic: parseComplete() }, emit);
    q.reply(Msg.ErrorResponse, ERROR, emit);
    q.reply(Msg.ReadyForQuery, readyForQuery("I"), emit);
    expect(out).toEqual(["E", "Z", "1"]);
  });

  it("rewrites an error it was told to", () => {
    const q = new ReplyQueue();
    const replacement = errorResponse({ severity: "ERROR", code: "0A000", message: "no" });
    const got: Buffer[] = [];
    q.push(Expect.Query, { mapError: () => replacement });
    expect(q.mustSee(Msg.ErrorResponse)).toBe(true);
    expect(q.mustSee(Msg.DataRow)).toBe(false);
    q.reply(Msg.ErrorResponse, ERROR, (b) => got.push(b));
    q.reply(Msg.ReadyForQuery, readyForQuery("E"), (b) => got.push(b));
    expect(got).toEqual([replacement, readyForQuery("E")]);
    expect(q.mustSee(Msg.ErrorResponse)).toBe(false);
  });

  it("ends a query at ReadyForQuery, not at its CommandComplete", () => {
    const q = new ReplyQueue();
    q.push(Expect.Query);
    q.relayed(Msg.CommandComplete);
    expect(q.length).toBe(1);
    q.relayed(Msg.ReadyForQuery);
    expect(q.length).toBe(0);
  });

  it("session pooling: a lone simple query stays out; an extended message comes in behind the replies still owed", () => {
    let skipped = 0;
    const q = new ReplyQueue(() => skipped++);
    q.pushInSession(Expect.Query, 0);
    expect(q.length).toBe(0); // nothing a lone simple query gets can make PostgreSQL skip a message
    // a query still running (its error must not count as the Parse's), then Parse, Query, Sync
    q.pushInSession(Expect.Parse, 1);
    q.pushInSession(Expect.Query, 1);
    q.pushInSession(Expect.Sync, 2);
    expect(q.length).toBe(4);
    q.relayed(Msg.ErrorResponse);
    q.relayed(Msg.ReadyForQuery);
    expect(skipped).toBe(0);
    q.relayed(Msg.ErrorResponse); // the Parse's: the Query behind it is skipped
    expect(skipped).toBe(1);
    q.relayed(Msg.ReadyForQuery);
    expect(q.length).toBe(0);
    q.pushInSession(Expect.Query, 0);
    expect(q.length).toBe(0);
  });

  it("session pooling: a simple query pipelined behind one still owed comes in, which a COPY the first starts consumes", () => {
    let skipped = 0;
    const q = new ReplyQueue(() => skipped++);
    q.pushInSession(Expect.Query, 0);
    q.pushInSession(Expect.Query, 1);
    expect(q.length).toBe(2);
    q.consumedByCopy(); // PostgreSQL failed the COPY (08P01) on it
    expect(q.length).toBe(1);
    expect(skipped).toBe(1);
    q.relayed(Msg.ReadyForQuery);
    expect(q.length).toBe(0);
  });

  it("a COPY's ignored Syncs are those queued right behind its request before the client ended the COPY", () => {
    const q = new ReplyQueue();
    q.push(Expect.Execute);
    q.push(Expect.Sync);
    q.copyEndSent();
    q.push(Expect.Sync);
    expect(q.ignoreSyncs()).toBe(1);
    expect(q.length).toBe(2);
    q.relayed(Msg.CommandComplete);
    expect(q.syncQueued()).toBe(false);
    expect(q.headIs(Expect.Sync)).toBe(true);
  });

  it("what waits for the next Sync's answer has it at its ReadyForQuery, or when a COPY ignores that Sync", () => {
    const q = new ReplyQueue();
    const answered: string[] = [];
    q.atNextSync(() => answered.push("first"));
    q.push(Expect.Execute);
    q.push(Expect.Sync);
    q.atNextSync(() => answered.push("second"));
    q.push(Expect.Sync);
    q.relayed(Msg.CommandComplete);
    q.relayed(Msg.ReadyForQuery);
    expect(answered).toEqual(["first"]);
    q.relayed(Msg.ReadyForQuery);
    expect(answered).toEqual(["first", "second"]);

    q.atNextSync(() => answered.push("ignored"));
    q.push(Expect.Execute);
    q.push(Expect.Sync);
    expect(q.ignoreSyncs()).toBe(1);
    expect(answered).toEqual(["first", "second", "ignored"]);
  });

  it("a request pipelined behind a COPY's Syncs ends them: the Syncs behind it are its own", () => {
    const q = new ReplyQueue();
    q.push(Expect.Execute);
    q.push(Expect.Sync);
    q.push(Expect.Query);
    q.push(Expect.Sync);
    expect(q.ignoreSyncs()).toBe(1);
    expect(q.length).toBe(3);
    expect(q.syncQueued()).toBe(true);
  });

  it("what the client sent behind a COPY's request before its CopyInResponse decides how the COPY starts", () => {
    const started = (build: (q: ReplyQueue) => void): string => {
      const q = new ReplyQueue();
      q.push(Expect.Execute);
      build(q);
      q.ignoreSyncs();
      return q.copyFate();
    };
    expect(started((q) => q.push(Expect.Sync))).toBe("running");
    expect(started((q) => q.copyEndSent())).toBe("ended");
    expect(started((q) => (q.copyEndSent(), q.push(Expect.Sync)))).toBe("ended");
    expect(started((q) => (q.push(Expect.Sync), q.push(Expect.Query)))).toBe("broken");
    expect(started((q) => (q.copyEndSent(), q.push(Expect.Query)))).toBe("ended");
    // a Parse the pooler answered itself never reached PostgreSQL: it breaks nothing
    expect(started((q) => q.push(Expect.Parse, { synthetic: Buffer.from("1") }))).toBe("running");
  });

  it("a CopyDone sent behind a Query ends one COPY: the next one that Query starts runs", () => {
    const q = new ReplyQueue();
    q.push(Expect.Query);
    q.copyEndSent();
    expect(q.copyFate()).toBe("ended");
    expect(q.copyFate()).toBe("running");
  });
});
