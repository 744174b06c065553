// Every limit and timeout, each with the ErrorResponse a client sees.
import net from "node:net";
import { describe, expect, inject, it } from "vitest";
import { startupMessage } from "../../pooler/protocol/messages.ts";
import { connect, errorOf, rawExchange } from "../support/clients.ts";
import { withTestPooler, type TestPooler } from "../support/pooler.ts";
import { waitFor } from "../support/wait.ts";

describe("limits", () => {
  it("max_client_conn: the client over the limit gets 53300", () =>
    withTestPooler({ MAX_CLIENT_CONN: "2" }, async ({ url }) => {
      const a = await connect(url());
      const b = await connect(url());
      const err = await errorOf(connect(url()));
      expect(err.code).toBe("53300");
      expect(err.message).toBe("no more connections allowed (max_client_conn)");
      await a.end();
      await b.end();
      // a slot freed: a new client gets in
      await new Promise((r) => setTimeout(r, 50));
      const c = await connect(url());
      await c.end();
    }));

  it("query_wait_timeout: a client that waits too long for a server gets an error, others go on", () =>
    withTestPooler({ DEFAULT_POOL_SIZE: "1", QUERY_WAIT_TIMEOUT: "0.5" }, async ({ url }) => {
      const holder = await connect(url());
      await holder.query("BEGIN");
      const waiter = await connect(url());
      const started = Date.now();
      const err = await errorOf(waiter.query("SELECT 1"));
      expect(err.message).toBe("query_wait_timeout");
      expect(err.code).toBe("08P01");
      expect(Date.now() - started).toBeGreaterThanOrEqual(450);
      expect(Date.now() - started).toBeLessThan(2000);
      await holder.query("COMMIT");
      expect((await holder.query("SELECT 1 AS one")).rows[0].one).toBe(1);
      await holder.end();
    }));

  it("waiting clients are served first in, first out", () =>
    withTestPooler({ DEFAULT_POOL_SIZE: "1" }, async ({ url }) => {
      const holder = await connect(url());
      await holder.query("BEGIN");
      const clients = await Promise.all([0, 1, 2, 3].map(() => connect(url())));
      const order: number[] = [];
      const done = clients.map(async (c, i) => {
        await new Promise((r) => setTimeout(r, i * 30));
        await c.query("SELECT 1");
        order.push(i);
      });
      await new Promise((r) => setTimeout(r, 200));
      await holder.query("COMMIT");
      await Promise.all(done);
      expect(order).toEqual([0, 1, 2, 3]);
      await Promise.all([holder, ...clients].map((c) => c.end()));
    }));

  it("max_db_connections caps server connections across users of one database", () =>
    withTestPooler({ DEFAULT_POOL_SIZE: "10", MAX_DB_CONNECTIONS: "2" }, async ({ url }) => {
      const clients = await Promise.all(Array.from({ length: 6 }, () => connect(url())));
      const pids = await Promise.all(
        clients.map(
          async (c) => (await c.query("SELECT pg_backend_pid() AS pid, pg_sleep(0.05)")).rows[0].pid,
        ),
      );
      expect(new Set(pids).size).toBeLessThanOrEqual(2);
      await Promise.all(clients.map((c) => c.end()));
    }));

  it("reserve_pool_size lets extra servers in after reserve_pool_timeout", () =>
    withTestPooler(
      { DEFAULT_POOL_SIZE: "1", RESERVE_POOL_SIZE: "1", RESERVE_POOL_TIMEOUT: "0.2" },
      async ({ url }) => {
        const holder = await connect(url());
        await holder.query("BEGIN");
        const other = await connect(url());
        const started = Date.now();
        await other.query("SELECT 1");
        expect(Date.now() - started).toBeGreaterThanOrEqual(150);
        await holder.query("COMMIT");
        await Promise.all([holder.end(), other.end()]);
      },
    ));
});

describe("server connections over time", () => {
  /** Backends this pooler holds for its pool, as the pooler itself counts them. */
  const servers = (p: TestPooler): number =>
    [...p.pooler.pools.values()].reduce((n, pool) => n + pool.serverCount, 0);

  it("min_pool_size keeps servers open without clients; server_idle_timeout closes the rest", async () => {
    await withTestPooler(
      {
        MIN_POOL_SIZE: "3",
        DEFAULT_POOL_SIZE: "5",
        SERVER_IDLE_TIMEOUT: "0.5",
      },
      async (p) => {
        const c = await connect(p.url());
        await c.query("SELECT 1");
        await c.end();
        await waitFor(() => servers(p) === 3, "min_pool_size servers");
        // idle ones above the minimum would be closed by server_idle_timeout, then reopened up to 3
        await new Promise((r) => setTimeout(r, 1200));
        expect(servers(p)).toBe(3);
      },
    );
  });

  it("server_lifetime replaces a server that has lived too long once it is idle", async () => {
    await withTestPooler({ DEFAULT_POOL_SIZE: "1", SERVER_LIFETIME: "0.3" }, async (p) => {
      const c = await connect(p.url());
      const pid = async (): Promise<number> => (await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      const first = await pid();
      await new Promise((r) => setTimeout(r, 800));
      expect(await pid()).not.toBe(first);
      await c.end();
    });
  });

  it("max_user_connections caps one user's servers across databases", () =>
    withTestPooler(
      {
        DATABASE_URL: inject("pgAppUrl").replace(/\/app$/, "/"),
        DEFAULT_POOL_SIZE: "10",
        MAX_USER_CONNECTIONS: "2",
      },
      async ({ url }) => {
        const clients = await Promise.all(
          Array.from({ length: 6 }, (_, i) => connect(url(i % 2 === 0 ? "app" : "postgres"))),
        );
        const pids = await Promise.all(
          clients.map(
            async (c) => (await c.query("SELECT pg_backend_pid() AS pid, pg_sleep(0.05)")).rows[0].pid,
          ),
        );
        expect(new Set(pids).size).toBeLessThanOrEqual(2);
        await Promise.all(clients.map((c) => c.end()));
      },
    ));

  it("answers SSLRequest and GSSENCRequest with 'N' (no TLS yet), then serves the login", async () => {
    await withTestPooler({ AUTH_TYPE: "trust" }, async (p) => {
      for (const code of [80877103, 80877104]) {
        const req = Buffer.alloc(8);
        req.writeInt32BE(8, 0);
        req.writeInt32BE(code, 4);
        const reply = await rawExchange(
          p.port,
          Buffer.concat([req, startupMessage({ user: "postgres", database: "app" })]),
          1000,
        );
        expect(reply.toString("latin1", 0, 1)).toBe("N");
        expect(reply[1]).toBe(0x52); // then AuthenticationOk
      }
    });
  });
});

describe("server checks", () => {
  it("server_check_query runs on a server idle longer than server_check_delay; a failing check replaces it", () =>
    // a check that always fails makes the check observable: the client gets a new backend
    withTestPooler(
      { DEFAULT_POOL_SIZE: "1", SERVER_CHECK_DELAY: "0.2", SERVER_CHECK_QUERY: "SELECT 1/0" },
      async ({ url }) => {
        const c = await connect(url());
        const pid = async (): Promise<number> =>
          (await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
        const first = await pid();
        expect(await pid()).toBe(first); // used again at once: no check
        await new Promise((r) => setTimeout(r, 400));
        expect(await pid()).not.toBe(first);
        await c.end();
      },
    ));
});

describe("timeouts", () => {
  it("idle_transaction_timeout closes a client idle inside a transaction and frees its server", () =>
    withTestPooler({ DEFAULT_POOL_SIZE: "1", IDLE_TRANSACTION_TIMEOUT: "0.4" }, async ({ url }) => {
      const a = await connect(url());
      const closed = new Promise<Error & { code?: string }>((resolve) => a.once("error", resolve));
      await a.query("BEGIN");
      await a.query("SELECT pg_advisory_xact_lock(777)");
      const err = await closed;
      expect(err.message).toBe("idle transaction timeout");
      const b = await connect(url());
      expect((await b.query("SELECT pg_try_advisory_xact_lock(777) AS ok")).rows[0].ok).toBe(true);
      await b.end();
    }));

  it("query_timeout cancels by closing a client whose query runs too long", () =>
    withTestPooler({ QUERY_TIMEOUT: "0.4" }, async ({ url }) => {
      const a = await connect(url());
      const started = Date.now();
      const err = await errorOf(a.query("SELECT pg_sleep(5)"));
      expect(err.message).toBe("query timeout");
      expect(Date.now() - started).toBeLessThan(3000);
    }));

  it("client_idle_timeout closes an idle client", () =>
    withTestPooler({ CLIENT_IDLE_TIMEOUT: "0.4" }, async ({ url }) => {
      const a = await connect(url());
      const err = await new Promise<Error>((resolve) => a.once("error", resolve));
      expect(err.message).toBe("client_idle_timeout");
    }));

  it("client_login_timeout closes a client that never finishes logging in", () =>
    withTestPooler({ CLIENT_LOGIN_TIMEOUT: "0.4" }, async ({ url }) => {
      const port = Number(new URL(url()).port);
      const sock = net.connect({ host: "127.0.0.1", port });
      const data: Buffer[] = [];
      sock.on("data", (d) => data.push(d));
      await new Promise<void>((resolve) => sock.on("close", () => resolve()));
      expect(Buffer.concat(data).toString("latin1")).toContain("client_login_timeout");
    }));

  it("server_connect_timeout and a down server: clients get 08006 quickly, not a hang", async () => {
    // a listener that accepts and never answers stands in for an unreachable server
    const blackhole = net.createServer(() => undefined);
    await new Promise<void>((r) => blackhole.listen(0, "127.0.0.1", () => r()));
    const port = (blackhole.address() as net.AddressInfo).port;
    try {
      await withTestPooler(
        {
          DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${port}/app`,
          SERVER_CONNECT_TIMEOUT: "0.5",
        },
        async ({ url }) => {
          const started = Date.now();
          const err = await errorOf(connect(url()));
          expect(err.code).toBe("08006");
          expect(err.message).toMatch(/server_connect_timeout/);
          expect(Date.now() - started).toBeLessThan(3000);
        },
      );
    } finally {
      blackhole.close();
    }
  });

  it("a wrong server password is reported to the client as the server said it", () =>
    withTestPooler(
      {
        DATABASE_URL: inject("pgAppUrl").replace("postgres:postgres@", "postgres:notthis@"),
        AUTH_TYPE: "trust",
      },
      async ({ url }) => {
        const err = await errorOf(connect(url()));
        expect(err.code).toBe("28P01");
        expect(err.message).toMatch(/password authentication failed for user "postgres"/);
      },
    ));
});
