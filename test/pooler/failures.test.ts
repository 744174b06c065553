// Nothing lost, nothing leaked: clients and servers that die at bad moments, malformed input.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  Msg,
  bind,
  cancelRequest,
  copyData,
  copyDone,
  copyFail,
  execute,
  flush,
  parse,
  parseErrorFields,
  query,
  startupMessage,
  sync,
} from "../../pooler/protocol/messages.ts";
import { connect, errorOf, rawExchange } from "../support/clients.ts";
import { hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { RawClient, errorOfReply, type Reply } from "../support/protocol.ts";
import { tcpSocket } from "../support/tcp-sockets.ts";
import { waitFor } from "../support/wait.ts";

const lockKey = 424242;

async function lockHolders(): Promise<number> {
  const c = await connect(inject("pgAppUrl"));
  try {
    const r = await c.query(
      "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1",
      [lockKey],
    );
    return r.rows[0].n;
  } finally {
    await c.end();
  }
}

/** The fields of each ErrorResponse in raw bytes a socket received (for raw-socket tests). */
function errorFields(buf: Buffer): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (let pos = 0; pos + 5 <= buf.length; pos += 1 + buf.readUInt32BE(pos + 1)) {
    if (buf[pos] === Msg.ErrorResponse)
      out.push(parseErrorFields(buf.subarray(pos, pos + 1 + buf.readUInt32BE(pos + 1))));
  }
  return out;
}

describe("failures", () => {
  let p: TestPooler;
  beforeAll(async () => {
    p = await startTestPooler({ DEFAULT_POOL_SIZE: "1" });
  });
  afterAll(() => p.stop());

  it("a client killed mid-transaction hands no transaction or lock to the next client", async () => {
    const a = await connect(p.url());
    await a.query("BEGIN");
    await a.query("SELECT pg_advisory_xact_lock($1)", [lockKey]);
    await a.query("CREATE TEMP TABLE leaked (x int)");
    const pid = (await a.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    // kill the socket without Terminate, as a crashed process would
    (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    const b = await connect(p.url());
    try {
      const r = await b.query("SELECT pg_backend_pid() AS pid, now() = statement_timestamp() AS fresh_xact");
      expect(r.rows[0].pid).toBe(pid); // pool of one: the same server, rolled back and reset
      expect(r.rows[0].fresh_xact).toBe(true);
      expect(await lockHolders()).toBe(0);
      expect((await b.query("SELECT to_regclass('pg_temp.leaked') AS t")).rows[0].t).toBeNull();
    } finally {
      await b.end();
    }
  });

  it("a client that leaves in the middle of a pipeline does not hand a busy server on", async () => {
    const first = await connect(p.url());
    const pidBefore = (await first.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    await first.end();
    // two queries in flight on the only server, then the client's socket dies
    const d = await connect(p.url());
    void d.query("SELECT pg_sleep(0.3)").catch(() => undefined);
    void d.query("SELECT 1").catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    (d as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    const e = await connect(p.url());
    try {
      const r = await e.query("SELECT 'mine' AS v, pg_backend_pid() AS pid");
      expect(r.rows[0].v).toBe("mine");
      // the busy server was closed, not reused
      expect(r.rows[0].pid).not.toBe(pidBefore);
    } finally {
      await e.end();
    }
  });

  it("a server that never answers the ROLLBACK after its client left is closed within server_connect_timeout", async () => {
    const q = await startTestPooler({
      DEFAULT_POOL_SIZE: "1",
      SERVER_CONNECT_TIMEOUT: "1",
      POOL_MODE: "session",
    });
    const a = await connect(q.url());
    await a.query("BEGIN");
    const pid: number = (await a.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    // the backend hangs (as behind a lost network) while its client leaves mid-transaction
    process.kill(pid, "SIGSTOP");
    try {
      await a.end();
      const b = await connect(q.url());
      try {
        const started = performance.now();
        const r = await b.query("SELECT pg_backend_pid() AS pid");
        const waited = performance.now() - started;
        console.log(`hung server: the next client waited ${waited.toFixed(0)} ms for a server (pool of one)`);
        expect(r.rows[0].pid).not.toBe(pid);
        // 1 s of server_connect_timeout, the janitor's 333 ms tick, a new login: not query_wait_timeout's 120 s
        expect(waited).toBeLessThan(5000);
      } finally {
        await b.end();
      }
    } finally {
      process.kill(pid, "SIGCONT");
      await q.stop();
    }
  }, 20_000);

  it("a server that dies while the pooler syncs a departed client's settings is not handed on", async () => {
    // transaction pooling: no reset query, the server would go straight to idle
    const q = await startTestPooler({ DEFAULT_POOL_SIZE: "1", SERVER_CONNECT_TIMEOUT: "1" });
    const warm = await connect(q.url());
    const pid: number = (await warm.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    await warm.end();
    // A's application_name differs from the server's: its server gets a sync first, which hangs
    const a = await connect(q.url(), { application_name: "leaver" });
    process.kill(pid, "SIGSTOP");
    try {
      void a.query("SELECT 1").catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
      (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      const w = await connect(q.url());
      try {
        // the janitor closes the hung server after server_connect_timeout; W gets a new one
        const r = await w.query("SELECT pg_backend_pid() AS pid");
        expect(r.rows[0].pid).not.toBe(pid);
      } finally {
        await w.end();
      }
    } finally {
      process.kill(pid, "SIGCONT");
      await q.stop();
    }
  }, 20_000);

  it("a client whose server dies while its parameters are set is served before a client that came after it; PgBouncer 1.18 ends it", async () => {
    // pool of one: the client B is handed the idle server, whose SET of B's application_name hangs
    // (the backend stopped, terminated meanwhile); C queues behind. Once the server dies, who of B
    // and C gets the next server first?
    async function serverLostAtLink(url: string): Promise<{ b: string; c: string; first: string }> {
      const a = await connect(url, { application_name: "a" });
      const pid: number = (await a.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      await a.end();
      const direct = await connect(inject("pgAppUrl"));
      const b = await connect(url, { application_name: "b" });
      const c = await connect(url, { application_name: "b" });
      for (const client of [b, c]) client.on("error", () => undefined);
      process.kill(pid, "SIGSTOP");
      let stopped = true;
      try {
        await direct.query("SELECT pg_terminate_backend($1)", [pid]);
        const at = (client: typeof b): Promise<string> =>
          client.query("SELECT clock_timestamp()::text AS t").then(
            (r) => r.rows[0].t as string,
            (err: Error) => `error: ${err.message}`,
          );
        const bAt = at(b);
        await new Promise((r) => setTimeout(r, 300));
        const cAt = at(c);
        await new Promise((r) => setTimeout(r, 300));
        process.kill(pid, "SIGCONT");
        stopped = false;
        const [bGot, cGot] = await Promise.all([bAt, cAt]);
        return { b: bGot, c: cGot, first: bGot < cGot ? "b" : "c" };
      } finally {
        if (stopped) process.kill(pid, "SIGCONT");
        await Promise.all([b, c, direct].map((client) => client.end().catch(() => undefined)));
      }
    }
    const q = await startTestPooler({ DEFAULT_POOL_SIZE: "1" });
    try {
      const ours = await serverLostAtLink(q.url());
      // nothing of B's reached the server: B keeps its place in the queue, ahead of C
      expect(ours.b).not.toMatch(/^error/);
      expect(ours.c).not.toMatch(/^error/);
      expect(ours.first).toBe("b");
    } finally {
      await q.stop();
    }
    if (!hasPgBouncer()) return;
    const theirs = await startPgBouncer(
      { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
      { default_pool_size: 1, pool_mode: "transaction" },
    );
    try {
      const got = await serverLostAtLink(theirs.url("app"));
      console.log(`PgBouncer 1.18, server lost while it sets B's parameters: B ${got.b}; C ${got.c}`);
      expect(got.b).toMatch(/^error/);
      expect(got.c).not.toMatch(/^error/);
    } finally {
      await theirs.stop();
    }
  }, 30_000);

  it("a client queued again after its server died at the link shows its whole wait in SHOW POOLS and SHOW CLIENTS", async () => {
    // As above, B's server dies while its application_name is set; the pool is paused meanwhile,
    // so B stays queued again and the console can be asked how long it has waited.
    const q = await startTestPooler({ DEFAULT_POOL_SIZE: "1" });
    const admin = await connect(q.url("pgbouncer"));
    const direct = await connect(inject("pgAppUrl"));
    const a = await connect(q.url(), { application_name: "a" });
    const pid: number = (await a.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    await a.end();
    const b = await connect(q.url(), { application_name: "b" });
    b.on("error", () => undefined);
    process.kill(pid, "SIGSTOP");
    let stopped = true;
    try {
      await direct.query("SELECT pg_terminate_backend($1)", [pid]);
      const asked = Date.now();
      const bDone = b.query("SELECT 1 AS one");
      await new Promise((r) => setTimeout(r, 400));
      const paused = admin.query("PAUSE app");
      await new Promise((r) => setTimeout(r, 100));
      process.kill(pid, "SIGCONT");
      stopped = false;
      await paused;
      const floor = (Date.now() - asked - 50) * 1000;
      const pool = (await admin.query("SHOW POOLS")).rows.find((row) => row.database === "app");
      expect(pool.cl_waiting).toBe(1);
      expect(Number(pool.maxwait) * 1e6 + Number(pool.maxwait_us)).toBeGreaterThan(floor);
      const client = (await admin.query("SHOW CLIENTS")).rows.find((row) => row.application_name === "b");
      expect(client.state).toBe("waiting");
      expect(Number(client.wait) * 1e6 + Number(client.wait_us)).toBeGreaterThan(floor);
      await admin.query("RESUME app");
      expect((await bDone).rows).toEqual([{ one: 1 }]);
    } finally {
      if (stopped) process.kill(pid, "SIGCONT");
      await Promise.all([b, direct, admin].map((client) => client.end().catch(() => undefined)));
      await q.stop();
    }
  }, 20_000);

  it("a slow reset past server_connect_timeout is canceled on the backend, not left running past the pool's size", async () => {
    const q = await startTestPooler({
      DEFAULT_POOL_SIZE: "1",
      SERVER_CONNECT_TIMEOUT: "1",
      POOL_MODE: "session",
      SERVER_RESET_QUERY: "SELECT pg_sleep(8) /* slow reset */",
    });
    const direct = await connect(inject("pgAppUrl"));
    const resetting = async (): Promise<number> =>
      (
        await direct.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%/* slow reset */' AND pid <> pg_backend_pid()",
        )
      ).rows[0]!.n;
    try {
      const a = await connect(q.url());
      await a.query("SELECT 1");
      await a.end(); // the reset starts
      await waitFor(async () => (await resetting()) === 1, "the reset to run", 2000);
      const started = performance.now();
      await waitFor(async () => (await resetting()) === 0, "the reset to be canceled", 6000);
      const ran = performance.now() - started;
      console.log(
        `slow reset: canceled on the backend after ${ran.toFixed(0)} ms (pg_sleep(8), server_connect_timeout 1 s)`,
      );
      expect(ran).toBeLessThan(6000);
    } finally {
      await direct.end();
      await q.stop();
    }
  }, 20_000);

  // the system's idle time, in ss's minutes: libuv's own 60 s would show as "59sec" on a server socket
  const systemIdle = Number(readFileSync("/proc/sys/net/ipv4/tcp_keepalive_time", "utf8"));
  it.each([
    ["TCP_KEEPIDLE=7", { TCP_KEEPIDLE: "7" }, /timer:\(keepalive,[0-7](\.\d+)?(sec|ms)/],
    ["TCP_KEEPALIVE=0", { TCP_KEEPALIVE: "0" }, /^(?![\s\S]*keepalive)/],
    ["the defaults", {}, new RegExp(`timer:\\(keepalive,${Math.floor((systemIdle - 1) / 60)}min`)],
  ])(
    "%s applies to server connections and to clients' (the kernel's keepalive timer, by ss)",
    async (_, env, timer) => {
      const q = await startTestPooler(env);
      const c = await connect(q.url());
      const admin = await connect(q.url("pgbouncer"));
      try {
        await c.query("BEGIN"); // keeps the server linked, so SHOW SERVERS lists it
        const server = (await admin.query<{ port: number; local_port: number }>("SHOW SERVERS")).rows[0]!;
        const client = (await admin.query<{ database: string; port: number }>("SHOW CLIENTS")).rows.find(
          (r) => r.database !== "pgbouncer",
        )!;
        expect(tcpSocket(server.local_port, server.port)).toMatch(/\S/);
        expect(tcpSocket(server.local_port, server.port)).toMatch(timer);
        // the client's ACK of BEGIN's reply may be delayed (up to 40 ms): until then ss shows the retransmit timer
        await waitFor(() => timer.test(tcpSocket(q.port, client.port)), "the client socket's timer", 2000);
      } finally {
        await c.end();
        await admin.end();
        await q.stop();
      }
    },
  );

  it("a server terminated mid-query: its FATAL reaches the client once, the pool replaces it", async () => {
    const a = await connect(p.url());
    const pid = (await a.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    // errorOf at once: the FATAL may arrive while admin.end() is awaited, and must not count as unhandled
    const slow = errorOf(a.query("SELECT pg_sleep(5)"));
    await new Promise((r) => setTimeout(r, 200));
    const admin = await connect(inject("pgAppUrl"));
    await admin.query("SELECT pg_terminate_backend($1)", [pid]);
    await admin.end();
    const err = await slow;
    expect(err.message).toMatch(/terminating connection due to administrator command/);
    expect(err.code).toBe("57P01");
    const b = await connect(p.url());
    try {
      const r = await b.query("SELECT pg_backend_pid() AS pid");
      expect(r.rows[0].pid).not.toBe(pid);
    } finally {
      await b.end();
      await a.end().catch(() => undefined);
    }
  });

  it("answers garbage before startup with 08P01 and keeps serving everyone else", async () => {
    const reply = await rawExchange(p.port, Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const [fields] = errorFields(reply);
    expect(fields?.get("C")).toBe("08P01");
    expect(fields?.get("S")).toBe("FATAL");
    const c = await connect(p.url());
    expect((await c.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    await c.end();
  });

  it("refuses a message with a nonsense length after login with 08P01", async () => {
    const c = await connect(p.url());
    const stream = (c as unknown as { connection: { stream: { write(b: Buffer): void } } }).connection.stream;
    const closed = new Promise<Error>((resolve) => c.once("error", resolve));
    stream.write(Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff]));
    const err = await closed;
    expect((err as Error & { code?: string }).code).toBe("08P01");
    const d = await connect(p.url());
    expect((await d.query("SELECT 2 AS two")).rows[0].two).toBe(2);
    await d.end();
  });

  it("refuses an unknown startup parameter and an unknown database with clear errors", async () => {
    const notASetting = await rawExchange(
      p.port,
      startupMessage({ user: "postgres", database: "app", "frob nicate": "1" }),
    );
    expect(errorFields(notASetting)[0]?.get("M")).toBe("unsupported startup parameter: frob nicate");
    // what could be a setting is PostgreSQL's to judge, at login, as when connecting directly
    const unknownSetting = await errorOf(connect(p.url(), { options: "-c frobnicate=1" }));
    expect(unknownSetting.code).toBe("42704");
    expect(unknownSetting.message).toBe('unrecognized configuration parameter "frobnicate"');
    const err = await errorOf(connect(p.url("nope_db")));
    // DATABASE_URL without a "*" entry: only its database exists behind the pooler
    expect(err.message).toMatch(/no such database: nope_db/);
  });

  it("a client asking for replication is refused, unless ignore_startup_parameters lists it: then it is let in as any other, as PgBouncer 1.18", async () => {
    // node-postgres sends it as a startup parameter; its types do not list it
    const replication = { replication: "database" } as Parameters<typeof connect>[1];
    const refused = await errorOf(connect(p.url(), replication));
    expect([refused.code, refused.message]).toEqual([
      "0A000",
      "replication connections are not supported by the pooler",
    ]);
    const ignoring = { ignore_startup_parameters: "extra_float_digits,replication" };
    const asked = async (url: string): Promise<number> => {
      const c = await connect(url, replication);
      try {
        return (await c.query("SELECT 1 AS one")).rows[0].one;
      } finally {
        await c.end();
      }
    };
    const q = await startTestPooler({ IGNORE_STARTUP_PARAMETERS: ignoring.ignore_startup_parameters });
    try {
      expect(await asked(q.url())).toBe(1);
    } finally {
      await q.stop();
    }
    if (!hasPgBouncer()) return;
    const b = await startPgBouncer({ app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` }, ignoring);
    try {
      expect(await asked(b.url("app"))).toBe(1);
    } finally {
      await b.stop();
    }
  });

  it("refuses a wrong password with 28P01, as PostgreSQL", async () => {
    const err = await errorOf(connect(p.url().replace("postgres:postgres@", "postgres:wrong@")));
    expect(err.code).toBe("28P01");
    expect(err.message).toBe('password authentication failed for user "postgres"');
  });

  it("does not crash on a query sent before authentication completes", async () => {
    const reply = await rawExchange(
      p.port,
      Buffer.concat([startupMessage({ user: "postgres", database: "app" }), query("SELECT 1")]),
    );
    const fields = errorFields(reply);
    expect(fields[0]?.get("C")).toBe("08P01");
  });

  it("a password message without its terminating NUL costs that client its connection, not the pooler", async () => {
    const broken = Buffer.from([0x70, 0, 0, 0, 4]); // 'p' with an empty body
    const reply = await rawExchange(
      p.port,
      Buffer.concat([startupMessage({ user: "postgres", database: "app" }), broken]),
    );
    expect(errorFields(reply)[0]?.get("C")).toBe("08P01");
    const c = await connect(p.url());
    expect((await c.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    await c.end();
  });

  it("a Bind whose statement name has no NUL, after login, gets 08P01; the pooler keeps serving", async () => {
    const c = await connect(p.url());
    const stream = (c as unknown as { connection: { stream: { write(b: Buffer): void } } }).connection.stream;
    const closed = new Promise<Error & { code?: string }>((resolve) => c.once("error", resolve));
    stream.write(Buffer.from([0x42, 0, 0, 0, 5, 0x78])); // Bind, body "x" without NUL
    expect((await closed).code).toBe("08P01");
    const d = await connect(p.url());
    expect((await d.query("SELECT 2 AS two")).rows[0].two).toBe(2);
    await d.end();
  });

  it("cancel requests do not leave clients behind (they would count against max_client_conn)", async () => {
    const before = p.pooler.clients.size;
    for (let i = 0; i < 20; i++) await rawExchange(p.port, cancelRequest(1, 2), 500);
    await new Promise((r) => setTimeout(r, 100));
    expect(p.pooler.clients.size).toBe(before);
  });
});

describe("COPY FROM STDIN with a Sync behind its Execute (libpq's PQexecParams)", () => {
  it.each(["transaction", "session"])(
    "%s mode: no reply is owed for that Sync — the server goes back, query_timeout stays quiet while idle",
    async (mode) => {
      const admin = await connect(inject("pgAppUrl"));
      await admin.query("CREATE TABLE IF NOT EXISTS pooler_copy_sync (n int)");
      await admin.end();
      const tp = await startTestPooler({ POOL_MODE: mode, DEFAULT_POOL_SIZE: "1", QUERY_TIMEOUT: "1" });
      const c = await RawClient.connect(tp.url());
      try {
        c.send(parse("", "COPY pooler_copy_sync FROM STDIN"), bind("", ""), execute(), sync());
        expect((await c.take(3)).map((m) => m.type)).toEqual(["1", "2", "G"]);
        c.send(copyData(Buffer.from("7\n")), copyDone(), sync());
        expect((await c.untilReady()).map((m) => m.type)).toEqual(["C", "Z"]);
        const pool = [...tp.pooler.pools.values()][0]!;
        // transaction mode: the server is free again; session mode: kept, but not busy
        expect(pool.active.size).toBe(mode === "transaction" ? 0 : 1);
        expect(pool.allServers().every((s) => s.pendingReplies === 0)).toBe(true);
        await new Promise((r) => setTimeout(r, 1500)); // past query_timeout, idle
        const replies = await c.exchange([parse("s", "SELECT 42 AS n"), bind("", "s"), execute(), sync()]);
        expect(replies.map((m) => m.type)).toEqual(["1", "2", "D", "C", "Z"]);
      } finally {
        c.destroy();
        await tp.stop();
      }
    },
  );
});

describe("pipelines whose messages PostgreSQL skips or ignores (transaction pooling, one server)", () => {
  let p: TestPooler;
  beforeAll(async () => {
    const admin = await connect(inject("pgAppUrl"));
    await admin.query("CREATE TABLE IF NOT EXISTS pooler_copy_pipelined (n int)");
    // a COPY that PostgreSQL takes its time over: the client's next message reaches the pooler first
    await admin.query("CREATE TABLE IF NOT EXISTS pooler_copy_slow (n int)");
    await admin.query(
      "CREATE OR REPLACE FUNCTION pooler_copy_slow_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$",
    );
    await admin.query("DROP TRIGGER IF EXISTS slow ON pooler_copy_slow");
    await admin.query(
      "CREATE TRIGGER slow BEFORE INSERT ON pooler_copy_slow FOR EACH ROW EXECUTE FUNCTION pooler_copy_slow_row()",
    );
    await admin.end();
    p = await startTestPooler({ DEFAULT_POOL_SIZE: "1", QUERY_WAIT_TIMEOUT: "2" });
  });
  afterAll(() => p.stop());

  const owed = (): number[] => [...p.pooler.pools.values()][0]!.allServers().map((s) => s.pendingReplies);
  const types = (replies: { type: string }[]): string => replies.map((m) => m.type).join("");

  it("a Query behind a failed Parse is skipped to the Sync: no reply is owed for it, the server goes back", async () => {
    const a = await RawClient.connect(p.url());
    try {
      expect(types(await a.exchange([parse("", "SELEC 1"), query("SELECT 1"), sync()]))).toBe("EZ");
      expect(owed()).toEqual([0]);
      await anotherClientIsServed(p.url());
    } finally {
      a.destroy();
    }
  });

  it("a Query skipped behind a failed Parse, no Sync yet: the server skips to that Sync, so the client keeps it", async () => {
    const a = await RawClient.connect(p.url());
    try {
      a.send(parse("", "SELEC 1"), flush());
      expect(types(await a.take(1))).toBe("E");
      a.send(query("SELECT 1")); // skipped: no reply
      // the only server ignores everything until a's Sync: another client must wait for it
      const b = await connect(p.url());
      const other = b.query("SELECT 2 AS n");
      await new Promise((r) => setTimeout(r, 100));
      expect(types(await a.exchange([sync()]))).toBe("Z");
      expect((await other).rows[0].n).toBe(2);
      await b.end();
      expect(owed()).toEqual([0]);
    } finally {
      a.destroy();
    }
  });

  it("a COPY FROM STDIN sent whole, a Sync behind its Execute and one behind its CopyDone: the second is owed", async () => {
    const a = await RawClient.connect(p.url());
    a.send(
      parse("", "COPY pooler_copy_pipelined FROM STDIN"),
      bind("", ""),
      execute(),
      sync(), // ignored: it arrives during the COPY
      copyData(Buffer.from("1\n")),
      copyDone(),
      sync(), // answered
    );
    expect(types(await a.untilReady())).toBe("12GCZ");
    expect(owed()).toEqual([0]);
    await a.close();
    // the next client's second reply must reach it, not be dropped by a server given back too early
    const b = await RawClient.connect(p.url());
    try {
      b.send(query("SELECT pg_sleep(0.2)"), query("SELECT 'second'"));
      expect(types(await b.untilReady(2))).toBe("TDCZTDCZ");
    } finally {
      b.destroy();
    }
  });

  it("a Sync sent behind a simple-query COPY is ignored by PostgreSQL: the next client's replies keep their order", async () => {
    // a statement the server keeps: the next client's Parse of it is answered by the pooler
    const setup = await connect(p.url());
    await setup.query({ name: "known", text: "SELECT 'known' AS k" });
    await setup.end();
    const a = await RawClient.connect(p.url());
    a.send(query("COPY pooler_copy_pipelined FROM STDIN"), sync());
    expect(types(await a.take(1))).toBe("G");
    a.send(copyData(Buffer.from("2\n")), copyDone());
    expect(types(await a.untilReady())).toBe("CZ");
    await a.close();
    const b = await RawClient.connect(p.url());
    try {
      const replies = await b.exchange([parse("k", "SELECT 'known' AS k"), bind("", "k"), execute(), sync()]);
      expect(types(replies)).toBe("12DCZ");
    } finally {
      b.destroy();
    }
  });

  it("a COPY FROM STDIN that fails while the client is half-way through a CopyData gives the server back once the message ends", async () => {
    const a = await RawClient.connect(p.url());
    try {
      a.send(query("COPY pooler_copy_pipelined FROM STDIN"));
      expect(types(await a.take(1))).toBe("G");
      const next = copyData(Buffer.from("3\n"));
      // a bad row, then a message cut short: PostgreSQL's ReadyForQuery comes while it is unfinished
      a.send(copyData(Buffer.from("not a number\n")), next.subarray(0, 3));
      expect(types(await a.untilReady())).toBe("EZ");
      a.send(next.subarray(3)); // PostgreSQL ignores it, as any CopyData outside a COPY: nothing owed
      await anotherClientIsServed(p.url());
    } finally {
      a.destroy();
    }
  });

  it("a COPY FROM STDIN whose Sync came behind its Execute keeps its server between CopyData writes", async () => {
    const a = await RawClient.connect(p.url());
    try {
      a.send(parse("", "COPY pooler_copy_pipelined FROM STDIN"), bind("", ""), execute(), sync());
      expect(types(await a.take(3))).toBe("12G");
      a.send(copyData(Buffer.from("5\n")));
      // another client wants the only server meanwhile: it must wait for the COPY to end
      const b = await connect(p.url());
      const other = b.query("SELECT 6 AS n");
      await new Promise((r) => setTimeout(r, 100));
      a.send(copyDone(), sync());
      expect(types(await a.untilReady())).toBe("CZ");
      expect((await other).rows[0].n).toBe(6);
      await b.end();
    } finally {
      a.destroy();
    }
  });

  it.each([
    ["its CopyDone", copyDone(), "CZ"],
    ["a Query, which PostgreSQL fails the COPY on (08P01)", query("SELECT 1"), "EZ"],
  ])(
    "an Execute's COPY with %s sent before its CopyInResponse, then a Sync while PostgreSQL still copies: that Sync is owed",
    async (_, behind, replies) => {
      const a = await RawClient.connect(p.url());
      try {
        const copy = [parse("", "COPY pooler_copy_slow FROM STDIN"), bind("", ""), execute(), sync()];
        a.send(...copy, copyData(Buffer.from("1\n")), behind); // that Sync is ignored
        expect(types(await untilCopyIn(a))).toBe("12G");
        a.send(sync()); // PostgreSQL reads it once the row's trigger is done, after `behind`: answered
        expect(types(await a.untilReady())).toBe(replies);
        expect(owed()).toEqual([0]);
        // a reply owed but not counted would let the server go while this query runs
        a.send(query("SELECT pg_sleep(0.3)"));
        await new Promise((r) => setTimeout(r, 50));
        a.destroy();
        await anotherClientIsServed(p.url());
      } finally {
        a.destroy();
      }
    },
  );

  it("a Query of two COPYs, the first sent whole, the second broken off by a Query (08P01): nothing stays owed", async () => {
    const a = await RawClient.connect(p.url());
    try {
      const copy = "COPY pooler_copy_pipelined FROM STDIN";
      a.send(query(`${copy}; ${copy}`), copyData(Buffer.from("1\n")), copyDone());
      expect(types(await untilCopyIn(a))).toBe("G");
      expect(types(await untilCopyIn(a))).toBe("CG");
      a.send(copyData(Buffer.from("2\n")), query("SELECT 1")); // consumed by the second COPY
      expect(types(await a.untilReady())).toBe("EZ");
      expect(owed()).toEqual([0]);
      await anotherClientIsServed(p.url());
    } finally {
      a.destroy();
    }
  });

  // (was: the first COPY's CopyInResponse took both CopyDones for its own, the second COPY counted
  // as running, the Sync as ignored: the server went back owing -1, and then released its next
  // client's server before the second of two pipelined Queries was answered)
  it("a Query of two COPYs, both sent whole, then a Sync during the second: that Sync is owed", async () => {
    const a = await RawClient.connect(p.url());
    try {
      const copy = "COPY pooler_copy_slow FROM STDIN";
      const row = copyData(Buffer.from("1\n"));
      a.send(query(`${copy}; ${copy}`), row, copyDone(), row, copyDone());
      expect(types(await untilCopyIn(a))).toBe("G");
      expect(types(await untilCopyIn(a))).toBe("CG");
      a.send(sync()); // PostgreSQL reads it once the second COPY, ended already, has run
      expect(types(await a.untilReady(2))).toBe("CZZ");
      expect(owed()).toEqual([0]);
      const b = await RawClient.connect(p.url());
      try {
        const replies = await b.exchange([query("SELECT pg_sleep(0.2)"), query("SELECT 2 AS two")], 2);
        expect(types(replies)).toBe("TDCZTDCZ");
      } finally {
        b.destroy();
      }
    } finally {
      a.destroy();
    }
  });

  it("a Query of two COPYs sent whole with a Sync behind each CopyDone: the first Sync, read during the second COPY, is ignored", async () => {
    const a = await RawClient.connect(p.url());
    try {
      const copy = "COPY pooler_copy_pipelined FROM STDIN";
      const row = copyData(Buffer.from("1\n"));
      a.send(query(`${copy}; ${copy}`), row, copyDone(), sync(), row, copyDone(), sync());
      expect(types(await a.untilReady(2))).toBe("GCGCZZ");
      expect(owed()).toEqual([0]);
      await anotherClientIsServed(p.url());
    } finally {
      a.destroy();
    }
  });

  // (was: that CopyDone counted as ending a COPY yet to start too, so the Sync was taken as owed)
  it("a Query of two COPYs, a Sync sent behind the first's CopyDone during it: read during the second COPY, it is ignored", async () => {
    const a = await RawClient.connect(p.url());
    try {
      const copy = "COPY pooler_copy_pipelined FROM STDIN";
      const row = copyData(Buffer.from("1\n"));
      a.send(query(`${copy}; ${copy}`));
      expect(types(await untilCopyIn(a))).toBe("G");
      a.send(row, copyDone(), sync());
      expect(types(await untilCopyIn(a))).toBe("CG");
      expect(types(await a.exchange([row, copyDone()]))).toBe("CZ");
      expect(owed()).toEqual([0]);
      await anotherClientIsServed(p.url());
    } finally {
      a.destroy();
    }
  });

  it("a client that leaves during a COPY FROM STDIN whose Sync came behind its Execute leaves no server in COPY to the next", async () => {
    const a = await RawClient.connect(p.url());
    a.send(parse("", "COPY pooler_copy_pipelined FROM STDIN"), bind("", ""), execute(), sync());
    expect(types(await a.take(3))).toBe("12G");
    a.destroy();
    await new Promise((r) => setTimeout(r, 100));
    await anotherClientIsServed(p.url());
  });
});

describe("COPY FROM STDIN broken off by the client: a Query (08P01) or a CopyFail", () => {
  let p: TestPooler;
  beforeAll(async () => {
    const admin = await connect(inject("pgAppUrl"));
    await admin.query("CREATE TABLE IF NOT EXISTS pooler_copy_intruded (n int)");
    await admin.end();
    p = await startTestPooler({ DEFAULT_POOL_SIZE: "1", QUERY_WAIT_TIMEOUT: "2" });
  });
  afterAll(() => p.stop());

  const copySql = "COPY pooler_copy_intruded FROM STDIN";
  const starts = {
    "a Query": [query(copySql)],
    "an Execute with a Sync behind it": [parse("", copySql), bind("", ""), execute(), sync()],
    "an Execute alone": [parse("", copySql), bind("", ""), execute(), flush()],
  };
  // PostgreSQL consumes the message that breaks the COPY, answers the COPY with the error, then
  // ReadyForQuery: at once after a Query, at the client's next Sync after an Execute
  const endings = {
    "a Query (08P01)": { end: [query("SELECT 1")], code: "08P01" },
    "a CopyFail (57014)": { end: [copyFail("given up")], code: "57014" },
  };
  const cases = Object.entries(starts).flatMap(([start, begin]) =>
    Object.entries(endings).map(([ending, e]) => ({
      start,
      begin,
      ending,
      ...e,
      simple: start === "a Query",
    })),
  );

  it.each(cases)(
    "started by $start, ended by $ending: the server goes back while the client stays, clean",
    async ({ begin, end, code, simple }) => {
      const a = await RawClient.connect(p.url());
      try {
        a.send(...begin);
        await untilCopyIn(a);
        a.send(copyData(Buffer.from("1\n")), ...end);
        const [error] = simple ? await a.untilReady() : await a.take(1);
        expect(errorOfReply(error!).get("C")).toBe(code);
        if (!simple) expect((await a.exchange([sync()])).map((m) => m.type)).toEqual(["Z"]);
        expect([...p.pooler.pools.values()][0]!.allServers().map((s) => s.pendingReplies)).toEqual([0]);
        await anotherClientIsServed(p.url());
        // and the client itself goes on, its replies its own
        const replies = await a.exchange([query("SELECT 'mine'")]);
        expect(replies.map((m) => m.type).join("")).toBe("TDCZ");
      } finally {
        a.destroy();
      }
    },
  );

  describe("an Execute's COPY with a Sync and a request pipelined behind it, before its CopyInResponse", () => {
    // the request reaches PostgreSQL during the COPY and breaks it (08P01); whatever the client
    // ends the COPY with is ignored, a Sync answers the Execute's error
    const pipelined = {
      "a Query": [query("SELECT 1")],
      "a Parse, Bind, Execute and Sync": [parse("", "SELECT 1"), bind("", ""), execute(), sync()],
    };
    const endings = { "a CopyDone": [copyDone()], "a CopyFail": [copyFail("given up")], nothing: [] };
    const cases = Object.entries(pipelined).flatMap(([request, behind]) =>
      Object.entries(endings).map(([ending, end]) => ({ request, behind, ending, end })),
    );
    async function run(
      url: string,
      behind: Buffer[],
      ending: Buffer[],
    ): Promise<{ a: RawClient; replies: string; codes: string[] }> {
      const a = await RawClient.connect(url);
      a.send(parse("", copySql), bind("", ""), execute(), sync(), ...behind);
      const start = await untilCopyIn(a);
      a.send(...ending, sync());
      // a ReadyForQuery for each Sync sent behind what broke the COPY
      const got = [...start, ...(await a.untilReady(1 + behind.filter((m) => m[0] === Msg.Sync).length))];
      const codes = got.filter((m) => m.type === "E").map((m) => errorOfReply(m).get("C")!);
      return { a, replies: got.map((m) => m.type).join(""), codes };
    }

    it.each(cases)(
      "$request, ended by $ending, then a Sync: the replies are PostgreSQL's, the server goes back",
      async ({ behind, end }) => {
        const direct = await run(inject("pgAppUrl"), behind, end);
        direct.a.destroy();
        const { a, replies, codes } = await run(p.url(), behind, end);
        try {
          expect({ replies, codes }).toEqual({ replies: direct.replies, codes: direct.codes });
          expect([...p.pooler.pools.values()][0]!.allServers().map((s) => s.pendingReplies)).toEqual([0]);
          await anotherClientIsServed(p.url());
          expect((await a.exchange([query("SELECT 'mine'")])).map((m) => m.type).join("")).toBe("TDCZ");
        } finally {
          a.destroy();
        }
      },
    );
  });

  /** The Query that broke the COPY off was consumed by it (08P01): nothing stays owed, the server goes back. */
  async function consumedByCopy(replies: Reply[], expected: string): Promise<void> {
    expect(replies.map((m) => m.type).join("")).toBe(expected);
    expect(errorOfReply(replies.find((m) => m.type === "E")!).get("C")).toBe("08P01");
    expect([...p.pooler.pools.values()][0]!.allServers().map((s) => s.pendingReplies)).toEqual([0]);
    await anotherClientIsServed(p.url());
  }

  it("a Query sent right behind the COPY's, before its CopyInResponse: the same", async () => {
    const a = await RawClient.connect(p.url());
    try {
      a.send(query(copySql), query("SELECT 1"));
      await consumedByCopy(await a.untilReady(), "GEZ");
    } finally {
      a.destroy();
    }
  });

  it.each([
    ["a Sync", sync()],
    ["a Flush", flush()],
  ])(
    "%s during the COPY, which PostgreSQL ignores, then a Query (08P01): nothing is owed",
    async (_, ignored) => {
      const a = await RawClient.connect(p.url());
      try {
        a.send(query(copySql));
        await untilCopyIn(a);
        a.send(ignored);
        a.send(query("SELECT 1"));
        expect((await a.untilReady()).map((m) => m.type).join("")).toBe("EZ");
        expect([...p.pooler.pools.values()][0]!.allServers().map((s) => s.pendingReplies)).toEqual([0]);
        await anotherClientIsServed(p.url());
      } finally {
        a.destroy();
      }
    },
  );

  it.each([
    { start: "a Query", mode: "transaction", codes: ["08P01", "26000"] },
    { start: "an Execute alone", mode: "transaction", codes: ["08P01"] },
    { start: "a Query", mode: "session", codes: ["08P01", "26000"] },
    { start: "an Execute alone", mode: "session", codes: ["08P01"] },
  ])(
    "$mode pooling, started by $start: a Parse breaks it, the Sync behind is read as usual and owed",
    async ({ start, mode, codes }) => {
      const tp = mode === "session" ? await startTestPooler({ POOL_MODE: "session" }) : p;
      const a = await RawClient.connect(tp.url());
      try {
        a.send(...starts[start as keyof typeof starts]);
        await untilCopyIn(a);
        // one write, as a pipelining driver sends it: PostgreSQL fails the COPY on the Parse (and
        // after a simple COPY runs the Bind, of a statement that does not exist)
        a.send(parse("s1", "SELECT 1"), bind("", "s1"), execute(), sync());
        const replies = await a.untilReady(codes.length);
        expect(replies.filter((m) => m.type === "E").map((m) => errorOfReply(m).get("C"))).toEqual(codes);
        expect([...tp.pooler.pools.values()][0]!.allServers().map((s) => s.pendingReplies)).toEqual([0]);
        const again = await a.exchange([parse("s1", "SELECT 2"), bind("", "s1"), execute(), sync()]);
        expect(again.map((m) => m.type).join("")).toBe("12DCZ");
        if (mode === "transaction") await anotherClientIsServed(tp.url());
      } finally {
        a.destroy();
        if (tp !== p) await tp.stop();
      }
    },
  );

  it("a Parse (08P01), then a Sync: the Parse is never done, and the next client's replies are its own", async () => {
    const a = await RawClient.connect(p.url());
    a.send(query(copySql));
    await untilCopyIn(a);
    a.send(parse("", "SELECT 1"), sync());
    expect((await a.untilReady(2)).map((m) => m.type).join("")).toBe("EZZ");
    await a.close();
    const b = await RawClient.connect(p.url());
    try {
      const replies = await b.exchange([parse("", "SELECT 2"), bind("", ""), execute(), sync()]);
      expect(replies.map((m) => m.type).join("")).toBe("12DCZ");
    } finally {
      b.destroy();
    }
  });

  // (was: the CopyDone or CopyFail behind it was taken for the COPY's end, so PostgreSQL's 08P01
  // no longer said the Query was consumed: the server owed its client a reply for ever)
  it("a Query breaking a COPY, then a CopyDone or CopyFail and a Sync in the same write: the Query is consumed", async () => {
    for (const end of [copyDone(), copyFail("given up")]) {
      const a = await RawClient.connect(p.url());
      a.send(query(copySql));
      await untilCopyIn(a);
      a.send(query("SELECT 1"), copyData(Buffer.from("1\n")), end, sync()); // all but the Sync ignored
      await consumedByCopy(await a.untilReady(2), "EZZ").finally(() => a.destroy());
    }
  });

  it("a Query sent behind a bad row reaches PostgreSQL after the COPY failed on it: it runs, and is owed", async () => {
    const a = await RawClient.connect(p.url());
    try {
      a.send(query(copySql));
      await untilCopyIn(a);
      // one write: the pooler has both before the server's error (22P02) says the COPY is over
      a.send(copyData(Buffer.from("not a number\n")), query("SELECT 'after'"));
      const replies = await a.untilReady(2);
      expect(replies.map((m) => m.type).join("")).toBe("EZTDCZ");
      expect(errorOfReply(replies[0]!).get("C")).toBe("22P02");
      await anotherClientIsServed(p.url());
    } finally {
      a.destroy();
    }
  });

  it.each([
    [
      "a Query breaking a COPY during it, after a Flush",
      async (a: RawClient): Promise<string> => {
        a.send(query(copySql));
        await untilCopyIn(a);
        a.send(flush()); // ignored by PostgreSQL during a COPY: not the message that breaks it
        a.send(query("SELECT 1"));
        return (await a.untilReady()).map((m) => m.type).join("");
      },
      "EZ",
    ],
    [
      "a Query breaking a COPY, sent before its CopyInResponse",
      async (a: RawClient): Promise<string> => {
        a.send(query(copySql), query("SELECT 1"));
        const replies = (await a.untilReady()).map((m) => m.type).join("");
        a.send(copyData(Buffer.from("1\n")), copyDone()); // too late: PostgreSQL ignores them
        return replies;
      },
      "GEZ",
    ],
    [
      "a COPY sent whole with a Sync behind its CopyDone, then one with a Sync behind its Query",
      async (a: RawClient): Promise<string> => {
        a.send(query(copySql), copyData(Buffer.from("1\n")), copyDone(), sync());
        const whole = await a.untilReady(2);
        a.send(query(copySql), sync()); // ignored by PostgreSQL: it comes during the COPY
        const started = await untilCopyIn(a);
        const ended = await a.exchange([copyData(Buffer.from("2\n")), copyDone()]);
        return [...whole, ...started, ...ended].map((m) => m.type).join("");
      },
      "GCZZGCZ",
    ],
    [
      "an Execute's COPY with a Sync and a Query pipelined behind it, ended by a CopyDone and a Sync",
      async (a: RawClient): Promise<string> => {
        a.send(parse("", copySql), bind("", ""), execute(), sync(), query("SELECT 1"));
        const started = await untilCopyIn(a);
        const ended = await a.exchange([copyDone(), sync()]);
        return [...started, ...ended].map((m) => m.type).join("");
      },
      "12GEZ",
    ],
  ])(
    "session pooling, %s: nothing stays owed, so query_timeout stays quiet while idle",
    async (_, script, expected) => {
      const tp = await startTestPooler({ POOL_MODE: "session", DEFAULT_POOL_SIZE: "1", QUERY_TIMEOUT: "1" });
      const a = await RawClient.connect(tp.url());
      try {
        expect(await script(a)).toBe(expected);
        await new Promise((r) => setTimeout(r, 1500)); // past query_timeout, idle
        expect((await a.exchange([query("SELECT 'mine'")])).map((m) => m.type).join("")).toBe("TDCZ");
        expect([...tp.pooler.pools.values()][0]!.allServers().map((s) => s.pendingReplies)).toEqual([0]);
      } finally {
        a.destroy();
        await tp.stop();
      }
    },
  );
});

/** Reads up to the CopyInResponse. */
async function untilCopyIn(c: RawClient): Promise<Reply[]> {
  const got: Reply[] = [];
  while (got.at(-1)?.type !== "G") got.push(await c.next());
  return got;
}

/** The pool's only server went back to it: another client's query goes through. */
async function anotherClientIsServed(url: string): Promise<void> {
  const b = await connect(url);
  try {
    expect((await b.query("SELECT 42 AS n")).rows[0].n).toBe(42);
  } finally {
    await b.end();
  }
}
