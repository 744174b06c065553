// A connect_query slower than server_connect_timeout: the pooler gives the server up, and
// PostgreSQL must not go on running the query for a connection no one will ever use (PostgreSQL
// 13 notices a closed socket only when it next writes): each login retry would leave one more.
// And a connect_query whose backend is terminated while it runs: a lost server, not a login that
// fails for server_login_retry.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { connect, errorOf } from "../support/clients.ts";
import { startTestPooler } from "../support/pooler.ts";
import { UserlistDir } from "../support/roles.ts";
import { waitFor } from "../support/wait.ts";

let userlists: UserlistDir;
beforeAll(() => {
  userlists = new UserlistDir();
});
afterAll(() => userlists.remove());

describe("a connect_query slower than server_connect_timeout", () => {
  it("is canceled on PostgreSQL when the server is given up", async () => {
    const marker = `cq_slow_${process.pid}`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-cq-slow-"));
    const ini = path.join(dir, "pgbouncer.ini");
    const entry = `app = host=127.0.0.1 port=${inject("pgPort")} dbname=app connect_query='SELECT pg_sleep(60) AS ${marker}'`;
    fs.writeFileSync(ini, `[databases]\n${entry}\n[pgbouncer]\n`);
    const p = await startTestPooler(
      {
        DATABASE_URL: "",
        AUTH_FILE: userlists.write([["postgres", "postgres"]]),
        POOL_MODE: "transaction",
        SERVER_CONNECT_TIMEOUT: "1",
        SERVER_LOGIN_RETRY: "1",
        QUERY_WAIT_TIMEOUT: "3",
      },
      ini,
    );
    const direct = await connect(inject("pgAdminUrl"));
    const running = async (): Promise<number> =>
      (
        await direct.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
          [`%${marker}%`],
        )
      ).rows[0]!.n;
    try {
      const c = await connect(p.url()).catch((err: Error) => err);
      if (!(c instanceof Error)) expect((await errorOf(c.query("SELECT 1"))).message).toMatch(/timeout/);
      expect(p.logs.map((l) => l.msg)).toContain("server login failed");
      await waitFor(
        async () => (await running()) === 0,
        "the abandoned connect_queries to be canceled",
        3000,
      );
    } finally {
      await p.stop();
      await direct.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
        [`%${marker}%`],
      );
      await direct.end();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a connect_query whose backend is terminated while it runs", () => {
  it("is a lost server: the pool logs in again at once and the waiting client is served", async () => {
    const marker = `cq_killed_${process.pid}`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-cq-killed-"));
    const ini = path.join(dir, "pgbouncer.ini");
    const entry = `app = host=127.0.0.1 port=${inject("pgPort")} dbname=app connect_query='SELECT pg_sleep(1) AS ${marker}'`;
    fs.writeFileSync(ini, `[databases]\n${entry}\n[pgbouncer]\n`);
    // server_login_retry at its default of 15 s: a login failure would refuse the client for that long
    const p = await startTestPooler(
      { DATABASE_URL: "", AUTH_FILE: userlists.write([["postgres", "postgres"]]), POOL_MODE: "transaction" },
      ini,
    );
    const direct = await connect(inject("pgAdminUrl"));
    try {
      // the client's login waits for the pool's first server, which is running connect_query
      const client = connect(p.url());
      let killed = 0;
      await waitFor(async () => {
        const { rows } = await direct.query<{ ok: boolean }>(
          "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
          [`%${marker}%`],
        );
        killed += rows.filter((r) => r.ok).length;
        return killed > 0;
      }, "connect_query to run");
      const started = Date.now();
      const c = await client;
      expect((await c.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one).toBe(1);
      await c.end();
      // one more connect_query (1 s) and a short backoff, not server_login_retry's 15 s
      expect(Date.now() - started).toBeLessThan(5000);
      expect(p.logs.find((l) => l.msg === "server login failed")).toMatchObject({
        retryInMs: expect.any(Number),
      });
      expect(Number(p.logs.find((l) => l.msg === "server login failed")!.retryInMs)).toBeLessThan(1000);
    } finally {
      await p.stop();
      await direct.end();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
