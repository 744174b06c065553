// A connect_query slower than server_connect_timeout: the pooler gives the server up, and
// PostgreSQL must not go on running the query for a connection no one will ever use (PostgreSQL
// 13 notices a closed socket only when it next writes): each login retry would leave one more.
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
