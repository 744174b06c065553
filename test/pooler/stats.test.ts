// SHOW STATS_TOTALS against PgBouncer 1.18's: the same client traffic through both poolers must add
// the same transactions, queries and bytes (times differ with the machine and are not compared).
import type net from "node:net";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { bind, close, execute, flush, parse, query, sync } from "../../pooler/protocol/messages.ts";
import { connect } from "../support/clients.ts";
import { hasPgBouncer, startPgBouncer, type PgBouncer } from "../support/pgbouncer.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { RawClient } from "../support/protocol.ts";
import { relay } from "../support/relay.ts";
import { waitFor } from "../support/wait.ts";

const COUNTED = ["xact_count", "query_count", "bytes_received", "bytes_sent"] as const;
type Counted = Record<string, number>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function counted(admin: pg.Client, columns: readonly string[]): Promise<Counted> {
  const { rows } = await admin.query<Record<string, string>>("SHOW STATS_TOTALS");
  const row = rows.find((r) => r.database === "app");
  return Object.fromEntries(columns.map((k) => [k, Number(row?.[k] ?? 0)]));
}

/** What `scenario` adds to the app database's totals (`columns` of them), once the pooler has seen its client go. */
async function added(
  url: (db: string) => string,
  scenario: (url: string) => Promise<void>,
  columns: readonly string[] = COUNTED,
): Promise<Counted> {
  const admin = await connect(url("pgbouncer"));
  try {
    const before = await counted(admin, columns);
    await scenario(url("app"));
    await sleep(300);
    const after = await counted(admin, columns);
    return Object.fromEntries(columns.map((k) => [k, after[k]! - before[k]!]));
  } finally {
    await admin.end();
  }
}

const SCENARIOS: Record<string, (url: string) => Promise<void>> = {
  "a query, then Terminate": async (url) => {
    const c = await RawClient.connect(url);
    await c.exchange([query("SELECT 1")]);
    await c.close();
  },
  "Terminate inside a transaction": async (url) => {
    const c = await RawClient.connect(url);
    await c.exchange([query("BEGIN")]);
    await c.exchange([query("SELECT 1")]);
    await c.close();
  },
  "Terminate while the server runs a query": async (url) => {
    const c = await RawClient.connect(url);
    c.send(query("SELECT pg_sleep(0.2)"));
    await sleep(50);
    await c.close();
    await sleep(200);
  },
  // in transaction pooling ours answers the Close, and the Parse of a statement its server already
  // has, itself (MAX_PREPARED_STATEMENTS); PgBouncer 1.18 passes them on and counts the server's replies
  "a named statement prepared, run and closed, twice": async (url) => {
    const c = await RawClient.connect(url);
    for (let i = 0; i < 2; i++) {
      await c.exchange([parse("s1", "SELECT 1"), bind("", "s1"), execute(), sync()]);
      await c.exchange([close("S", "s1"), sync()]);
    }
    await c.close();
  },
  "its server ended while it runs a query": async (url) => {
    const c = await RawClient.connect(url);
    c.send(query("SELECT pg_sleep(5) AS victim"));
    const direct = await connect(inject("pgAppUrl"));
    try {
      await waitFor(async () => {
        const { rows } = await direct.query(
          // once it sleeps, not as it starts: its RowDescription is then made, and goes out with the FATAL
          "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE query LIKE '%AS victim' AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()",
        );
        return rows.length > 0;
      }, "the query running");
      await c.untilReady().catch(() => undefined);
    } finally {
      c.destroy();
      await direct.end();
    }
  },
};

describe.skipIf(!hasPgBouncer()).each(["session", "transaction"])(
  "SHOW STATS_TOTALS in %s pooling",
  (mode) => {
    let ours: TestPooler;
    let theirs: PgBouncer;

    beforeAll(async () => {
      // no server_reset_query: PgBouncer counts its reply as sent (to no client), where ours does not
      ours = await startTestPooler({ ADMIN_USERS: "postgres", POOL_MODE: mode, SERVER_RESET_QUERY: "" });
      theirs = await startPgBouncer(
        { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
        { pool_mode: mode, admin_users: "postgres", server_reset_query: "" },
      );
      // the pool, and its server, exist before anything is measured
      for (const url of [ours.url("app"), theirs.url("app")]) await (await connect(url)).end();
    });

    afterAll(async () => {
      await ours.stop();
      await theirs.stop();
    });

    it.each(Object.keys(SCENARIOS))("%s: counted as PgBouncer 1.18 counts it", async (name) => {
      const scenario = SCENARIOS[name]!;
      expect(await added(ours.url, scenario)).toEqual(await added(theirs.url, scenario));
    });

    // A monitoring rule on the wait counter's growth (pool saturated) must stay quiet while an idle
    // server is there: PgBouncer's clock stands still within an event-loop turn, so such a wait is 0
    it("counts no wait for clients that find an idle server, as PgBouncer 1.18 (wait_time)", async () => {
      const unhindered = async (url: string): Promise<void> => {
        const c = await RawClient.connect(url);
        for (let i = 0; i < 20; i++) await c.exchange([query("SELECT 1")]);
        await c.close();
      };
      const waited = async (url: (db: string) => string): Promise<number> => {
        // a server of the pool is idle, whatever the tests before did to it
        const warm = await connect(url("app"));
        await warm.query("SELECT 1");
        await warm.end();
        // and back in the pool: in session pooling its reset runs after the client left, and a
        // client that came meanwhile would wait for it (1 run in 13, and in a CI run, under load)
        const admin = await connect(url("pgbouncer"));
        try {
          await waitFor(async () => {
            const { rows } = await admin.query("SHOW POOLS");
            return rows.some((r) => r.database === "app" && Number(r.sv_idle) > 0);
          }, "the warm server to be idle");
        } finally {
          await admin.end();
        }
        return (await added(url, unhindered, ["wait_time"])).wait_time!;
      };
      expect([await waited(ours.url), await waited(theirs.url)]).toEqual([0, 0]);
    });

    // A transaction held open shows in the counts before its COMMIT, a long query before its end
    it("counts a transaction and a query as they start, as PgBouncer 1.18", async () => {
      const underWay = async (url: (db: string) => string): Promise<Counted> => {
        const admin = await connect(url("pgbouncer"));
        const inTx = await RawClient.connect(url("app"));
        const running = await RawClient.connect(url("app"));
        try {
          const columns = ["xact_count", "query_count"];
          const before = await counted(admin, columns);
          await inTx.exchange([query("BEGIN")]);
          await inTx.exchange([query("SELECT 1")]);
          running.send(query("SELECT pg_sleep(0.6)"));
          await sleep(300);
          const during = await counted(admin, columns);
          await running.untilReady();
          await inTx.exchange([query("COMMIT")]);
          return Object.fromEntries(columns.map((k) => [k, during[k]! - before[k]!]));
        } finally {
          await Promise.all([inTx.close(), running.close(), admin.end()]);
        }
      };
      const mine = await underWay(ours.url);
      expect(mine).toEqual({ xact_count: 2, query_count: 3 });
      expect(mine).toEqual(await underWay(theirs.url));
    });

    // A client that sends an extended-protocol query with a Flush and reads its rows before its Sync
    it("counts a batch not yet ended by a Sync as it starts, as PgBouncer 1.18", async () => {
      const flushed = async (url: (db: string) => string): Promise<Counted[]> => {
        const admin = await connect(url("pgbouncer"));
        const c = await RawClient.connect(url("app"));
        try {
          const columns = ["xact_count", "query_count"];
          const before = await counted(admin, columns);
          c.send(parse("", "SELECT 1"), bind("", ""), execute(), flush());
          // ParseComplete, BindComplete, DataRow, CommandComplete: the query has run
          await c.take(4);
          const during = await counted(admin, columns);
          await c.exchange([sync()]);
          const after = await counted(admin, columns);
          return [during, after].map((at) =>
            Object.fromEntries(columns.map((k) => [k, at[k]! - before[k]!])),
          );
        } finally {
          await Promise.all([c.close(), admin.end()]);
        }
      };
      const mine = await flushed(ours.url);
      const counts = { xact_count: 1, query_count: 1 };
      expect(mine).toEqual([counts, counts]);
      expect(mine).toEqual(await flushed(theirs.url));
    });

    it("counts pipelined queries one each, where PgBouncer 1.18 counts one per run of them (README)", async () => {
      const pipeline = async (url: string): Promise<void> => {
        const c = await RawClient.connect(url);
        const one = (sql: string): Buffer[] => [parse("", sql), bind("", ""), execute(), sync()];
        await c.exchange([...one("SELECT 1"), ...one("SELECT 2"), ...one("SELECT 3")], 3);
        await c.close();
      };
      const mine = await added(ours.url, pipeline);
      const pgbouncer = await added(theirs.url, pipeline);
      expect([mine.query_count, pgbouncer.query_count]).toEqual([3, 1]);
      expect({ ...mine, query_count: 0 }).toEqual({ ...pgbouncer, query_count: 0 });
    });

    // last: it leaves the server's application_name set, which PgBouncer would set back for the next client
    it("does not count the reply to the SET that gives a server the client's parameters, where PgBouncer 1.18 does (README)", async () => {
      const named = async (url: string): Promise<void> => {
        const c = await RawClient.connect(url, { application_name: "aaa" });
        await c.exchange([query("SELECT 1")]);
        await c.close();
      };
      const mine = await added(ours.url, named);
      const pgbouncer = await added(theirs.url, named);
      // CommandComplete SET, ParameterStatus application_name=aaa, ReadyForQuery
      const setReply = 9 + 26 + 6;
      expect({ ...mine, bytes_sent: mine.bytes_sent! + setReply }).toEqual(pgbouncer);
    });
  },
);

describe.skipIf(!hasPgBouncer())("SHOW STATS_TOTALS with server_check_query at every reuse", () => {
  it("does not count the check's reply, where PgBouncer 1.18 does (README)", async () => {
    const check = { query: "select 1", delay: "0" };
    const ours = await startTestPooler({
      ADMIN_USERS: "postgres",
      SERVER_CHECK_QUERY: check.query,
      SERVER_CHECK_DELAY: check.delay,
    });
    const theirs = await startPgBouncer(
      { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
      {
        pool_mode: "transaction",
        admin_users: "postgres",
        server_check_query: check.query,
        server_check_delay: check.delay,
      },
    );
    const reused = async (url: string): Promise<void> => {
      const c = await RawClient.connect(url);
      await c.exchange([query("SELECT 1")]);
      await c.close();
    };
    try {
      // the pool's server exists, idle: the scenario's query reuses it, checked first
      for (const url of [ours.url("app"), theirs.url("app")]) await reused(url);
      const mine = await added(ours.url, reused);
      const pgbouncer = await added(theirs.url, reused);
      // RowDescription ?column?, DataRow 1, CommandComplete SELECT 1, ReadyForQuery
      const checkReply = 34 + 12 + 14 + 6;
      expect({ ...mine, bytes_sent: mine.bytes_sent! + checkReply }).toEqual(pgbouncer);
    } finally {
      await ours.stop();
      await theirs.stop();
    }
  });
});

describe.skipIf(!hasPgBouncer())("a client waiting to log in for its pool's first server", () => {
  /** What the console says of the app pool's clients while one waits, its first server held back by PAUSE. */
  async function whileWaiting(url: (db: string) => string): Promise<Record<string, unknown>> {
    const admin = await connect(url("pgbouncer"));
    try {
      await admin.query("PAUSE");
      const client = connect(url("app"));
      await sleep(1100);
      const pool = (await admin.query("SHOW POOLS")).rows.find((r) => r.database === "app");
      const app = (what: string): Promise<string[]> =>
        admin
          .query(`SHOW ${what}`)
          .then((r) => r.rows.filter((c) => c.database === "app").map((c) => c.state));
      const clients = await app("CLIENTS");
      const sockets = await app("SOCKETS");
      const lists = (await admin.query("SHOW LISTS")).rows.filter((r) => r.list === "login_clients");
      await admin.query("RESUME");
      await (await client).end();
      const totals = (await admin.query("SHOW STATS_TOTALS")).rows.find((r) => r.database === "app");
      // its wait counts once it is in, as a wait in the queue would
      const waited = Number(totals.wait_time) >= 1_000_000;
      return { cl_waiting: pool.cl_waiting, maxwait: pool.maxwait, clients, sockets, lists, waited };
    } finally {
      await admin.end();
    }
  }

  it("is counted and listed as waiting, and its wait in wait_time, as PgBouncer 1.18's CL_WAITING_LOGIN (its maxwait too)", async () => {
    const ours = await startTestPooler({ ADMIN_USERS: "postgres" });
    const theirs = await startPgBouncer(
      { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
      { admin_users: "postgres" },
    );
    try {
      const mine = await whileWaiting(ours.url);
      // PgBouncer 1.18 leaves its maxwait at 0 for such a client; ours says how long it has waited
      expect(mine.maxwait).toBe(1);
      expect({ ...mine, maxwait: 0 }).toEqual(await whileWaiting(theirs.url));
    } finally {
      await ours.stop();
      await theirs.stop();
    }
  });

  it("waits while that server logs in, and the wait counts in wait_time, as PgBouncer 1.18", async () => {
    // every server's login held 400 ms on its way to PostgreSQL
    const slow = await relay(
      { host: "127.0.0.1", port: 0 },
      { host: "127.0.0.1", port: inject("pgPort") },
      400,
    );
    const server = new URL(inject("pgAppUrl"));
    server.port = String((slow.address() as net.AddressInfo).port);
    const ours = await startTestPooler({ ADMIN_USERS: "postgres", DATABASE_URL: server.toString() });
    const theirs = await startPgBouncer(
      { app: `host=127.0.0.1 port=${server.port} dbname=app` },
      { admin_users: "postgres" },
    );
    const firstClient = async (url: string): Promise<void> => {
      const c = await connect(url);
      // the server it logged in for is idle: no second wait
      await c.query("SELECT 1");
      await c.end();
    };
    try {
      const mine = (await added(ours.url, firstClient, ["wait_time"])).wait_time!;
      const pgbouncer = (await added(theirs.url, firstClient, ["wait_time"])).wait_time!;
      console.log(
        `wait_time of a client whose pool's first login took 400 ms, us: ours ${mine}, PgBouncer 1.18 ${pgbouncer}`,
      );
      for (const us of [mine, pgbouncer]) {
        expect(us).toBeGreaterThanOrEqual(390_000);
        expect(us).toBeLessThan(1_000_000);
      }
    } finally {
      await ours.stop();
      await theirs.stop();
      slow.close();
    }
  });
});
