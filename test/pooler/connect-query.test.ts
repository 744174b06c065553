// connect_query, a [databases] parameter of PgBouncer's: SQL run on each new server connection
// before any client gets it. What it sets is every client's starting point, on every server of the
// pool, and what RESET, RESET ALL and DISCARD ALL come back to (README "connect_query").
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { connect } from "../support/clients.ts";
import { pinnedAfter, startTestPooler, type TestPooler } from "../support/pooler.ts";
import { createLoginRole, dropRole, UserlistDir } from "../support/roles.ts";

const SEARCH_PATH = "cq_app, public";
const SETUP = `SET search_path = ${SEARCH_PATH}; SET statement_timeout = 4321; SET TimeZone = ''Asia/Tokyo''`;

let userlists: UserlistDir;
beforeAll(() => {
  userlists = new UserlistDir();
});
afterAll(() => userlists.remove());

/** Writes the pgbouncer.ini of a pool `app` with `connectQuery` (as the ini quotes it: '' for a quote). */
function writeIni(ini: string, connectQuery: string): void {
  const entry = `app = host=127.0.0.1 port=${inject("pgPort")} dbname=app connect_query='${connectQuery}'`;
  fs.writeFileSync(ini, `[databases]\n${entry}\n[pgbouncer]\n`);
}

/** Runs `fn` against a pooler whose database `app` runs `connectQuery`, stopped afterwards whatever happens. */
async function withConnectQuery(
  connectQuery: string,
  env: Record<string, string>,
  fn: (p: TestPooler, ini: string) => Promise<void>,
): Promise<void> {
  const ini = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pooler-cq-")), "pgbouncer.ini");
  writeIni(ini, connectQuery);
  // no DATABASE_URL: it would be an `app` entry of its own, winning over the file's
  const p = await startTestPooler(
    {
      DATABASE_URL: "",
      AUTH_FILE: userlists.write([["postgres", "postgres"]]),
      ADMIN_USERS: "postgres",
      ...env,
    },
    ini,
  );
  try {
    await fn(p, ini);
  } finally {
    await p.stop();
  }
}

async function show(c: pg.Client, name: string): Promise<string> {
  return Object.values((await c.query(`SHOW ${name}`)).rows[0] as Record<string, string>)[0]!;
}

async function pid(c: pg.Client): Promise<number> {
  return (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
}

/** What `c` is told of reported parameters from now on (ParameterStatus), by name. */
function parameterStatuses(c: pg.Client): Map<string, string> {
  const seen = new Map<string, string>();
  const connection = (c as unknown as { connection: NodeJS.EventEmitter }).connection;
  connection.on("parameterStatus", (m: { parameterName: string; parameterValue: string }) =>
    seen.set(m.parameterName, m.parameterValue),
  );
  return seen;
}

describe("connect_query in transaction pooling", () => {
  it("is what a client that set nothing sees, on every server of the pool, told at login too", () =>
    withConnectQuery(SETUP, { POOL_MODE: "transaction", DEFAULT_POOL_SIZE: "2" }, async (p) => {
      const a = await connect(p.url());
      const b = await connect(p.url());
      try {
        // both servers at once: each ran the query
        await a.query("BEGIN");
        await b.query("BEGIN");
        expect(await pid(a)).not.toBe(await pid(b));
        for (const c of [a, b]) {
          expect(await show(c, "search_path")).toBe(SEARCH_PATH);
          expect(await show(c, "statement_timeout")).toBe("4321ms");
          expect(await show(c, "TimeZone")).toBe("Asia/Tokyo");
        }
        await a.query("COMMIT");
        await b.query("COMMIT");
      } finally {
        await a.end();
        await b.end();
      }
    }));

  it("another client's SET does not leak, its RESET, RESET ALL and DISCARD ALL come back to it", () =>
    withConnectQuery(SETUP, { POOL_MODE: "transaction", DEFAULT_POOL_SIZE: "1" }, async (p) => {
      const a = await connect(p.url());
      const b = await connect(p.url());
      try {
        const statuses = parameterStatuses(b);
        await b.query("SET search_path = other; SET statement_timeout = 99; SET TimeZone = 'UTC'");
        // one server: A gets the one B just changed
        expect(await pid(a)).toBe(await pid(b));
        expect(await show(a, "search_path")).toBe(SEARCH_PATH);
        expect(await show(a, "statement_timeout")).toBe("4321ms");
        expect(await show(a, "TimeZone")).toBe("Asia/Tokyo");
        // B keeps its own on its next transactions
        expect(await show(b, "search_path")).toBe("other");
        expect(await show(b, "TimeZone")).toBe("UTC");
        // RESET takes B back to connect_query's values, not the role's defaults, from its next transaction
        await b.query("RESET search_path; RESET TimeZone");
        expect(await show(b, "search_path")).toBe(SEARCH_PATH);
        expect(await show(b, "TimeZone")).toBe("Asia/Tokyo");
        expect(statuses.get("TimeZone")).toBe("Asia/Tokyo");
        expect(await show(b, "statement_timeout")).toBe("99ms");
        await b.query("RESET ALL");
        expect(await show(b, "statement_timeout")).toBe("4321ms");
        await b.query("SET search_path = other");
        await b.query("DISCARD ALL");
        expect(await show(b, "search_path")).toBe(SEARCH_PATH);
        expect(await show(a, "search_path")).toBe(SEARCH_PATH);
        expect(await show(a, "statement_timeout")).toBe("4321ms");
      } finally {
        await a.end();
        await b.end();
      }
    }));

  it("its prepared statement and temporary table are the server's: usable by clients, pinning none of them", () =>
    withConnectQuery(
      "CREATE TEMP TABLE cq_tmp (x int); PREPARE cq_stmt AS SELECT 42 AS answer",
      { POOL_MODE: "transaction", DEFAULT_POOL_SIZE: "1" },
      async (p) => {
        const a = await connect(p.url());
        try {
          expect((await a.query("EXECUTE cq_stmt")).rows).toEqual([{ answer: 42 }]);
          await a.query("SET statement_timeout = 1000");
          expect(await pinnedAfter(p, a)).toBe(0);
          // the client's own still pins it
          await a.query("PREPARE mine AS SELECT 1");
          expect(await pinnedAfter(p, a)).toBe(1);
          await a.query("DEALLOCATE mine");
          expect(await pinnedAfter(p, a)).toBe(0);
        } finally {
          await a.end();
        }
      },
    ));

  it("a client's own statement or cursor under the name of the server's pins it: no other client runs it", () =>
    withConnectQuery(
      "PREPARE cq_stmt AS SELECT 42 AS answer; DECLARE cq_cur CURSOR WITH HOLD FOR SELECT 42 AS answer",
      { POOL_MODE: "transaction", DEFAULT_POOL_SIZE: "1" },
      async (p) => {
        const a = await connect(p.url());
        try {
          expect(await pinnedAfter(p, a)).toBe(0);
          await a.query("DEALLOCATE cq_stmt");
          await a.query("PREPARE cq_stmt AS SELECT 'a''s secret' AS answer");
          expect(await pinnedAfter(p, a)).toBe(1);
          // the server's gone, nothing of the client's: free again
          await a.query("DEALLOCATE cq_stmt");
          expect(await pinnedAfter(p, a)).toBe(0);
          await a.query("CLOSE cq_cur");
          await a.query("DECLARE cq_cur CURSOR WITH HOLD FOR SELECT 'a''s secret' AS answer");
          expect(await pinnedAfter(p, a)).toBe(1);
        } finally {
          await a.end();
        }
      },
    ));

  it("a pinned client leaving does not take the server's prepared statement and temporary table from the next", () =>
    withConnectQuery(
      "CREATE TEMP TABLE cq_tmp (x int); PREPARE cq_stmt AS SELECT 42 AS answer",
      { POOL_MODE: "transaction", DEFAULT_POOL_SIZE: "1" },
      async (p) => {
        const a = await connect(p.url());
        await a.query("PREPARE mine AS SELECT 1");
        expect(await pinnedAfter(p, a)).toBe(1);
        await a.end();
        // PgBouncer runs no DISCARD ALL in transaction pooling: the next client finds them
        const b = await connect(p.url());
        try {
          expect((await b.query("EXECUTE cq_stmt")).rows).toEqual([{ answer: 42 }]);
          expect((await b.query("SELECT count(*)::int AS n FROM cq_tmp")).rows).toEqual([{ n: 0 }]);
          await expect(b.query("EXECUTE mine")).rejects.toMatchObject({ code: "26000" });
        } finally {
          await b.end();
        }
      },
    ));

  it("a failing connect_query is logged and the server used all the same", () =>
    withConnectQuery("SELECT 1/0", { POOL_MODE: "transaction", DEFAULT_POOL_SIZE: "1" }, async (p) => {
      const a = await connect(p.url());
      try {
        const first = await pid(a);
        expect((await a.query("SELECT 2 AS two")).rows).toEqual([{ two: 2 }]);
        expect(await pid(a)).toBe(first);
        const failed = p.logs.filter((l) => l.msg === "connect_query failed");
        expect(failed).toHaveLength(1);
        expect(failed[0]).toMatchObject({ pool: "app/postgres", code: "22012", err: "division by zero" });
      } finally {
        await a.end();
      }
    }));

  it("a transaction connect_query leaves open is rolled back, so the server can be shared", () =>
    withConnectQuery(
      "BEGIN; SET search_path = cq_in_tx",
      { POOL_MODE: "transaction", DEFAULT_POOL_SIZE: "1" },
      async (p) => {
        const a = await connect(p.url());
        const b = await connect(p.url());
        try {
          expect(await show(a, "search_path")).toBe('"$user", public');
          expect(await pid(b)).toBe(await pid(a));
          expect(p.logs.map((l) => l.msg)).toContain("connect_query left a transaction open: rolled back");
        } finally {
          await a.end();
          await b.end();
        }
      },
    ));

  it("RELOAD with another connect_query replaces the pool's servers: the same client sees the new one", () =>
    withConnectQuery(SETUP, { POOL_MODE: "transaction", DEFAULT_POOL_SIZE: "1" }, async (p, ini) => {
      const a = await connect(p.url());
      const admin = await connect(p.url("pgbouncer"));
      try {
        const before = await pid(a);
        expect(await show(a, "search_path")).toBe(SEARCH_PATH);
        writeIni(ini, "SET search_path = cq_reloaded");
        await admin.query("RELOAD");
        expect(await show(a, "search_path")).toBe("cq_reloaded");
        expect(await show(a, "statement_timeout")).toBe("0");
        expect(await pid(a)).not.toBe(before);
      } finally {
        await a.end();
        await admin.end();
      }
    }));
});

describe("connect_query in session pooling", () => {
  it("is back for the next client after server_reset_query (DISCARD ALL) wiped it", () =>
    withConnectQuery(SETUP, { POOL_MODE: "session", DEFAULT_POOL_SIZE: "1" }, async (p) => {
      const a = await connect(p.url());
      const server = await pid(a);
      expect(await show(a, "search_path")).toBe(SEARCH_PATH);
      await a.query("SET search_path = other");
      await a.end();
      const b = await connect(p.url());
      try {
        expect(await pid(b)).toBe(server);
        expect(await show(b, "search_path")).toBe(SEARCH_PATH);
        expect(await show(b, "statement_timeout")).toBe("4321ms");
        expect(await show(b, "TimeZone")).toBe("Asia/Tokyo");
      } finally {
        await b.end();
      }
    }));
});

describe("connect_query SET ROLE under a login that is no superuser, in transaction pooling", () => {
  const MEMBER = "cq_role_member";
  const SUPER = "cq_role_super";
  const PLAIN = "cq_role_plain";
  const PASSWORD = "cq-member-pw";
  beforeAll(async () => {
    await createLoginRole(inject("pgAppUrl"), MEMBER, PASSWORD, "md5");
    const admin = await connect(inject("pgAppUrl"));
    try {
      await admin.query(`DROP ROLE IF EXISTS ${SUPER}; DROP ROLE IF EXISTS ${PLAIN}`);
      await admin.query(`CREATE ROLE ${SUPER} SUPERUSER NOLOGIN; CREATE ROLE ${PLAIN} NOLOGIN`);
      await admin.query(`GRANT ${SUPER}, ${PLAIN} TO ${MEMBER}`);
    } finally {
      await admin.end();
    }
  });
  afterAll(async () => {
    for (const role of [MEMBER, SUPER, PLAIN]) await dropRole(inject("pgAppUrl"), role);
  });

  /** What a client sees of its identity and settings, or the code of the error it gets instead. */
  async function seen(c: pg.Client): Promise<string> {
    const sql =
      "SELECT current_user, current_setting('log_min_duration_statement') AS log_min, current_setting('work_mem') AS work_mem";
    return outcome(c.query(sql).then((r) => Object.values(r.rows[0] as object).join(" ")));
  }

  async function outcome(result: Promise<string>): Promise<string> {
    try {
      return await result;
    } catch (err) {
      return `error ${(err as { code?: string }).code}`;
    }
  }

  /**
   * Runs `steps` (client index, SQL) on two clients of one server (pool_size 1, so every step and
   * every look moves a client onto the server the other left) and on two direct sessions that
   * start where connect_query leaves a server (`role` at startup: what RESET ROLE comes back to);
   * after each step both clients look: they must see what the direct sessions see.
   */
  function sameAsDirect(role: string, steps: [0 | 1, string][]): Promise<void> {
    return withConnectQuery(
      `SET ROLE ${role}`,
      {
        POOL_MODE: "transaction",
        DEFAULT_POOL_SIZE: "1",
        AUTH_TYPE: "md5",
        AUTH_FILE: userlists.write([[MEMBER, PASSWORD]]),
      },
      async (p) => {
        const url = new URL(inject("pgAppUrl"));
        url.username = MEMBER;
        url.password = PASSWORD;
        const direct = [await connect(url.href, { options: `-c role=${role}` })];
        direct.push(await connect(url.href, { options: `-c role=${role}` }));
        const pooled = [await connect(p.urlAs(MEMBER, PASSWORD)), await connect(p.urlAs(MEMBER, PASSWORD))];
        try {
          const transcript = async (clients: pg.Client[]): Promise<string[]> => [
            `0: ${await seen(clients[0]!)}`,
            `1: ${await seen(clients[1]!)}`,
          ];
          for (const [i, sql] of steps) {
            const want = [
              `${i} ${sql}: ${await outcome(direct[i]!.query(sql).then(() => "ok"))}`,
              ...(await transcript(direct)),
            ];
            const got = [`${i} ${sql}: ${await outcome(pooled[i]!.query(sql).then(() => "ok"))}`];
            // the other client first: the server it gets is the one this step left
            const [first, second] = i === 0 ? [1, 0] : [0, 1];
            const looks = { [first]: await seen(pooled[first]!), [second]: await seen(pooled[second]!) };
            got.push(`0: ${looks[0]}`, `1: ${looks[1]}`);
            expect(got).toEqual(want);
          }
        } finally {
          for (const c of [...direct, ...pooled]) await c.end();
        }
      },
    );
  }

  it("to a superuser role: a superuser-only setting, then SET ROLE to a role that is none", () =>
    sameAsDirect(SUPER, [
      [0, "SET log_min_duration_statement = 0; SET ROLE " + PLAIN],
      [1, "SET work_mem = '2MB'"],
      [0, "RESET log_min_duration_statement"],
      [0, "SET ROLE " + SUPER],
      [0, "RESET log_min_duration_statement"],
    ]));

  it("to a superuser role: a superuser-only setting, then RESET ROLE (back to connect_query's role)", () =>
    sameAsDirect(SUPER, [
      [0, "SET log_min_duration_statement = 0"],
      [0, "RESET ROLE"],
      [1, "SET log_min_duration_statement = 5; SET work_mem = '3MB'"],
      [1, "RESET ALL"],
    ]));

  it("to a role that is none: SET ROLE to a superuser role, its setting, and back", () =>
    sameAsDirect(PLAIN, [
      [0, "SET log_min_duration_statement = 0"],
      [0, `SET ROLE ${SUPER}; SET log_min_duration_statement = 0; SET work_mem = '2MB'`],
      [1, "SET work_mem = '3MB'"],
      [0, "RESET log_min_duration_statement; RESET ROLE"],
      [1, `SET ROLE ${SUPER}`],
    ]));
});
