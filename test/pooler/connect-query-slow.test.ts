// A connect_query slower than server_connect_timeout: the pooler gives the server up, and
// PostgreSQL must not go on running the query for a connection no one will ever use (PostgreSQL
// 13 notices a closed socket only when it next writes): each login retry would leave one more.
// And a connect_query whose backend is terminated while it runs: a lost server, not a login that
// fails for server_login_retry.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { connect, errorOf } from "../support/clients.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { UserlistDir } from "../support/roles.ts";
import { waitFor } from "../support/wait.ts";

let userlists: UserlistDir;
beforeAll(() => {
  userlists = new UserlistDir();
});
afterAll(() => userlists.remove());

/**
 * Runs `test` against a pooler whose database `app` has connect_query `SELECT pg_sleep(seconds)`,
 * tagged so that PostgreSQL's backends running it can be found (`backends`: their pids), and a
 * direct connection to PostgreSQL; terminates what is left of it afterwards.
 */
async function withSleepingConnectQuery(
  seconds: number,
  env: Record<string, string>,
  test: (p: TestPooler, direct: pg.Client, backends: string) => Promise<void>,
): Promise<void> {
  const marker = `cq_sleep_${process.pid}_${seconds}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-cq-"));
  const ini = path.join(dir, "pgbouncer.ini");
  const entry = `app = host=127.0.0.1 port=${inject("pgPort")} dbname=app connect_query='SELECT pg_sleep(${seconds}) AS ${marker}'`;
  fs.writeFileSync(ini, `[databases]\n${entry}\n[pgbouncer]\n`);
  const p = await startTestPooler(
    {
      DATABASE_URL: "",
      AUTH_FILE: userlists.write([["postgres", "postgres"]]),
      POOL_MODE: "transaction",
      ...env,
    },
    ini,
  );
  const direct = await connect(inject("pgAdminUrl"));
  const backends = `SELECT pid FROM pg_stat_activity WHERE query LIKE '%${marker}%' AND pid <> pg_backend_pid()`;
  try {
    await test(p, direct, backends);
  } finally {
    await p.stop();
    await direct.query(`SELECT pg_terminate_backend(pid) FROM (${backends}) b`);
    await direct.end();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("a connect_query slower than server_connect_timeout", () => {
  it("is canceled on PostgreSQL when the server is given up", () =>
    withSleepingConnectQuery(
      60,
      { SERVER_CONNECT_TIMEOUT: "1", SERVER_LOGIN_RETRY: "1", QUERY_WAIT_TIMEOUT: "3" },
      async (p, direct, backends) => {
        const c = await connect(p.url()).catch((err: Error) => err);
        if (!(c instanceof Error)) expect((await errorOf(c.query("SELECT 1"))).message).toMatch(/timeout/);
        expect(p.logs.map((l) => l.msg)).toContain("server login failed");
        await waitFor(
          async () => (await direct.query(backends)).rowCount === 0,
          "the abandoned connect_queries to be canceled",
          3000,
        );
      },
    ));
});

describe("a connect_query whose backend is terminated while it runs", () => {
  // server_login_retry at its default of 15 s: a login failure would refuse the client for that long
  it("is a lost server: the pool logs in again at once and the waiting client is served", () =>
    withSleepingConnectQuery(1, {}, async (p, direct, backends) => {
      // the client's login waits for the pool's first server, which is running connect_query
      const client = connect(p.url());
      await waitFor(async () => {
        const { rows } = await direct.query<{ ok: boolean }>(
          `SELECT pg_terminate_backend(pid) AS ok FROM (${backends}) b`,
        );
        return rows.some((r) => r.ok);
      }, "connect_query to run");
      const started = Date.now();
      const c = await client;
      expect((await c.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one).toBe(1);
      await c.end();
      // one more connect_query (1 s) and a short backoff, not server_login_retry's 15 s
      expect(Date.now() - started).toBeLessThan(5000);
      const failed = p.logs.find((l) => l.msg === "server login failed");
      expect(failed).toMatchObject({ retryInMs: expect.any(Number) });
      expect(Number(failed!.retryInMs)).toBeLessThan(1000);
    }));
});
