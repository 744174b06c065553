// Session pooling at its edges: pipelines PostgreSQL partly skips.
import { describe, expect, it } from "vitest";
import { bind, flush, parse, query, sync } from "../../pooler/protocol/messages.ts";
import { withTestPooler } from "../support/pooler.ts";
import { RawClient } from "../support/protocol.ts";

const types = (replies: { type: string }[]): string => replies.map((m) => m.type).join("");

describe("session pooling: a Query behind a failed Parse is skipped to the Sync", () => {
  it("no reply is owed for it: query_timeout stays quiet while idle, the server is reused", () =>
    withTestPooler({ POOL_MODE: "session", DEFAULT_POOL_SIZE: "1", QUERY_TIMEOUT: "1" }, async (p) => {
      const a = await RawClient.connect(p.url());
      expect(types(await a.exchange([query("SELECT pg_backend_pid()")]))).toBe("TDCZ");
      expect(types(await a.exchange([parse("", "SELEC 1"), query("SELECT 1"), sync()]))).toBe("EZ");
      // the same replies as a Parse and a failing Query would get, but one ReadyForQuery fewer owed
      const bad = bind("", "nosuch");
      expect(types(await a.exchange([parse("", "SELECT 1"), bad, query("SELECT 1"), sync()]))).toBe("1EZ");
      const pool = [...p.pooler.pools.values()][0]!;
      expect(pool.allServers().map((s) => s.pendingReplies)).toEqual([0]);
      await new Promise((r) => setTimeout(r, 1500)); // past query_timeout, idle
      expect(types(await a.exchange([query("SELECT 2")]))).toBe("TDCZ");
      const server = pool.allServers()[0]!;
      await a.close();
      // kept for the next client, not closed as a server still owing replies
      const b = await RawClient.connect(p.url());
      try {
        expect(types(await b.exchange([query("SELECT 3")]))).toBe("TDCZ");
        expect(pool.allServers()).toEqual([server]);
      } finally {
        b.destroy();
      }
    }));

  it("a client that leaves before that Sync leaves a server that skips everything: it is closed, not reset", () =>
    withTestPooler({ POOL_MODE: "session", DEFAULT_POOL_SIZE: "1" }, async (p) => {
      const a = await RawClient.connect(p.url());
      a.send(parse("", "SELEC 1"), flush());
      expect(types(await a.take(1))).toBe("E");
      a.send(query("SELECT 1")); // skipped: PostgreSQL would skip server_reset_query too
      await new Promise((r) => setTimeout(r, 100));
      await a.close();
      const b = await RawClient.connect(p.url());
      try {
        expect(types(await b.exchange([query("SELECT 2")]))).toBe("TDCZ");
      } finally {
        b.destroy();
      }
    }));
});
