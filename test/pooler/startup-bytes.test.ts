// Startup parameters that are not UTF-8 (or not ASCII): PostgreSQL takes their bytes as they come,
// in the server's encoding, whatever client_encoding says. Each conversation runs directly and
// through the pooler, byte for byte (values read as latin1: one char a byte).
import { describe, expect, inject, it } from "vitest";
import { query } from "../../pooler/protocol/messages.ts";
import { ownDatabase } from "../support/own-database.ts";
import { withTestPooler, type TestPooler } from "../support/pooler.ts";
import { errorOfReply, RawClient, startupOfBytes, type Reply } from "../support/protocol.ts";

/** The first row of the replies, each value's bytes one char a byte; errors as "SQLSTATE message". */
function answer(replies: Reply[]): string[] {
  const error = replies.find((m) => m.type === "E");
  if (error) return [`${errorOfReply(error).get("C")} ${errorOfReply(error).get("M")}`];
  const row = replies.find((m) => m.type === "D")!.body;
  const values: string[] = [];
  for (let i = 0, at = 2; i < row.readInt16BE(0); i++) {
    const len = row.readInt32BE(at);
    values.push(row.toString("latin1", at + 4, at + 4 + len));
    at += 4 + len;
  }
  return values;
}

/** The server the pooler has: its URL for `db` (any name: made up from "*"). */
function serverUrl(): string {
  const server = new URL(inject("pgAppUrl"));
  server.pathname = "";
  return server.toString();
}

function withPooler<T>(mode: string, fn: (p: TestPooler) => Promise<T>): Promise<T> {
  return withTestPooler({ POOL_MODE: mode, DATABASE_URL: serverUrl() }, fn);
}

function urlOf(base: string, db: string): string {
  const url = new URL(base);
  url.pathname = `/${db}`;
  return url.toString();
}

describe.each(["transaction", "session"])("startup settings byte for byte (%s pooling)", (mode) => {
  const latin1 = ownDatabase("startup_latin1", "LATIN1");
  const sqlAscii = ownDatabase("startup_sql_ascii", "SQL_ASCII");
  const utf8 = ownDatabase("startup_utf8");
  const READ = "SELECT octet_length(current_setting('myapp.tenant')), current_setting('myapp.tenant')";

  /**
   * A client's answers: its setting after login, after a SET (the session probe reads it back in
   * transaction pooling) and on a new server (`newServer`: the pooler's next link replays it).
   */
  async function answers(url: string, params: Record<string, string>, newServer: () => void) {
    const c = await RawClient.connect(url, params, undefined, startupOfBytes);
    try {
      const out = [answer(await c.exchange([query(READ)]))];
      await c.exchange([query("SET work_mem = '8MB'")]);
      newServer();
      out.push(answer(await c.exchange([query(READ)])));
      return out;
    } finally {
      await c.close();
    }
  }

  it.each<[string, () => string, Record<string, string>, string]>([
    // before: each bad byte reached the server as U+FFFD, "caf\xef\xbf\xbd" (or those bytes
    // converted from LATIN1 again: 9 bytes)
    ["LATIN1, client_encoding LATIN1", () => latin1.name, { client_encoding: "LATIN1" }, "caf\xe9"],
    ["SQL_ASCII", () => sqlAscii.name, {}, "caf\xe9"],
    ["SQL_ASCII, client_encoding LATIN1", () => sqlAscii.name, { client_encoding: "LATIN1" }, "caf\xe9"],
    // valid UTF-8, but the server's bytes all the same: before, converted from LATIN1 to 7 bytes
    ["UTF8, client_encoding LATIN1", () => utf8.name, { client_encoding: "LATIN1" }, "caf\xc3\xa9"],
  ])("%s: as directly, also in options and after a server change", async (_, db, extra, value) => {
    const settings: Record<string, string>[] = [
      { "myapp.tenant": value },
      { options: `-c myapp.tenant=${value}` },
    ];
    for (const setting of settings) {
      const params = { ...extra, ...setting };
      const direct = await answers(urlOf(inject("pgAdminUrl"), db()), params, () => undefined);
      expect(direct[0]![0]).toBe(String(value.length));
      await withPooler(mode, async (p) => {
        const reconnect = (): void => {
          for (const pool of p.pooler.pools.values()) pool.reconnect();
        };
        expect(await answers(p.url(db()), params, reconnect)).toEqual(direct);
      });
    }
  });
});

describe("startup values PostgreSQL cannot take by SQL", () => {
  it.each([
    ["caf\xe9", "caf?"],
    ["caf\xc3\xa9", "caf??"],
  ])("application_name %j is made printable ASCII, as PostgreSQL 13 does", async (name, cleaned) => {
    // before: told back as "caf\ufffd" in UTF-8, and SET as that ("caf???") on the server
    const told = async (url: string): Promise<[string, string[]]> => {
      const c = await RawClient.connect(url, { application_name: name }, undefined, startupOfBytes);
      try {
        const reported = c.parameters.find(([n]) => n === "application_name")![1];
        return [reported, answer(await c.exchange([query("SHOW application_name")]))];
      } finally {
        await c.close();
      }
    };
    const direct = await told(inject("pgAppUrl"));
    expect(direct).toEqual([cleaned, [cleaned]]);
    await withPooler("transaction", async (p) => expect(await told(p.url())).toEqual(direct));
  });

  it("a setting that is not UTF-8 is refused for a UTF8 database, with 22021", async () => {
    // PostgreSQL keeps such bytes from a startup packet (and SHOW fails on them under another
    // client_encoding); SQL, which is how the pooler gives each server a client's settings, cannot
    // carry them into a UTF8 database. Before, they reached it as "caf\ufffd" and the client was in.
    await withPooler("transaction", async (p) => {
      const err = await RawClient.connect(
        p.url(),
        { "myapp.tenant": "caf\xe9" },
        undefined,
        startupOfBytes,
      ).then(
        () => "logged in",
        (e: Error) => e.message,
      );
      expect(err).toBe('login failed: invalid byte sequence for encoding "UTF8": 0xe9');
    });
  });
});
