// The pooler with real clients: psql, node-postgres (Client and Pool, simple and extended protocol),
// the three pool modes, parameters, cancel.
import net from "node:net";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { cancelRequest, query } from "../../pooler/protocol/messages.ts";
import {
  cancelKeyOf,
  cancelledSleep,
  connect,
  errorOf,
  psql,
  queriesHitAfterCancel,
  rawExchange,
} from "../support/clients.ts";
import { RawClient, type Reply } from "../support/protocol.ts";
import { freePort } from "../support/ports.ts";
import { hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";
import { openings, relay } from "../support/relay.ts";
import { waitFor } from "../support/wait.ts";

describe("transaction pooling", () => {
  let p: TestPooler;
  beforeAll(async () => {
    p = await startTestPooler({ DEFAULT_POOL_SIZE: "2", APPLICATION_NAME_ADD_HOST: "0" });
  });
  afterAll(() => p.stop());

  it("answers psql", async () => {
    const { stdout } = await psql(p.url(), "SELECT 40 + 2");
    expect(stdout.trim()).toBe("42");
  });

  it("runs simple and extended protocol queries from pg.Client", async () => {
    const c = await connect(p.url());
    try {
      expect((await c.query("SELECT 1 AS a")).rows).toEqual([{ a: 1 }]);
      expect((await c.query("SELECT $1::int + $2::int AS s", [2, 3])).rows).toEqual([{ s: 5 }]);
      const err = await errorOf(c.query("SELECT * FROM no_such_table"));
      expect(err.code).toBe("42P01");
      // the connection is still usable after an error
      expect((await c.query("SELECT 'ok' AS v")).rows[0].v).toBe("ok");
    } finally {
      await c.end();
    }
  });

  it("keeps a transaction on one server and shares servers between transactions", async () => {
    const a = await connect(p.url());
    const b = await connect(p.url());
    try {
      await a.query("BEGIN");
      const pidA = (await a.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      await a.query("SELECT 1");
      expect((await a.query("SELECT pg_backend_pid() AS pid")).rows[0].pid).toBe(pidA);
      await a.query("COMMIT");
      // 40 transactions from two clients fit in the pool of 2 server connections
      const pids = new Set<number>();
      for (let i = 0; i < 20; i++) {
        for (const c of [a, b]) pids.add((await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid);
      }
      expect(pids.size).toBeLessThanOrEqual(2);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("serves 500 concurrent clients with DEFAULT_POOL_SIZE=20 and never more than 20 server connections", async () => {
    const q = await startTestPooler({ DEFAULT_POOL_SIZE: "20", MAX_CLIENT_CONN: "600" });
    let maxSeen = 0;
    let sampling = true;
    // other test files share the server: count the backends serving this pooler's server connections
    const admin = await connect(inject("pgAdminUrl"));
    const sampler = (async () => {
      while (sampling) {
        const ports = [...q.pooler.pools.values()].flatMap((pool) =>
          pool.allServers().map((s) => s.socket.localPort),
        );
        const r = await admin.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'app' AND client_port = ANY($1::int[])",
          [ports],
        );
        maxSeen = Math.max(maxSeen, r.rows[0]!.n);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const clients = await Promise.all(Array.from({ length: 500 }, () => connect(q.url())));
      const results = await Promise.all(
        clients.map(async (c, i) => {
          await c.query("BEGIN");
          const r = await c.query("SELECT $1::int AS i, pg_sleep(0.01)", [i]);
          await c.query("COMMIT");
          return r.rows[0].i as number;
        }),
      );
      expect(results).toEqual(Array.from({ length: 500 }, (_, i) => i));
      await Promise.all(clients.map((c) => c.end()));
    } finally {
      sampling = false;
      await sampler;
      await admin.end();
      await q.stop();
    }
    expect(maxSeen).toBeGreaterThan(0);
    expect(maxSeen).toBeLessThanOrEqual(20);
  }, 60_000);

  /** What the server `c` is on now says its application_name and DateStyle are. */
  async function expectParams(c: pg.Client, applicationName: string, dateStyle: string): Promise<void> {
    expect((await c.query("SHOW application_name")).rows[0].application_name).toBe(applicationName);
    expect((await c.query("SHOW DateStyle")).rows[0].DateStyle).toBe(dateStyle);
  }

  it("gives each client its own parameters (application_name, DateStyle) whatever server it gets", async () => {
    const a = await connect(p.url(), { application_name: "alpha" } as pg.ClientConfig);
    const b = await connect(p.url());
    try {
      await a.query("SET DateStyle = 'German'");
      for (let i = 0; i < 5; i++) {
        await expectParams(b, "", "ISO, MDY");
        await expectParams(a, "alpha", "German, DMY");
      }
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("keeps a SET to one client even when another chose the same startup parameters", async () => {
    // the pooler keeps one copy of equal parameter sets: a SET must not reach the other client
    const app = { application_name: "twins" } as pg.ClientConfig;
    const a = await connect(p.url(), app);
    const b = await connect(p.url(), app);
    try {
      await a.query("SET DateStyle = 'German'");
      await a.query("SET application_name = 'twin-a'");
      for (let i = 0; i < 5; i++) {
        await expectParams(b, "twins", "ISO, MDY");
        await expectParams(a, "twin-a", "German, DMY");
      }
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("application_name_add_host appends the client's address, as PgBouncer", async () => {
    await withTestPooler({ APPLICATION_NAME_ADD_HOST: "1" }, async (q) => {
      const c = await connect(q.url(), { application_name: "app1" } as pg.ClientConfig);
      const name = (await c.query("SHOW application_name")).rows[0].application_name as string;
      expect(name).toMatch(/^app1 - 127\.0\.0\.1:\d+$/);
      await c.end();
    });
  });

  it("forwards a cancel request to the server the client is using", async () => {
    const c = await connect(p.url());
    try {
      const { err, ms } = await cancelledSleep(c, p.port);
      expect(err.code).toBe("57014");
      expect(ms).toBeLessThan(5000);
      expect((await c.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    } finally {
      await c.end();
    }
  });

  it("closes a cancel request's connection only once PostgreSQL has acted on it: the next query is not hit", async () => {
    // libpq's PQcancel returns at that close and psql sends its next query: closed at once, the
    // cancel still on its way canceled 26 of 30 such queries
    const c = await connect(p.url());
    try {
      expect(await queriesHitAfterCancel(c, p.port)).toBe(0);
    } finally {
      await c.end();
    }
  });

  it("under server_tls_sslmode=prefer, a server that refused TLS gets its cancel in plain text: no SSLRequest round trip first, as PgBouncer 1.18", async () => {
    // PgBouncer 1.18 sends its CancelRequest in plain text whatever the mode; with 500 ms each way
    // to PostgreSQL it canceled after 1006 ms, ours (an SSLRequest first) after 2017 ms
    const to = new URL(inject("pgAppUrl"));
    const proxy = await relay({ host: "127.0.0.1", port: 0 }, { host: to.hostname, port: Number(to.port) });
    const opened = openings(proxy);
    const { port } = proxy.address() as net.AddressInfo;
    try {
      const env = { DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${port}/app` };
      await withTestPooler(env, async (q) => {
        const c = await connect(q.url());
        try {
          expect((await cancelledSleep(c, q.port)).err.code).toBe("57014");
          // the server's login asked for TLS (prefer); its cancel did not
          expect(opened).toEqual(["SSLRequest", "CancelRequest"]);
        } finally {
          await c.end();
        }
      });
    } finally {
      proxy.close();
    }
  });

  it("keeps a cancel request's connection open while its cancel is on its way, counted in SHOW POOLS", async () => {
    await withHeldCancel(1000, async ({ q, closed, slept, admin }) => {
      const pool = (await admin.query("SHOW POOLS")).rows.find((r) => r.database === "app");
      expect(pool).toMatchObject({ cl_active_cancel_req: 1, sv_active_cancel: 1 });
      const { ms, bytes } = await closed;
      expect(bytes).toBe(0);
      expect(ms).toBeGreaterThanOrEqual(900);
      expect((await slept).code).toBe("57014");
      expect(q.pooler.clients.size).toBe(2);
    });
  });

  it("lists a held cancel request in SHOW CLIENTS as PgBouncer 1.18 does, not among SHOW LISTS' login_clients", async () => {
    // PgBouncer 1.18, measured: a row after its pool's clients, user (nouser), the pool's database,
    // state active_cancel_req; login_clients 0; SHOW SOCKETS leaves it out
    await withHeldCancel(1000, async ({ admin, closed }) => {
      const rows = async (what: string): Promise<Record<string, unknown>[]> =>
        (await admin.query(`SHOW ${what}`)).rows;
      const clients = (await rows("CLIENTS")).map((r) => [r.database, r.user, r.state, r.wait]);
      expect(clients).toEqual([
        // its query already canceled: only the close of the cancel's connection is held
        ["app", "postgres", "idle", 0],
        ["app", "(nouser)", "active_cancel_req", 0],
        ["pgbouncer", "postgres", "idle", 0],
      ]);
      const lists = Object.fromEntries((await rows("LISTS")).map((r) => [r.list, r.items]));
      expect(lists).toMatchObject({ used_clients: 3, login_clients: 0 });
      const sockets = (await rows("SOCKETS")).filter((r) => r.type === "C");
      expect(sockets.map((r) => [r.database, r.state])).toEqual([
        ["app", "cl_active"],
        ["pgbouncer", "cl_active"],
      ]);
      await closed;
    });
  });

  it("lists a cancel request's own connection to PostgreSQL in SHOW SERVERS as PgBouncer 1.18: active_cancel, linked to its client, before the server it cancels", async () => {
    // PgBouncer 1.18, measured: its pool's user and database, the server's address, remote_pid 0,
    // link the held request's ptr (whose own link is this row's), then the server being_canceled
    await withHeldCancel(1000, async ({ admin, closed }) => {
      const servers = (await admin.query("SHOW SERVERS")).rows;
      const held = (await admin.query("SHOW CLIENTS")).rows.find((r) => r.state === "active_cancel_req");
      expect(servers.map((r) => [r.type, r.user, r.database, r.state, r.remote_pid > 0])).toEqual([
        ["S", "postgres", "app", "active_cancel", false],
        ["S", "postgres", "app", "being_canceled", true],
      ]);
      const [cancel, canceled] = servers;
      expect([cancel.addr, cancel.port, cancel.link]).toEqual([canceled.addr, canceled.port, held?.ptr]);
      expect(held?.link).toBe(cancel.ptr);
      await closed;
      expect((await admin.query("SHOW SERVERS")).rows.map((r) => r.state)).toEqual(["idle"]);
    });
  });

  it("counts a cancel request's own connection to PostgreSQL among the database's and user's current_connections and SHOW LISTS' used_servers, as PgBouncer 1.18", async () => {
    // PgBouncer 1.18, measured: app 2 (being_canceled and active_cancel), used_servers 2; its SHOW
    // USERS has no current_connections, ours counts as its later versions' (with the database's)
    const expected = { app: 2, used_servers: 2 };
    await withHeldCancel(1000, async ({ admin, closed }) => {
      expect(await serverTotals(admin)).toEqual(expected);
      const users = (await admin.query("SHOW USERS")).rows;
      expect(users.find((r) => r.name === "postgres")?.current_connections).toBe(2);
      await closed;
      expect(await serverTotals(admin)).toEqual({ app: 1, used_servers: 1 });
    });
    if (!hasPgBouncer()) return;
    await withPgBouncerHeldCancel(1000, async ({ admin, closed }) => {
      expect(await serverTotals(admin)).toEqual(expected);
      await closed;
    });
  });

  it("leaves a server being canceled and a cancel request's own connection out of SHOW SOCKETS, as PgBouncer 1.18", async () => {
    const servers = async (admin: pg.Client): Promise<unknown[]> =>
      (await admin.query("SHOW SOCKETS")).rows.filter((r) => r.type === "S").map((r) => r.state);
    await withHeldCancel(1000, async ({ admin, closed }) => {
      expect(await servers(admin)).toEqual([]);
      await closed;
      expect(await servers(admin)).toEqual(["sv_idle"]);
    });
    if (!hasPgBouncer()) return;
    await withPgBouncerHeldCancel(1000, async ({ admin, closed }) => {
      expect(await servers(admin)).toEqual([]);
      await closed;
    });
  });

  it("a cancel request whose client hung up leaves SHOW CLIENTS and cl_active_cancel_req at once; its connection to PostgreSQL stays in SHOW SERVERS and sv_active_cancel until closed, as PgBouncer 1.18's", async () => {
    // PgBouncer 1.18, measured the same; it also makes the server being canceled idle at the
    // hang-up (ours waits for PostgreSQL to take the cancel, as for any cancel), and when the
    // cancel's connection then closes it exits: "FATAL disconnect_client(): bad client state: 0"
    await withHeldCancel(
      1500,
      async ({ admin }) => {
        const rows = async (what: string): Promise<Record<string, unknown>[]> =>
          (await admin.query(`SHOW ${what}`)).rows;
        const pool = async (): Promise<Record<string, unknown> | undefined> =>
          (await rows("POOLS")).find((r) => r.database === "app");
        expect(await pool()).toMatchObject({ cl_active_cancel_req: 0, sv_active_cancel: 1 });
        expect((await rows("CLIENTS")).map((r) => r.state)).toEqual(["idle", "idle"]);
        expect((await rows("SERVERS")).map((r) => [r.state, r.link])).toEqual([
          ["active_cancel", ""],
          ["being_canceled", ""],
        ]);
        await waitFor(async () => (await pool())?.sv_active_cancel === 0, "the cancel's connection to close");
        expect((await rows("SERVERS")).map((r) => r.state)).toEqual(["idle"]);
      },
      { hangUpMs: 100 },
    );
  });

  it("SHOW POOLS counts a held cancel request until its connection closes, though the server it cancels is gone", async () => {
    // as PgBouncer's, whose cancel request and its connection to PostgreSQL are objects of their own
    await withHeldCancel(2000, async ({ admin, closed }) => {
      const pool = async (): Promise<Record<string, unknown> | undefined> =>
        (await admin.query("SHOW POOLS")).rows.find((r) => r.database === "app");
      const states = async (): Promise<unknown[]> =>
        (await admin.query("SHOW SERVERS")).rows.map((r) => r.state);
      await terminateBeingCanceled(admin);
      await waitFor(async () => (await states()).join() === "active_cancel", "the server to close");
      expect(await pool()).toMatchObject({ cl_active_cancel_req: 1, sv_active_cancel: 1 });
      await closed;
      expect(await pool()).toMatchObject({ cl_active_cancel_req: 0, sv_active_cancel: 0 });
    });
  });

  it("pool_idle_timeout does not free a pool whose cancel request's connection to PostgreSQL is still open: SHOW POOLS and SERVERS go on listing it", async () => {
    // its clients gone and the server it cancels closed, the cancel's connection is all the pool has
    await withHeldCancel(
      4000,
      async ({ client, admin, closed }) => {
        await terminateBeingCanceled(admin);
        const pool = async (): Promise<Record<string, unknown> | undefined> =>
          (await admin.query("SHOW POOLS")).rows.find((r) => r.database === "app");
        await client.end();
        // past pool_idle_timeout (1 s) and a janitor's tick, the cancel still held (4 s)
        await new Promise((r) => setTimeout(r, 2000));
        expect(await pool()).toMatchObject({ sv_active_cancel: 1 });
        expect((await admin.query("SHOW SERVERS")).rows.map((r) => r.state)).toEqual(["active_cancel"]);
        await closed;
      },
      { hangUpMs: 100, set: { pool_idle_timeout: 1 } },
    );
  });

  it("a held cancel request outlasts client_login_timeout, as PgBouncer 1.18's (closed at it, its late cancel would hit the next query)", async () => {
    // PgBouncer 1.18, measured: closed after 3004 ms (its cancel's time), client_login_timeout = 1
    await withHeldCancel(
      2000,
      async ({ closed, slept }) => {
        const { ms, bytes } = await closed;
        expect(bytes).toBe(0);
        expect(ms).toBeGreaterThanOrEqual(1900);
        expect((await slept).code).toBe("57014");
      },
      { set: { client_login_timeout: 1 } },
    );
  });

  it("a graceful shutdown lets a held cancel request finish: closed once PostgreSQL has acted, the query it waits for canceled", async () => {
    // PgBouncer 1.18's SIGINT, measured: the connection closed after 1003 ms, nothing written on it
    await withHeldCancel(1000, async ({ q, closed, slept }) => {
      const stopped = q.pooler.shutdown(8000);
      const { ms, bytes } = await closed;
      expect(bytes).toBe(0);
      expect(ms).toBeGreaterThanOrEqual(900);
      expect((await slept).code).toBe("57014");
      await stopped;
    });
  });

  it("keeps each client's half-received message its own while other clients' messages are read", async () => {
    // Clients at a message boundary share one scanner, a client mid-message keeps its own: these
    // interleavings would mix two clients' bytes if a half-read message were left in the shared one.
    const [a, b] = await Promise.all([RawClient.connect(p.url()), RawClient.connect(p.url())]);
    const value = (replies: Reply[]): string => {
      const row = replies.find((m) => m.type === "D");
      return row ? row.body.toString("utf8", 6) : replies.map((m) => m.type).join("");
    };
    const halves = (sql: string): [Buffer, Buffer] => {
      const msg = query(sql);
      return [msg.subarray(0, 9), msg.subarray(9)];
    };
    const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));
    try {
      const [a1, a2] = halves("SELECT 'first of a'");
      a.send(a1);
      await settle();
      expect(value(await b.exchange([query("SELECT 'whole of b'")]))).toBe("whole of b");
      expect(value(await a.exchange([a2]))).toBe("first of a");

      const [a3, a4] = halves("SELECT 'second of a'");
      const [b1, b2] = halves("SELECT 'second of b'");
      a.send(a3);
      await settle();
      b.send(b1);
      await settle();
      a.send(a4);
      b.send(b2);
      const [ra, rb] = await Promise.all([a.untilReady(), b.untilReady()]);
      expect([value(ra), value(rb)]).toEqual(["second of a", "second of b"]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("a cancel never lands on another client's query, however late it arrives (one server, 3 s of races)", async () => {
    const ours = await withTestPooler({ DEFAULT_POOL_SIZE: "1" }, (single) =>
      cancelRaces(single.url(), single.port),
    );
    console.log(`cancel races, ours: ${describeRaces(ours)}`);
    expect(ours.b).toBe(0);
    expect(ours.a).toBeGreaterThan(0);
    if (!hasPgBouncer()) return;
    const b = await startPgBouncer(
      { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
      { pool_mode: "transaction", default_pool_size: 1 },
    );
    try {
      const theirs = await cancelRaces(b.url("app"), b.port).then(describeRaces, (err: Error) => err.message);
      console.log(`cancel races, PgBouncer 1.18: ${theirs}`);
    } finally {
      await b.stop();
    }
  });

  it("ignores a cancel request with an unknown key", async () => {
    const c = await connect(p.url());
    try {
      const slow = c.query("SELECT pg_sleep(0.5) AS done");
      await rawExchange(p.port, cancelRequest(12345, 67890));
      expect((await slow).rows[0].done).toBe("");
    } finally {
      await c.end();
    }
  });
});

describe("listen_addr, as PgBouncer reads it", () => {
  /** current_user through the pooler at `host` (an IPv6 address in brackets). */
  const whoVia = async (p: TestPooler, host: string): Promise<string> => {
    const c = await connect(`postgresql://postgres:postgres@${host}:${p.port}/app`);
    try {
      return (await c.query("SELECT current_user AS u")).rows[0].u;
    } finally {
      await c.end();
    }
  };

  it.each([
    ["a comma-separated list", "127.0.0.1, ::1"],
    ["* (every address)", "*"],
    ["both wildcards side by side", "0.0.0.0, ::"],
  ])("%s: clients and /metrics reach it on IPv4 and IPv6 loopback, one port", async (_what, addr) => {
    const metricsPort = await freePort();
    await withTestPooler({ LISTEN_ADDR: addr, METRICS_PORT: String(metricsPort) }, async (p) => {
      expect(await whoVia(p, "127.0.0.1")).toBe("postgres");
      expect(await whoVia(p, "[::1]")).toBe("postgres");
      for (const host of ["127.0.0.1", "[::1]"]) {
        expect((await fetch(`http://${host}:${metricsPort}/metrics`)).status).toBe(200);
      }
    });
  });

  it("only the addresses listed", async () => {
    await withTestPooler({ LISTEN_ADDR: "::1" }, async (p) => {
      expect(await whoVia(p, "[::1]")).toBe("postgres");
      expect(
        (await errorOf(connect(`postgresql://postgres:postgres@127.0.0.1:${p.port}/app`))).message,
      ).toMatch(/ECONNREFUSED/);
    });
  });
});

describe("session and statement pooling", () => {
  it("session mode keeps one server for the client's whole session and resets it afterwards", async () => {
    await withTestPooler({ POOL_MODE: "session", DEFAULT_POOL_SIZE: "1" }, async (p) => {
      const a = await connect(p.url());
      await a.query("SET statement_timeout = '4321ms'");
      const pid = (await a.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      expect((await a.query("SELECT pg_backend_pid() AS pid")).rows[0].pid).toBe(pid);
      await a.end();
      const b = await connect(p.url());
      // same server (pool of one), but DISCARD ALL wiped the previous client's SET
      expect((await b.query("SELECT pg_backend_pid() AS pid")).rows[0].pid).toBe(pid);
      expect((await b.query("SHOW statement_timeout")).rows[0].statement_timeout).toBe("0");
      await b.end();
    });
  });

  it("statement mode runs single statements and refuses transaction blocks", async () => {
    await withTestPooler({ POOL_MODE: "statement", DEFAULT_POOL_SIZE: "2" }, async (p) => {
      const c = await connect(p.url());
      expect((await c.query("SELECT $1::text AS t", ["x"])).rows[0].t).toBe("x");
      const err = await errorOf(c.query("BEGIN"));
      expect(err.message).toMatch(/transaction blocks not allowed in statement pooling mode/);
      await c.end().catch(() => undefined);
      const d = await connect(p.url());
      expect((await d.query("SELECT 2 AS n")).rows[0].n).toBe(2);
      await d.end();
    });
  });
});

interface Races {
  /** A's queries canceled (it asked), B's (it never did), B's answered. */
  a: number;
  b: number;
  bServed: number;
}

/**
 * Two clients on a pool of one server loop over a 10-ms query for 3 s; A cancels each of its own
 * 5-20 ms after sending it, so some cancels arrive after A's query ended and B's got the server.
 */
async function cancelRaces(url: string, port: number): Promise<Races> {
  const [a, b] = await Promise.all([connect(url), connect(url)]);
  const key = cancelKeyOf(a);
  const cancelA = (): void => {
    const sock = net.connect({ host: "127.0.0.1", port }, () => sock.end(cancelRequest(key.pid, key.secret)));
    sock.on("error", () => undefined);
  };
  const until = Date.now() + 3000;
  const counts: Races = { a: 0, b: 0, bServed: 0 };
  const run = async (c: pg.Client, who: "a" | "b"): Promise<void> => {
    while (Date.now() < until) {
      const q = c.query("SELECT pg_sleep(0.01)");
      if (who === "a") setTimeout(cancelA, 5 + Math.random() * 15);
      try {
        await q;
        if (who === "b") counts.bServed++;
      } catch (err) {
        if ((err as { code?: string }).code !== "57014") throw err;
        counts[who]++;
      }
    }
  };
  try {
    await Promise.all([run(a, "a"), run(b, "b")]);
  } finally {
    await Promise.all([a.end(), b.end()]);
  }
  return counts;
}

const describeRaces = (r: Races): string => `A's queries canceled ${r.a}, B's ${r.b} (B served ${r.bServed})`;

interface HeldCancel {
  q: TestPooler;
  /** The client whose query the request cancels. */
  client: pg.Client;
  admin: pg.Client;
  /** When the cancel request's connection closed (ms after it was sent), and the bytes written on it. */
  closed: Promise<{ ms: number; bytes: number }>;
  /** The error of the pg_sleep(10) the request cancels. */
  slept: Promise<Error & { code?: string }>;
}

/** SHOW DATABASES' current_connections of app and SHOW LISTS' used_servers. */
async function serverTotals(admin: pg.Client): Promise<{ app: number; used_servers: number }> {
  const databases = (await admin.query("SHOW DATABASES")).rows;
  const lists = (await admin.query("SHOW LISTS")).rows;
  return {
    app: databases.find((r) => r.name === "app")?.current_connections,
    used_servers: lists.find((r) => r.list === "used_servers")?.items,
  };
}

/** Ends the backend of the server SHOW SERVERS lists as being_canceled, from a connection of its own. */
async function terminateBeingCanceled(admin: pg.Client): Promise<void> {
  const server = (await admin.query("SHOW SERVERS")).rows.find((r) => r.state === "being_canceled");
  const direct = await connect(inject("pgAppUrl"));
  try {
    await direct.query("SELECT pg_terminate_backend($1)", [server.remote_pid]);
  } finally {
    await direct.end();
  }
}

/**
 * A pooler whose PostgreSQL answers each new connection `holdMs` late, its cancel connections' close
 * too: `fn` runs 300 ms after a client's CancelRequest for its running pg_sleep was sent, while the
 * pooler holds that request's connection. `set`: console SETs made once the client is in;
 * `hangUpMs`: the request's client closes its connection that long after sending it.
 */
async function withHeldCancel(
  holdMs: number,
  fn: (held: HeldCancel) => Promise<void>,
  options: HeldCancelOptions = {},
): Promise<void> {
  await withSlowServer(holdMs, async (port) => {
    const env = {
      DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${port}/app`,
      ADMIN_USERS: "postgres",
    };
    await withTestPooler(env, (q) =>
      holdCancel(
        (db) => q.url(db),
        q.port,
        holdMs,
        (held) => fn({ q, ...held }),
        options,
      ),
    );
  });
}

/** As `withHeldCancel`, through PgBouncer 1.18 in transaction mode (our pooler's default). */
async function withPgBouncerHeldCancel(
  holdMs: number,
  fn: (held: Omit<HeldCancel, "q">) => Promise<void>,
): Promise<void> {
  await withSlowServer(holdMs, async (port) => {
    const b = await startPgBouncer(
      { app: `host=127.0.0.1 port=${port} dbname=app` },
      { pool_mode: "transaction", admin_users: "postgres" },
    );
    try {
      await holdCancel(b.url, b.port, holdMs, fn);
    } finally {
      await b.stop();
    }
  });
}

interface HeldCancelOptions {
  set?: Record<string, number>;
  hangUpMs?: number;
}

/** The app database behind a relay that holds each new connection's first answer `holdMs`. */
async function withSlowServer(holdMs: number, fn: (port: number) => Promise<void>): Promise<void> {
  const to = new URL(inject("pgAppUrl"));
  const slow = await relay(
    { host: "127.0.0.1", port: 0 },
    { host: to.hostname, port: Number(to.port) },
    holdMs,
  );
  try {
    await fn((slow.address() as net.AddressInfo).port);
  } finally {
    slow.close();
  }
}

/** Resolves once PostgreSQL runs `sql`, read from a connection of its own. */
async function untilRunning(sql: string, ms: number): Promise<void> {
  const direct = await connect(inject("pgAppUrl"));
  try {
    const running = async (): Promise<boolean> =>
      (await direct.query("SELECT FROM pg_stat_activity WHERE query = $1 AND state = 'active'", [sql]))
        .rowCount === 1;
    await waitFor(running, "the query to run", ms);
  } finally {
    await direct.end();
  }
}

/** The held cancel of `withHeldCancel`, through the pooler at `url` and `port`. */
async function holdCancel(
  url: (db: string) => string,
  port: number,
  holdMs: number,
  fn: (held: Omit<HeldCancel, "q">) => Promise<void>,
  { set = {}, hangUpMs = 15_000 }: HeldCancelOptions = {},
): Promise<void> {
  const [c, admin] = await Promise.all([connect(url("app")), connect(url("pgbouncer"))]);
  c.on("error", () => undefined);
  try {
    for (const [name, value] of Object.entries(set)) await admin.query(`SET ${name} = ${value}`);
    const { pid, secret } = cancelKeyOf(c);
    // tagged: the cancel is sent once PostgreSQL runs this very query (a server to open for it first
    // takes holdMs), whatever other files run on the shared server
    const sql = `SELECT pg_sleep(10) /* held cancel ${pid} */`;
    const slept = errorOf(c.query(sql));
    await untilRunning(sql, holdMs + 5000);
    const started = Date.now();
    const closed = rawExchange(port, cancelRequest(pid, secret), hangUpMs).then((b) => ({
      ms: Date.now() - started,
      bytes: b.length,
    }));
    await new Promise((r) => setTimeout(r, 300));
    await fn({ client: c, admin, closed, slept });
  } finally {
    await Promise.allSettled([c.end(), admin.end()]);
  }
}
