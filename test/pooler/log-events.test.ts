// What an operator reads in the log about connections, as PgBouncer 1.18 logs them: with
// log_connections each server opened, with log_disconnections each server and client closed with
// PgBouncer's reason words ("server idle timeout", "server lifetime over", "server conn crashed?",
// "client close request", "client disconnect while server was not ready"), at info.
import { describe, expect, inject, it } from "vitest";
import { connect, errorOf } from "../support/clients.ts";
import { withTestPooler, type TestPooler } from "../support/pooler.ts";
import { freePort } from "../support/ports.ts";
import { waitFor } from "../support/wait.ts";

const INFO = 30;

/** The pooler's "server closed" lines, as level and reason. */
const serverCloses = (p: TestPooler): { level: unknown; reason: unknown }[] =>
  p.logs.filter((l) => l.msg === "server closed").map((l) => ({ level: l.level, reason: l.reason }));

const closedFor = (p: TestPooler, reason: string): Promise<void> =>
  waitFor(() => serverCloses(p).some((l) => l.reason === reason), `a server closed: ${reason}`);

describe("log_connections / log_disconnections", () => {
  it("logs servers opened and closed by server_idle_timeout, and a client's close request", () =>
    withTestPooler({ DEFAULT_POOL_SIZE: "1", SERVER_IDLE_TIMEOUT: "0.5" }, async (p) => {
      const c = await connect(p.url());
      await c.query("SELECT 1");
      await c.end();
      await closedFor(p, "server idle timeout");
      expect(serverCloses(p)).toContainEqual({ level: INFO, reason: "server idle timeout" });
      expect(p.logs).toContainEqual(expect.objectContaining({ level: INFO, msg: "new server connection" }));
      expect(p.logs).toContainEqual(
        expect.objectContaining({ level: INFO, msg: "closing", reason: "client close request" }),
      );
    }));

  it("logs a server closed at server_lifetime", () =>
    withTestPooler({ DEFAULT_POOL_SIZE: "1", SERVER_LIFETIME: "0.3" }, async (p) => {
      const c = await connect(p.url());
      await c.query("SELECT 1");
      await new Promise((r) => setTimeout(r, 600));
      await c.query("SELECT 1");
      await closedFor(p, "server lifetime over");
      expect(serverCloses(p)).toContainEqual({ level: INFO, reason: "server lifetime over" });
      await c.end();
    }));

  it("logs an idle server whose backend was terminated as crashed, and one a client left mid-query", () =>
    withTestPooler({ DEFAULT_POOL_SIZE: "1" }, async (p) => {
      const c = await connect(p.url());
      const { pid } = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!;
      const direct = await connect(inject("pgAppUrl"));
      await direct.query("SELECT pg_terminate_backend($1)", [pid]);
      await waitFor(() => serverCloses(p).length === 1, "the terminated server closed");
      expect(serverCloses(p)[0]).toEqual({
        level: INFO,
        reason: expect.stringMatching(/^server conn crashed\? /),
      });

      void c.query("SELECT pg_sleep(5)").catch(() => undefined);
      await waitFor(
        async () =>
          (
            await direct.query(
              "SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' AND state = 'active'",
            )
          ).rowCount === 1,
        "the sleep running",
      );
      (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      await closedFor(p, "client disconnect while server was not ready");
      expect(serverCloses(p)).toContainEqual({
        level: INFO,
        reason: "client disconnect while server was not ready",
      });
      await direct.end();
    }));

  it("gives RECONNECT's and KILL's reasons, as PgBouncer words them", () =>
    withTestPooler({ DEFAULT_POOL_SIZE: "1", ADMIN_USERS: "postgres" }, async (p) => {
      const admin = await connect(p.url("pgbouncer"));
      const idleServer = async (): Promise<void> => {
        const c = await connect(p.url());
        await c.query("SELECT 1");
        await c.end();
      };
      await idleServer();
      await admin.query("RECONNECT app");
      await closedFor(p, "database configuration changed");
      await idleServer();
      await admin.query("KILL app");
      await closedFor(p, "database removed");
      await admin.query("RESUME app");
      expect(serverCloses(p).map((l) => l.reason)).toEqual([
        "database configuration changed",
        "database removed",
      ]);
      await admin.end();
    }));

  it("logs a connection PostgreSQL refused as a failed connect, not a crash", async () => {
    const nobody = await freePort();
    await withTestPooler(
      { DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${nobody}/app`, SERVER_LOGIN_RETRY: "1" },
      async (p) => {
        const refused = errorOf(connect(p.url()));
        await waitFor(() => serverCloses(p).length > 0, "a server closed");
        expect(serverCloses(p)[0]).toEqual({
          level: INFO,
          reason: expect.stringMatching(/^connect failed \(.*ECONNREFUSED/),
        });
        await refused;
      },
    );
  });

  it("logs the close of a failed login, also with log_pooler_errors off", () =>
    withTestPooler({ LOG_POOLER_ERRORS: "0" }, async (p) => {
      expect((await errorOf(connect(p.urlAs("postgres", "wrong")))).code).toBe("28P01");
      await waitFor(() => p.logs.some((l) => l.msg === "closing"), "the close logged");
      expect(p.logs.filter((l) => l.msg === "closing")).toEqual([
        expect.objectContaining({
          level: INFO,
          user: "postgres",
          reason: expect.stringMatching(/^password authentication failed/),
        }),
      ]);
    }));

  it("logs neither when both are off", () =>
    withTestPooler(
      { DEFAULT_POOL_SIZE: "1", SERVER_IDLE_TIMEOUT: "0.3", LOG_CONNECTIONS: "0", LOG_DISCONNECTIONS: "0" },
      async (p) => {
        const c = await connect(p.url());
        await c.query("SELECT 1");
        await c.end();
        await waitFor(
          () => [...p.pooler.pools.values()].every((pool) => pool.serverCount === 0),
          "idle timeout",
        );
        const about = ["new server connection", "server closed", "login", "closing"];
        expect(p.logs.filter((l) => about.includes(l.msg as string))).toEqual([]);
      },
    ));
});
