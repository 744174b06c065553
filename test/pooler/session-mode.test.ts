// Session pooling at its edges: pipelines PostgreSQL partly skips, a reset query that fails or
// that a cancel request on its way could hit.
import type net from "node:net";
import { describe, expect, inject, it } from "vitest";
import type { Pool } from "../../pooler/pool.ts";
import { bind, cancelRequest, flush, parse, query, sync } from "../../pooler/protocol/messages.ts";
import { connect, rawExchange } from "../support/clients.ts";
import { hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { withTestPooler } from "../support/pooler.ts";
import { RawClient } from "../support/protocol.ts";
import { relay } from "../support/relay.ts";
import { waitFor } from "../support/wait.ts";

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

describe("session pooling: a server_reset_query that fails", () => {
  // DISCARD ALL refuses to run in a multi-statement Query, so this one fails every time
  const RESET = "DISCARD ALL; SELECT 1";
  /** A leaves a temporary table and a setting; what B, the next client, finds there. */
  const nextSession = async (
    url: string,
  ): Promise<{ sameServer: boolean; temps: number; workMem: string }> => {
    const a = await connect(url);
    const pid = (await a.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    await a.query("CREATE TEMP TABLE left_behind (n int); SET work_mem = '7MB'");
    await a.end();
    await new Promise((r) => setTimeout(r, 300)); // the reset has run
    const b = await connect(url);
    try {
      const r = await b.query(
        "SELECT pg_backend_pid() AS pid, current_setting('work_mem') AS wm, " +
          "(SELECT count(*)::int FROM pg_class WHERE relnamespace = pg_my_temp_schema()) AS temps",
      );
      return { sameServer: r.rows[0].pid === pid, temps: r.rows[0].temps, workMem: r.rows[0].wm };
    } finally {
      await b.end();
    }
  };

  it("the server is closed, not handed on unreset, and the failure is logged as a warning", () =>
    withTestPooler({ POOL_MODE: "session", DEFAULT_POOL_SIZE: "1", SERVER_RESET_QUERY: RESET }, async (p) => {
      expect(await nextSession(p.url())).toEqual({ sameServer: false, temps: 0, workMem: "4MB" });
      // every session now costs a server login: the operator must hear of it at the default verbosity
      const warned = p.logs.filter((l) => l.msg === "server_reset_query failed: server closed");
      // one per session (B's own end may have been logged too), at pino's warn level
      expect(warned[0]).toMatchObject({ level: 40, query: RESET, err: expect.stringMatching(/DISCARD ALL/) });
      if (!hasPgBouncer()) return;
      const b = await startPgBouncer(
        { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
        { pool_mode: "session", default_pool_size: 1, server_reset_query: RESET },
      );
      try {
        // PgBouncer 1.18 keeps the server: the next client gets the table and the setting
        console.log(
          `failing server_reset_query, PgBouncer 1.18: ${JSON.stringify(await nextSession(b.url("app")))}`,
        );
      } finally {
        await b.stop();
      }
    }));

  it("one that leaves a transaction open closes the server too: the next client gets none in a transaction", () =>
    withTestPooler(
      { POOL_MODE: "session", DEFAULT_POOL_SIZE: "1", SERVER_RESET_QUERY: "BEGIN" },
      async (p) => {
        const a = await connect(p.url());
        const pid = (await a.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
        await a.end();
        await new Promise((r) => setTimeout(r, 300)); // the reset has run
        const b = await connect(p.url());
        try {
          // inside the transaction the reset left open, now() would be its BEGIN's time, not this statement's
          const r = await b.query("SELECT pg_backend_pid() AS pid, now() = statement_timestamp() AS fresh");
          expect({ sameServer: r.rows[0].pid === pid, fresh: r.rows[0].fresh }).toEqual({
            sameServer: false,
            fresh: true,
          });
        } finally {
          await b.end();
        }
        const warned = p.logs.filter(
          (l) => l.msg === "server_reset_query left a transaction open: server closed",
        );
        expect(warned[0]).toMatchObject({ level: 40, query: "BEGIN" });
      },
    ));
});

describe("session pooling: a cancel request still on its way when the client leaves", () => {
  /**
   * A, idle, sends its cancel request (held 300 ms on its way to PostgreSQL) and leaves while it is
   * in flight; then B logs in. Whether B got A's server, once the 500-ms reset query has run.
   */
  const nextGetsSameServer = async (
    url: string,
    port: number,
    inFlight: () => Promise<void>,
  ): Promise<boolean> => {
    const a = await RawClient.connect(url);
    const pid = (await a.exchange([query("SELECT pg_backend_pid()")])).find((m) => m.type === "D")!.body;
    const cancel = rawExchange(port, cancelRequest(a.cancelKey.pid, a.cancelKey.secret));
    await inFlight();
    await a.close();
    await cancel;
    await new Promise((r) => setTimeout(r, 800)); // the reset has run
    const b = await RawClient.connect(url);
    try {
      return (await b.exchange([query("SELECT pg_backend_pid()")]))
        .find((m) => m.type === "D")!
        .body.equals(pid);
    } finally {
      b.destroy();
    }
  };
  const RESET = "SELECT pg_sleep(0.5)";

  it("does not cancel server_reset_query: the server is reset and kept, as by PgBouncer 1.18", async () => {
    const to = new URL(inject("pgAppUrl"));
    const proxy = await relay(
      { host: "127.0.0.1", port: 0 },
      { host: to.hostname, port: Number(to.port) },
      0,
      undefined,
      300,
    );
    const { port } = proxy.address() as net.AddressInfo;
    try {
      const env = {
        DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${port}/app`,
        POOL_MODE: "session",
        DEFAULT_POOL_SIZE: "1",
        SERVER_RESET_QUERY: RESET,
      };
      await withTestPooler(env, async (p) => {
        const pool = (): Pool => [...p.pooler.pools.values()][0]!;
        const forwarded = (): Promise<void> =>
          waitFor(() => pool().allServers()[0]!.cancelsInFlight > 0, "the cancel forwarded");
        // was: the cancel landed on the reset query, and the server was closed for it
        expect(await nextGetsSameServer(p.url(), p.port, forwarded)).toBe(true);
        expect(p.logs.filter((l) => l.msg === "server_reset_query failed: server closed")).toEqual([]);
      });
      if (!hasPgBouncer()) return;
      const b = await startPgBouncer(
        { app: `host=127.0.0.1 port=${port} dbname=app` },
        { pool_mode: "session", default_pool_size: 1, server_reset_query: RESET },
      );
      try {
        const sent = (): Promise<void> => new Promise((r) => setTimeout(r, 50));
        expect(await nextGetsSameServer(b.url("app"), b.port, sent)).toBe(true);
      } finally {
        await b.stop();
      }
    } finally {
      proxy.close();
    }
  });
});

describe("pool_mode switched online", () => {
  interface Switch {
    /** A's statements before pool_mode changes, and between each step after it (one server, B queued). */
    before: string[];
    after: string[];
    from: "session" | "transaction";
    to: "session" | "transaction";
  }
  /**
   * A runs `before`; pool_mode changes on the console; B asks for the only server while A runs
   * `after`, one statement at a time, then leaves. When B got a server (after which of A's
   * statements), and what it found there: A's setting, and whether A's advisory lock was free to it.
   */
  const switchWhileHeld = async (
    url: (db: string) => string,
    { before, after, to }: Switch,
  ): Promise<{ servedAt: string; flag: string; lockFree: boolean }> => {
    const a = await connect(url("app"));
    const admin = await connect(url("pgbouncer"));
    const b = await connect(url("app"));
    try {
      for (const sql of before) await a.query(sql);
      await admin.query(`SET pool_mode = '${to}'`);
      let servedAt = "";
      let step = "the switch";
      // a session lock is re-entrant: B on A's backend would get it again, as on a fresh one
      const found = b
        .query(
          "SELECT current_setting('my.flag', true) AS flag, " +
            "NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242) AS free",
        )
        .then((r) => {
          servedAt ||= step;
          return r.rows[0] as { flag: string | null; free: boolean };
        });
      for (const sql of after) {
        await new Promise((r) => setTimeout(r, 300));
        await a.query(sql);
        step = `A's ${sql}`;
      }
      await new Promise((r) => setTimeout(r, 300));
      step = "A's leaving";
      await a.end();
      const { flag, free } = await found;
      return { servedAt, flag: flag ?? "", lockFree: free };
    } finally {
      await b.end();
      await admin.end();
    }
  };

  const SET = "SET my.flag = 'from A'";
  const LOCK = "SELECT pg_advisory_lock(4242)";
  const clean = { flag: "", lockFree: true };
  const toTransaction = { from: "session", to: "transaction" } as const;
  // PgBouncer 1.18, measured by the same scenario, moves A to the new mode at its next transaction's
  // end, whatever A left on the server: the README's stated difference
  const cases: [string, Switch, { ours: string; theirs: object }][] = [
    [
      "idle",
      { ...toTransaction, before: ["SELECT 1"], after: ["SELECT 2"] },
      { ours: "A's leaving", theirs: { ...clean, servedAt: "A's SELECT 2" } },
    ],
    [
      "inside a transaction",
      { ...toTransaction, before: ["BEGIN"], after: ["COMMIT"] },
      { ours: "A's leaving", theirs: { ...clean, servedAt: "A's COMMIT" } },
    ],
    [
      "with a SET",
      { ...toTransaction, before: [SET], after: ["BEGIN", "COMMIT"] },
      { ours: "A's leaving", theirs: { servedAt: "A's COMMIT", flag: "from A", lockFree: true } },
    ],
    [
      "holding an advisory lock",
      { ...toTransaction, before: [LOCK], after: ["SELECT 2"] },
      { ours: "A's leaving", theirs: { servedAt: "A's SELECT 2", flag: "", lockFree: false } },
    ],
    // the other way PgBouncer keeps A's server from its COMMIT on; ours releases it once more, A's
    // next transaction takes one in session pooling (its settings replayed there)
    [
      "inside a transaction, to session",
      { from: "transaction", to: "session", before: ["BEGIN"], after: ["COMMIT"] },
      { ours: "A's COMMIT", theirs: { ...clean, servedAt: "A's leaving" } },
    ],
  ];

  it.each(cases)("A %s at the switch", async (_, scenario, expected) => {
    const ours = await withTestPooler(
      { POOL_MODE: scenario.from, DEFAULT_POOL_SIZE: "1", ADMIN_USERS: "postgres" },
      (p) => switchWhileHeld(p.url, scenario),
    );
    expect(ours).toEqual({ ...clean, servedAt: expected.ours });
    if (!hasPgBouncer()) return;
    const b = await startPgBouncer(
      { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
      { pool_mode: scenario.from, default_pool_size: 1, admin_users: "postgres" },
    );
    try {
      expect(await switchWhileHeld(b.url, scenario)).toEqual(expected.theirs);
    } finally {
      await b.stop();
    }
  });

  it("a client with named statements the pooler routes keeps transaction pooling after a switch to session", () =>
    withTestPooler({ DEFAULT_POOL_SIZE: "2", ADMIN_USERS: "postgres" }, async ({ url }) => {
      const a = await connect(url());
      const admin = await connect(url("pgbouncer"));
      try {
        const q = { name: "s1", text: "SELECT $1::int AS n", values: [1] };
        expect((await a.query(q)).rows[0].n).toBe(1);
        await admin.query("SET pool_mode = 'session'");
        // node-postgres sends only Bind for s1 now: unrouted, it would be 26000 on the server
        const again = [];
        for (const n of [2, 3]) again.push((await a.query({ ...q, values: [n] })).rows[0].n);
        expect(again).toEqual([2, 3]);
      } finally {
        await Promise.all([a.end(), admin.end()]);
      }
    }));
});
