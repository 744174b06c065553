import { describe, expect, it } from "vitest";
import {
  Msg,
  bind,
  close,
  describe as describeMsg,
  errorResponse,
  parse,
  parseComplete,
  parseErrorFields,
  statementNameSpan,
} from "./protocol/messages.ts";
import { routeStatementMessage, type StatementRoute } from "./prepared.ts";
import { ClientStatements, ServerStatements, StatementRegistry } from "./statements.ts";
import { Expect, ReplyQueue } from "./replies.ts";

const BIND_COMPLETE = Buffer.from([Msg.BindComplete, 0, 0, 0, 4]);

/** One client on one server, with what each side receives, as names. */
function setup(capacity = 10) {
  const registry = new StatementRegistry();
  const toServer: string[] = [];
  const toClient: string[] = [];
  const server = new ServerStatements(registry);
  const replies = new ReplyQueue();
  const stats = { clientParseCount: 0, serverParseCount: 0, bindCount: 0 };
  const route = (client: ClientStatements, srv = server, q = replies): StatementRoute => ({
    registry,
    stats,
    client,
    server: srv,
    replies: q,
    capacity,
    searchPath: () => undefined,
    toServer: (b) => toServer.push(describeWire(b)),
    toClient: (b) => toClient.push(describeWire(b)),
    noteEffect: () => undefined,
    mayBeInFailedTransaction: () => false,
    breaksCopy: false,
  });
  /** The server answers everything it was sent successfully. */
  const serverOk = (q = replies): void => {
    for (const m of toServer.splice(0)) {
      const type = m[0]!;
      if (type === "P") q.reply(Msg.ParseComplete, parseComplete(), (b) => toClient.push(describeWire(b)));
      if (type === "B") q.reply(Msg.BindComplete, BIND_COMPLETE, (b) => toClient.push(describeWire(b)));
      if (type === "C")
        q.reply(Msg.CloseComplete, Buffer.from([0x33, 0, 0, 0, 4]), (b) => toClient.push(describeWire(b)));
    }
  };
  return { registry, server, replies, route, toServer, toClient, serverOk };
}

/** "P POOLER_1", "B POOLER_1", "1", "3", "E <message>". */
function describeWire(b: Buffer): string {
  const type = String.fromCharCode(b[0]!);
  if (type === "E") return `E ${parseErrorFields(b).get("M")}`;
  if ("PBDC".includes(type) && b.length > 5) {
    const span = statementNameSpan(b[0]!, b);
    return `${type} ${b.toString("utf8", span.start, span.end)}`;
  }
  return type;
}

describe("named statements across servers", () => {
  it("renames a client's statement and prepares it once per server", () => {
    const t = setup();
    const a = new ClientStatements(t.registry);
    routeStatementMessage(Msg.Parse, parse("s1", "SELECT $1::int"), t.route(a));
    routeStatementMessage(Msg.Bind, bind("", "s1", ["1"]), t.route(a));
    expect(t.toServer).toEqual(["P POOLER_1", "B POOLER_1"]);
    t.serverOk();
    expect(t.toClient).toEqual(["1", "2"]);

    // another client, its own name for the same statement: the server has it already
    const b = new ClientStatements(t.registry);
    routeStatementMessage(Msg.Parse, parse("other", "SELECT $1::int"), t.route(b));
    expect(t.toServer).toEqual([]);
    expect(t.toClient).toEqual(["1", "2", "1"]);
    routeStatementMessage(Msg.Bind, bind("", "other", ["2"]), t.route(b));
    expect(t.toServer).toEqual(["B POOLER_1"]);
  });

  it("gives two clients' same name with different SQL their own statements", () => {
    const t = setup();
    const a = new ClientStatements(t.registry);
    const b = new ClientStatements(t.registry);
    routeStatementMessage(Msg.Parse, parse("s1", "SELECT 1"), t.route(a));
    routeStatementMessage(Msg.Parse, parse("s1", "SELECT 2"), t.route(b));
    expect(t.toServer).toEqual(["P POOLER_1", "P POOLER_2"]);
    expect(a.get("s1")?.name).toBe("POOLER_1");
    expect(b.get("s1")?.name).toBe("POOLER_2");
  });

  it("shares a long statement by its text too, keyed by its digest", () => {
    const t = setup();
    const [a, b, c] = [0, 1, 2].map(() => new ClientStatements(t.registry));
    const long = `SELECT '${"x".repeat(10_000)}'`;
    routeStatementMessage(Msg.Parse, parse("s", long), t.route(a!));
    routeStatementMessage(Msg.Parse, parse("t", long), t.route(b!));
    routeStatementMessage(Msg.Parse, parse("s", `${long} AS y`), t.route(c!));
    expect([a, b, c].map((x) => x!.get(x === b ? "t" : "s")?.name)).toEqual([
      "POOLER_1",
      "POOLER_1",
      "POOLER_2",
    ]);
    expect(t.registry.size).toBe(2);
  });

  it("prepares a statement on a server that lacks it before the Bind, swallowing the ParseComplete", () => {
    const t = setup();
    const a = new ClientStatements(t.registry);
    routeStatementMessage(Msg.Parse, parse("s1", "SELECT 1"), t.route(a));
    t.serverOk();
    t.toClient.length = 0;
    const other = new ServerStatements(t.registry);
    const q = new ReplyQueue();
    routeStatementMessage(Msg.Bind, bind("", "s1"), t.route(a, other, q));
    routeStatementMessage(Msg.Describe, describeMsg("S", "s1"), t.route(a, other, q));
    expect(t.toServer).toEqual(["P POOLER_1", "B POOLER_1", "D POOLER_1"]);
    t.serverOk(q);
    expect(t.toClient).toEqual(["2"]);
  });

  it("evicts the least recently used statement with a Close when the server is full", () => {
    const t = setup(2);
    const a = new ClientStatements(t.registry);
    for (const [name, sql] of [
      ["s1", "SELECT 1"],
      ["s2", "SELECT 2"],
    ]) {
      routeStatementMessage(Msg.Parse, parse(name!, sql!), t.route(a));
    }
    // answered: unanswered, a Parse of s1 or s2 again would go under their names (parseAgain)
    t.serverOk();
    routeStatementMessage(Msg.Bind, bind("", "s1"), t.route(a)); // s1 is now the most recent
    routeStatementMessage(Msg.Parse, parse("s3", "SELECT 3"), t.route(a));
    expect(t.toServer).toEqual(["B POOLER_1", "C POOLER_2", "P POOLER_3"]);
    t.serverOk();
    expect(t.toClient).toEqual(["1", "1", "2", "1"]); // the eviction's CloseComplete is swallowed
    expect(t.server.size).toBe(2);
  });

  it("answers a Close itself and keeps the statement on the server", () => {
    const t = setup();
    const a = new ClientStatements(t.registry);
    routeStatementMessage(Msg.Parse, parse("s1", "SELECT 1"), t.route(a));
    t.serverOk();
    routeStatementMessage(Msg.Close, close("S", "s1"), t.route(a));
    routeStatementMessage(Msg.Close, close("S", "never"), t.route(a));
    expect(t.toServer).toEqual([]);
    expect(t.toClient).toEqual(["1", "3", "3"]);
    expect(a.get("s1")).toBeUndefined();
    expect(t.server.size).toBe(1);
  });

  it("sends an unknown name as one no server has, and gives PostgreSQL's error the client's name", () => {
    const t = setup();
    const a = new ClientStatements(t.registry);
    routeStatementMessage(Msg.Bind, bind("", "nope"), t.route(a));
    expect(t.toServer).toEqual(["B POOLER_no_such_statement"]);
    t.replies.reply(
      Msg.ErrorResponse,
      errorResponse({
        severity: "ERROR",
        code: "26000",
        message: 'prepared statement "POOLER_no_such_statement" does not exist',
      }),
      (b) => t.toClient.push(describeWire(b)),
    );
    expect(t.toClient).toEqual(['E prepared statement "nope" does not exist']);
  });

  it("leaves no mapping and no server entry behind when the Parse fails", () => {
    const t = setup();
    const a = new ClientStatements(t.registry);
    routeStatementMessage(Msg.Parse, parse("bad", "SELEC 1"), t.route(a));
    t.replies.push(Expect.Sync);
    t.replies.relayed(Msg.ErrorResponse);
    t.replies.relayed(Msg.ReadyForQuery);
    expect(a.get("bad")).toBeUndefined();
    expect(t.server.size).toBe(0);
    expect(t.registry.size).toBe(0);
  });

  it("after a DEALLOCATE ALL closes before preparing again what the server may still have", () => {
    const t = setup();
    const a = new ClientStatements(t.registry);
    routeStatementMessage(Msg.Parse, parse("s1", "SELECT 1"), t.route(a));
    t.serverOk();
    t.server.markAllUncertain();
    routeStatementMessage(Msg.Bind, bind("", "s1"), t.route(a));
    expect(t.toServer).toEqual(["C POOLER_1", "P POOLER_1", "B POOLER_1"]);
  });

  it("drops a statement from the registry once no client or server holds it", () => {
    const t = setup();
    const a = new ClientStatements(t.registry);
    routeStatementMessage(Msg.Parse, parse("s1", "SELECT 1"), t.route(a));
    t.serverOk();
    a.clear();
    expect(t.registry.size).toBe(1); // the server still has it
    t.server.clear();
    expect(t.registry.size).toBe(0);
  });
});
