// Which failed server logins the pool takes for a restarting server (login-retry.ts): its clients
// wait for it, rather than being refused for server_login_retry. Through a relay in front of the
// test PostgreSQL that can hang up on new connections.
import { describe, expect, inject, it } from "vitest";
import { connect, errorOf } from "../support/clients.ts";
import { withTestPooler, type TestPooler } from "../support/pooler.ts";
import { freePort } from "../support/ports.ts";
import { relay } from "../support/relay.ts";
import { waitFor } from "../support/wait.ts";

/** A pooler whose PostgreSQL is behind a relay that hangs up on new connections while `hangUp()`. */
async function withGatedPooler(
  hangUp: () => boolean,
  env: Record<string, string>,
  use: (p: TestPooler) => Promise<void>,
): Promise<void> {
  const port = await freePort();
  const gate = await relay(
    { host: "127.0.0.1", port },
    { host: "127.0.0.1", port: inject("pgPort") },
    0,
    hangUp,
  );
  try {
    await withTestPooler(
      { DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${port}/app`, ...env },
      use,
    );
  } finally {
    gate.close();
  }
}

describe("a server login the server ends without a word", () => {
  it("is a restart: the waiting client is served once logins work again", async () => {
    let down = false;
    await withGatedPooler(
      () => down,
      {},
      async (p) => {
        const c = await connect(p.url("app"));
        const admin = await connect(p.url("pgbouncer"));
        try {
          await c.query("SELECT 1");
          // PostgreSQL going down: its servers are gone, a new backend dies before it says anything
          down = true;
          await admin.query("RECONNECT app");
          const served = c.query("SELECT 1 AS one");
          await new Promise((r) => setTimeout(r, 500));
          down = false;
          expect((await served).rows[0].one).toBe(1);
        } finally {
          await Promise.all([c.end(), admin.end()]);
        }
      },
    );
  });

  it("is a restart for server_login_retry only: a server that always hangs up is refused after that", async () => {
    await withGatedPooler(
      () => true,
      { SERVER_LOGIN_RETRY: "1" },
      async (p) => {
        const start = Date.now();
        const err = await errorOf(connect(p.url("app")));
        expect(err.code).toBe("08006");
        expect(Date.now() - start).toBeLessThan(5000);
      },
    );
  });
});

describe("a client waiting for its pool's first server while PostgreSQL restarts", () => {
  it("is refused at query_wait_timeout, as in PgBouncer, not kept for server_login_retry", async () => {
    await withGatedPooler(
      () => true,
      { QUERY_WAIT_TIMEOUT: "1" },
      async (p) => {
        const start = Date.now();
        const err = await errorOf(connect(p.url("app")));
        expect(err.message).toBe("query_wait_timeout");
        expect(Date.now() - start).toBeLessThan(3000);
      },
    );
  });

  it("who gives up (query_wait_timeout, or disconnecting) no longer has the pool dial for it", async () => {
    let dialed = 0;
    await withGatedPooler(
      () => ++dialed > 0,
      { QUERY_WAIT_TIMEOUT: "1", SERVER_LOGIN_RETRY: "60" },
      async (p) => {
        const timedOut = [1, 2].map(() => errorOf(connect(p.url("app"))));
        const leaving = [1, 2].map(() => errorOf(connect(p.url("app"), { connectionTimeoutMillis: 300 })));
        for (const err of await Promise.all(timedOut)) expect(err.message).toBe("query_wait_timeout");
        await Promise.all(leaving);
        const pool = [...p.pooler.pools.values()][0]!;
        await waitFor(() => !pool.wantsServer, "the pool to have no one waiting for its first server");
        const before = dialed;
        // PostgreSQL is still "restarting": a pool someone waited for would retry at least every second
        await new Promise((r) => setTimeout(r, 2500));
        expect(dialed).toBe(before);
      },
    );
  });
});
