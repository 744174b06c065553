// Session state in transaction pooling: each row of README "What works in transaction mode" that
// PgBouncer 1.18 gets wrong (measured, /work/shared/reference/prisma.md §7), through our pooler.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Pool } from "../../pooler/pool.ts";
import { cancelKeyOf, connect, errorOf, rawExchange } from "../support/clients.ts";
import { ownDatabase } from "../support/own-database.ts";
import { pinnedAfter, startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.ts";
import { RawClient } from "../support/protocol.ts";
import { cancelRequest, query } from "../../pooler/protocol/messages.ts";
import { UserlistDir, createLoginRole, dropRole } from "../support/roles.ts";
import { waitFor } from "../support/wait.ts";

async function pid(c: pg.Client): Promise<number> {
  return (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
}

/**
 * B opens a transaction on the server A used last (the pool hands out the most recently used first)
 * and keeps it, so A's next statement runs on another server; that server of A's, by its pid.
 */
async function bTakesServerOfA(a: pg.Client, b: pg.Client): Promise<number> {
  const serverOfA = await pid(a);
  await b.query("BEGIN");
  expect(await pid(b)).toBe(serverOfA);
  return serverOfA;
}

async function show(c: pg.Client, name: string): Promise<string> {
  return Object.values((await c.query(`SHOW ${name}`)).rows[0] as Record<string, string>)[0]!;
}

function onlyPool(p: TestPooler): Pool {
  return [...p.pooler.pools.values()][0]!;
}

/** Runs `fn` with two clients of the pooler, ended afterwards whatever happens. */
async function withTwoClients(
  p: TestPooler,
  fn: (a: pg.Client, b: pg.Client) => Promise<void>,
): Promise<void> {
  const a = await connect(p.url());
  const b = await connect(p.url());
  try {
    await fn(a, b);
  } finally {
    await a.end();
    await b.end();
  }
}

/** Session advisory locks on `key` held by any backend, seen directly. */
async function lockHolders(key: number): Promise<number> {
  const c = await connect(inject("pgAppUrl"));
  try {
    const r = await c.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1",
      [key],
    );
    return r.rows[0]!.n;
  } finally {
    await c.end();
  }
}

// The tests that lock a catalog lock it in a database of their own: pg_rewrite (which every view
// needs) or pg_proc locked in app holds up other files' new backends meanwhile (1.3 s seen).
const locked = ownDatabase("catalog_locks");

/** Until `backend` waits for a lock, seen on `direct` (inside a transaction of its own). */
async function lockWaitOf(direct: pg.Client, backend: number): Promise<void> {
  await waitFor(async () => {
    // within its transaction, pg_stat_activity is read once unless told otherwise
    await direct.query("SELECT pg_stat_clear_snapshot()");
    const r = await direct.query(
      "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
      [backend],
    );
    return r.rowCount === 1;
  }, "the probe to wait for the lock");
}

/**
 * A pooler of one server in front of `locked` (`env` on top) and a client `c` whose SET's probe
 * waits for pg_rewrite, held by `direct` (in a transaction `fn` may end); let go after `fn`.
 */
async function behindTheProbe<T>(
  env: Record<string, string>,
  fn: (c: pg.Client, direct: pg.Client, p: TestPooler, backend: number) => Promise<T>,
): Promise<T> {
  return withTestPooler({ DATABASE_URL: locked.url(), DEFAULT_POOL_SIZE: "1", ...env }, async (p) => {
    const c = await connect(p.url(locked.name));
    c.on("error", () => undefined);
    const direct = await connect(locked.url());
    try {
      const backend = await pid(c);
      await direct.query("BEGIN; LOCK TABLE pg_catalog.pg_rewrite IN ACCESS EXCLUSIVE MODE");
      await c.query("SET application_name = 'probed'");
      await lockWaitOf(direct, backend);
      return await fn(c, direct, p, backend);
    } finally {
      await direct.query("ROLLBACK").catch(() => undefined);
      await c.end().catch(() => undefined);
      await direct.end();
    }
  });
}

describe("session state in transaction pooling", () => {
  let p: TestPooler;
  beforeAll(async () => {
    p = await startTestPooler({ DEFAULT_POOL_SIZE: "2", APPLICATION_NAME_ADD_HOST: "0" });
  });
  afterAll(() => p.stop());

  it("SET by A: B sees its own value, A keeps its own on whatever server it gets next", async () => {
    await withTwoClients(p, async (a, b) => {
      await a.query("SET statement_timeout = '1234ms'");
      const serverOfA = await bTakesServerOfA(a, b);
      expect(await show(b, "statement_timeout")).toBe("0");
      // so A now runs on the other server, where its SET is replayed
      expect(await pid(a)).not.toBe(serverOfA);
      expect(await show(a, "statement_timeout")).toBe("1234ms");
      await b.query("COMMIT");
      for (let i = 0; i < 5; i++) {
        expect(await show(b, "statement_timeout")).toBe("0");
        expect(await show(a, "statement_timeout")).toBe("1234ms");
      }
    });
  });

  it("keeps search_path, custom placeholders and RESET per client", async () => {
    await withTwoClients(p, async (a, b) => {
      await a.query(`SET search_path = pg_catalog, "$user", public; SET app.tenant = 'acme'`);
      for (let i = 0; i < 3; i++) {
        expect(await show(a, "search_path")).toBe('pg_catalog, "$user", public');
        expect((await a.query("SELECT current_setting('app.tenant') AS t")).rows[0].t).toBe("acme");
        expect(await show(b, "search_path")).toBe('"$user", public');
        expect((await b.query("SELECT current_setting('app.tenant', true) AS t")).rows[0].t ?? "").toBe("");
      }
      await a.query("RESET search_path");
      expect(await show(a, "search_path")).toBe('"$user", public');
    });
  });

  it.each(["RESET ALL", "RESET DateStyle; RESET application_name", "DISCARD ALL"])(
    "%s takes reported parameters back to the client's startup values, as PostgreSQL does",
    async (reset) => {
      // the same conversation directly and through the pooler: the answers must be the same
      const answers = async (url: string): Promise<string[]> => {
        const c = await connect(url, { application_name: "myapp", options: "-c DateStyle=German" });
        try {
          await c.query("SET DateStyle = 'ISO, MDY'; SET application_name = 'other'");
          await c.query(reset);
          const out: string[] = [];
          for (let i = 0; i < 3; i++) {
            // 03.02.2024 is the 3rd of February in German (DMY) order, the 2nd of March in MDY
            const r = await c.query(
              "SELECT current_setting('DateStyle') AS ds, current_setting('application_name') AS app, " +
                "extract(month FROM '03.02.2024'::date)::int AS month",
            );
            out.push(JSON.stringify(r.rows[0]));
          }
          return out;
        } finally {
          await c.end();
        }
      };
      const direct = await answers(inject("pgAppUrl"));
      expect(direct[0]).toBe(JSON.stringify({ ds: "German, DMY", app: "myapp", month: 2 }));
      expect(await answers(p.url())).toEqual(direct);
    },
  );

  it("a SET of a reported parameter stays when the client later changes something else on another server", async () => {
    const answers = async (url: string, newServer: () => void): Promise<string> => {
      const c = await connect(url, { options: "-c DateStyle=German" });
      try {
        await c.query("SET DateStyle = 'ISO, MDY'");
        newServer();
        await c.query("SET work_mem = '8MB'");
        return JSON.stringify(
          (
            await c.query(
              "SELECT current_setting('DateStyle') AS ds, extract(month FROM '03.02.2024'::date)::int AS m",
            )
          ).rows[0],
        );
      } finally {
        await c.end();
      }
    };
    const direct = await answers(inject("pgAppUrl"), () => undefined);
    expect(direct).toBe(JSON.stringify({ ds: "ISO, MDY", m: 3 }));
    // RECONNECT: the next transaction gets a fresh server, where ISO, MDY is the default and not replayed
    const reconnect = (): void => {
      for (const pool of p.pooler.pools.values()) pool.reconnect();
    };
    expect(await answers(p.url(), reconnect)).toBe(direct);
  });

  it("UPDATE pg_settings is a SET: the client keeps it, the next client on that server does not see it", async () => {
    await withTwoClients(p, async (a, b) => {
      await a.query("UPDATE pg_settings SET setting = '3333' WHERE name = 'lock_timeout'");
      for (let i = 0; i < 3; i++) {
        expect(await show(b, "lock_timeout")).toBe("0");
        expect(await show(a, "lock_timeout")).toBe("3333ms");
      }
    });
  });

  it("a SET after a backslash-escaped quote, with standard_conforming_strings off, is seen too", async () => {
    await withTwoClients(p, async (a, b) => {
      await a.query("SET standard_conforming_strings = off");
      // without standard_conforming_strings \' ends nothing: PostgreSQL runs the SET, and a
      // classifier reading '…' by the standard rules would see one long literal
      await a.query(String.raw`SELECT 'x\''; SET lock_timeout = '4444'; -- '`);
      for (let i = 0; i < 3; i++) {
        expect(await show(b, "lock_timeout")).toBe("0");
        expect(await show(a, "lock_timeout")).toBe("4444ms");
      }
    });
  });

  it("a Query too big to assemble streams through, what it does to the session still seen", async () => {
    await withTwoClients(p, async (a, b) => {
      const big = "z".repeat(3 << 20);
      // a SET after a long statement, and a set_config deep inside one: neither is in the part read whole
      const r = await a.query(
        `SELECT length('${big}') AS n; SET lock_timeout = '5555'; ` +
          `SELECT length('${big}') + length(set_config('app.deep', 'inside', false)) AS m`,
      );
      const [first, , last] = r as unknown as pg.QueryResult[];
      expect([first!.rows[0], last!.rows[0]]).toEqual([{ n: 3 << 20 }, { m: (3 << 20) + 6 }]);
      for (let i = 0; i < 3; i++) {
        expect(await show(b, "lock_timeout")).toBe("0");
        expect(await show(a, "lock_timeout")).toBe("5555ms");
        expect((await a.query("SELECT current_setting('app.deep') AS v")).rows[0].v).toBe("inside");
        expect((await b.query("SELECT current_setting('app.deep', true) AS v")).rows[0].v ?? "").toBe("");
      }
    });
  });

  it("a SET of standard_conforming_strings in the same packet as the next Query still changes how it is read", async () => {
    const a = await RawClient.connect(p.url());
    const b = await connect(p.url());
    try {
      // both Queries in one write: the server's ParameterStatus for the first is not in yet
      await a.exchange(
        [
          query("SET standard_conforming_strings = off"),
          query(String.raw`SELECT 'x\''; SET app.tenant = 'evil'; SELECT 'y'`),
        ],
        2,
      );
      for (let i = 0; i < 3; i++) {
        expect((await b.query("SELECT current_setting('app.tenant', true) AS t")).rows[0].t ?? "").toBe("");
        await b.query("BEGIN"); // takes the server a used last
        expect((await b.query("SELECT current_setting('app.tenant', true) AS t")).rows[0].t ?? "").toBe("");
        await b.query("COMMIT");
      }
    } finally {
      await a.close();
      await b.end();
    }
  });

  it("a set_config of a name spelt U&'…' is read: the role stays with its client", async () => {
    await withTwoClients(p, async (a, b) => {
      await a.query(String.raw`SELECT set_config(U&'r\006fle', 'pg_monitor', false)`);
      await bTakesServerOfA(a, b);
      expect((await b.query("SELECT current_user AS u")).rows[0].u).toBe("postgres");
      expect((await a.query("SELECT current_user AS u")).rows[0].u).toBe("pg_monitor");
      await b.query("COMMIT");
    });
  });

  it("a set_config whose name it cannot read pins the client instead of handing the setting on", async () => {
    await withTwoClients(p, async (a, b) => {
      await a.query("SELECT set_config('app.' || 'tenant', 'evil', false)");
      expect(await pinnedAfter(p, a)).toBe(1);
      for (let i = 0; i < 3; i++) {
        expect((await b.query("SELECT current_setting('app.tenant', true) AS t")).rows[0].t ?? "").toBe("");
        expect((await a.query("SELECT current_setting('app.tenant') AS t")).rows[0].t).toBe("evil");
      }
    });
  });

  it("without statement routing (MAX_PREPARED_STATEMENTS=0) each Bind of a statement that touches the session counts", async () => {
    const q = await startTestPooler({ DEFAULT_POOL_SIZE: "2", MAX_PREPARED_STATEMENTS: "0" });
    try {
      await withTwoClients(q, async (a, b) => {
        const setter = (value: string) => ({
          name: "setter",
          text: "SELECT set_config('app.x', $1, false) AS v",
          values: [value],
        });
        await a.query(setter("one"));
        await a.query(setter("two")); // Bind and Execute only: no Parse to classify
        await bTakesServerOfA(a, b);
        // a runs on the other server now, where its setting is replayed: the value it set last
        expect((await a.query("SELECT current_setting('app.x') AS v")).rows[0].v).toBe("two");
        expect((await b.query("SELECT current_setting('app.x', true) AS v")).rows[0].v ?? "").toBe("");
        await b.query("COMMIT");
      });
    } finally {
      await q.stop();
    }
  });

  it("a SET ROLE inside a DO block stays with its client (the probe always asks for the role)", async () => {
    await withTwoClients(p, async (a, b) => {
      await a.query("DO $$BEGIN SET ROLE pg_monitor; END$$");
      await bTakesServerOfA(a, b);
      expect((await b.query("SELECT current_user AS u")).rows[0].u).toBe("postgres");
      await b.query("COMMIT");
      expect((await a.query("SELECT current_user AS u")).rows[0].u).toBe("pg_monitor");
    });
  });

  it("a superuser-only setting SET before a SET ROLE: the next client of that server is not refused, A keeps both", async () => {
    await withTwoClients(p, async (a, b) => {
      await a.query("SET log_min_duration_statement = 0; SET ROLE pg_monitor");
      await bTakesServerOfA(a, b);
      expect((await b.query("SELECT current_user AS u")).rows[0].u).toBe("postgres");
      expect(await show(b, "log_min_duration_statement")).toBe("-1");
      expect((await a.query("SELECT current_user AS u")).rows[0].u).toBe("pg_monitor");
      expect(await show(a, "log_min_duration_statement")).toBe("0");
      await b.query("COMMIT");
    });
  });

  it("an = of the client's own before pg_catalog does not blind the probe", async () => {
    const direct = await connect(inject("pgAppUrl"));
    try {
      await withTwoClients(p, async (a, b) => {
        await a.query(`
          CREATE SCHEMA blind_ops;
          CREATE FUNCTION blind_ops.nope(text, text) RETURNS bool LANGUAGE sql AS 'SELECT false';
          CREATE OPERATOR blind_ops.= (leftarg = text, rightarg = text, function = blind_ops.nope);
          SET search_path = blind_ops, pg_catalog, public;
          SET statement_timeout = '1234ms'`);
        await bTakesServerOfA(a, b);
        expect(await show(b, "statement_timeout")).toBe("0");
        await b.query("COMMIT");
        expect(await show(a, "statement_timeout")).toBe("1234ms");
      });
    } finally {
      await direct.query("DROP SCHEMA IF EXISTS blind_ops CASCADE");
      await direct.end();
    }
  });

  /** Each catalog of objects a schema holds, with its schema column. */
  const SCHEMA_OBJECTS = [
    ["pg_class", "relnamespace"],
    ["pg_proc", "pronamespace"],
    ["pg_operator", "oprnamespace"],
    ["pg_collation", "collnamespace"],
    ["pg_conversion", "connamespace"],
    ["pg_ts_config", "cfgnamespace"],
    ["pg_ts_dict", "dictnamespace"],
    ["pg_ts_parser", "prsnamespace"],
    ["pg_ts_template", "tmplnamespace"],
    ["pg_opclass", "opcnamespace"],
    ["pg_opfamily", "opfnamespace"],
    ["pg_statistic_ext", "stxnamespace"],
  ];

  /** Objects in the session's temporary schema, of every kind. */
  async function tempObjects(c: pg.Client): Promise<number> {
    const counts = SCHEMA_OBJECTS.map(
      ([catalog, schema]) => `(SELECT count(*) FROM ${catalog} WHERE ${schema} = pg_my_temp_schema())`,
    );
    const { rows } = await c.query<{ n: number }>(`SELECT ${counts.join(" + ")} AS n`);
    return Number(rows[0]!.n);
  }

  it.each([
    [
      "BEGIN; SET LOCAL search_path = pg_temp; CREATE TABLE made_local (x int); COMMIT",
      "SELECT * FROM made_local",
    ],
    ["CREATE AGGREGATE pg_temp.total(int) (sfunc = int4pl, stype = int)", "SELECT pg_temp.total(1)"],
    [
      "CREATE OPERATOR pg_temp.=== (function = int4eq, leftarg = int, rightarg = int)",
      "SELECT 1 OPERATOR(pg_temp.===) 1",
    ],
    ["CREATE SEQUENCE pg_temp.counter", "SELECT nextval('pg_temp.counter')"],
    ["CREATE VIEW pg_temp.one AS SELECT 1 AS x", "SELECT * FROM pg_temp.one"],
    ['CREATE COLLATION pg_temp.c_copy FROM "C"', "SELECT 'a' COLLATE pg_temp.c_copy"],
    [
      "CREATE CONVERSION pg_temp.latin FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8",
      "DROP CONVERSION pg_temp.latin",
    ],
    [
      "CREATE TEXT SEARCH CONFIGURATION pg_temp.cfg (COPY = english)",
      "SELECT to_tsvector('pg_temp.cfg', 'x')",
    ],
    [
      "CREATE TEXT SEARCH DICTIONARY pg_temp.dict (TEMPLATE = simple)",
      "SELECT ts_lexize('pg_temp.dict', 'x')",
    ],
    [
      "CREATE TEXT SEARCH PARSER pg_temp.prs (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end, LEXTYPES = prsd_lextype)",
      "DROP TEXT SEARCH PARSER pg_temp.prs",
    ],
    [
      "CREATE TEXT SEARCH TEMPLATE pg_temp.tmpl (LEXIZE = dsimple_lexize)",
      "DROP TEXT SEARCH TEMPLATE pg_temp.tmpl",
    ],
    ["CREATE OPERATOR FAMILY pg_temp.fam USING hash", "DROP OPERATOR FAMILY pg_temp.fam USING hash"],
    [
      "CREATE OPERATOR CLASS pg_temp.cls FOR TYPE int USING hash AS OPERATOR 1 =, FUNCTION 1 hashint4(int)",
      "DROP OPERATOR FAMILY pg_temp.cls USING hash",
    ],
    [
      "CREATE TABLE IF NOT EXISTS stats_base (a int, b int); CREATE STATISTICS pg_temp.pair ON a, b FROM stats_base",
      "DROP TABLE stats_base",
    ],
  ])("%s: pinned, the object stays its client's own", async (make, use) => {
    await withTwoClients(p, async (a, b) => {
      await a.query(make);
      expect(await pinnedAfter(p, a)).toBe(1);
      await b.query("BEGIN"); // the server a used last, were it free
      expect(await tempObjects(b)).toBe(0);
      await a.query(use);
      await b.query("COMMIT");
    });
  });

  it("a placeholder set by a SQL-level PREPARE's statement at each EXECUTE stays with its client", async () => {
    await withTwoClients(p, async (a, b) => {
      await a.query("PREPARE setter AS SELECT set_config('app.prepared', 'mine', false)");
      await a.query("EXECUTE setter");
      await a.query("DEALLOCATE setter");
      await a.query("SELECT 1"); // once the pooler has looked at the session
      await b.query("BEGIN"); // the server a used last, were it free
      expect((await b.query("SELECT current_setting('app.prepared', true) AS v")).rows[0].v ?? "").toBe("");
      expect((await a.query("SELECT current_setting('app.prepared', true) AS v")).rows[0].v).toBe("mine");
      await b.query("COMMIT");
    });
  });

  it("forgets a SET that was rolled back", async () => {
    const a = await connect(p.url());
    try {
      await a.query("BEGIN");
      await a.query("SET work_mem = '77MB'");
      await a.query("ROLLBACK");
      expect(await show(a, "work_mem")).toBe("4MB");
    } finally {
      await a.end();
    }
  });

  it("application_name is always the client's own, never the last client's on that server", async () => {
    const a = await connect(p.url(), { application_name: "alpha" });
    const b = await connect(p.url());
    try {
      for (let i = 0; i < 5; i++) {
        expect(await show(a, "application_name")).toBe("alpha");
        expect(await show(b, "application_name")).toBe("");
      }
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("a session advisory lock excludes other clients: A is pinned to its server until it unlocks", async () => {
    await withTwoClients(p, async (a, b) => {
      expect((await a.query("SELECT pg_try_advisory_lock(4242) AS ok")).rows[0].ok).toBe(true);
      expect(await pinnedAfter(p, a)).toBe(1);
      const pinnedTo = await pid(a);
      expect((await b.query("SELECT pg_try_advisory_lock(4242) AS ok")).rows[0].ok).toBe(false);
      expect(await pid(b)).not.toBe(pinnedTo);
      for (let i = 0; i < 3; i++) expect(await pid(a)).toBe(pinnedTo);
      expect((await a.query("SELECT pg_advisory_unlock(4242) AS ok")).rows[0].ok).toBe(true);
      expect(await pinnedAfter(p, a)).toBe(0);
      expect((await b.query("SELECT pg_try_advisory_lock(4242) AS ok")).rows[0].ok).toBe(true);
      await b.query("SELECT pg_advisory_unlock_all()");
    });
  });

  it("LISTEN through the pooler receives NOTIFY sent elsewhere, also while idle", async () => {
    const a = await connect(p.url());
    const other = await connect(p.url());
    const direct = await connect(inject("pgAppUrl"));
    try {
      const received: pg.Notification[] = [];
      a.on("notification", (n) => received.push(n));
      await a.query("LISTEN pooler_ch");
      // other clients keep using the pool meanwhile
      for (let i = 0; i < 3; i++) await other.query("SELECT 1");
      await direct.query("NOTIFY pooler_ch, 'hello'");
      await waitFor(async () => received.length > 0, "the notification");
      expect(received[0]).toMatchObject({ channel: "pooler_ch", payload: "hello" });
      await a.query("UNLISTEN *");
      expect(await pinnedAfter(p, a)).toBe(0);
    } finally {
      await a.end();
      await other.end();
      await direct.end();
    }
  });

  /**
   * A client SETs a 100-ms `timeout` (statement_timeout or lock_timeout) while `catalog` is locked
   * for 300 ms, so the pooler's look at its session afterwards waits past the client's timeout;
   * then `check` runs on it.
   */
  const shortTimeoutBehindLock = (
    timeout: string,
    catalog: string,
    check: (c: pg.Client) => Promise<void>,
  ): Promise<void> =>
    withTestPooler({ DATABASE_URL: locked.url(), DEFAULT_POOL_SIZE: "1" }, async (q) => {
      const c = await connect(q.url(locked.name));
      c.on("error", () => undefined);
      const direct = await connect(locked.url());
      try {
        await c.query("SELECT 1");
        await direct.query(`BEGIN; LOCK TABLE pg_catalog.${catalog} IN ACCESS EXCLUSIVE MODE`);
        await c.query(`SET ${timeout} = '100ms'`);
        await new Promise((r) => setTimeout(r, 300));
        await direct.query("COMMIT");
        await check(c);
      } finally {
        await c.end().catch(() => undefined);
        await direct.end();
      }
    });

  // the probe's views need pg_rewrite: it waits, as it may take tens of milliseconds on a fresh
  // backend anyway, past the client's 100
  it("a client's short statement_timeout does not cancel the pooler's look at its session", () =>
    shortTimeoutBehindLock("statement_timeout", "pg_rewrite", async (c) => {
      expect(await show(c, "statement_timeout")).toBe("100ms");
      expect((await errorOf(c.query("SELECT pg_sleep(0.5)"))).code).toBe("57014");
    }));

  // what lifts the client's timeout for the probe needs no catalog: a lock on pg_proc (functions),
  // pg_operator or pg_cast, a VACUUM FULL of one say, holds up only the probe after it
  it("the probe's own lifting of a short statement_timeout waits for no catalog", () =>
    shortTimeoutBehindLock("statement_timeout", "pg_proc", async (c) => {
      expect(await show(c, "statement_timeout")).toBe("100ms");
    }));

  it("a client's short lock_timeout does not cancel the pooler's look at its session", () =>
    shortTimeoutBehindLock("lock_timeout", "pg_rewrite", async (c) => {
      expect(await show(c, "lock_timeout")).toBe("100ms");
    }));

  it("a backend terminated while the pooler looks at its session: the client gets PostgreSQL's 57P01", () =>
    behindTheProbe({}, async (c, direct, _p, backend) => {
      const errors: (Error & { code?: string })[] = [];
      c.on("error", (err) => errors.push(err));
      // the probe is terminated where it waits
      await direct.query("SELECT pg_terminate_backend($1)", [backend]);
      await direct.query("COMMIT");
      await waitFor(async () => errors.length > 0, "the client's error");
      expect(errors[0]).toMatchObject({
        code: "57P01",
        message: "terminating connection due to administrator command",
      });
    }));
  it("accepts startup settings (options -c, statement_timeout, idle_in_transaction_session_timeout) per client", async () => {
    const a = await connect(p.url(), {
      options: "-c search_path=pg_catalog,public --work-mem=8MB",
      statement_timeout: 4321,
      idle_in_transaction_session_timeout: 7654,
    });
    const b = await connect(p.url());
    try {
      for (let i = 0; i < 3; i++) {
        expect(await show(a, "search_path")).toBe("pg_catalog,public");
        expect(await show(a, "work_mem")).toBe("8MB");
        expect(await show(a, "statement_timeout")).toBe("4321ms");
        expect(await show(a, "idle_in_transaction_session_timeout")).toBe("7654ms");
        expect(await show(b, "statement_timeout")).toBe("0");
        expect(await show(b, "work_mem")).toBe("4MB");
      }
      // RESET goes back to the startup value, as it does on a server of one's own
      await a.query("SET statement_timeout = 1; RESET statement_timeout");
      expect(await show(a, "statement_timeout")).toBe("4321ms");
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("refuses a bad startup setting at login with PostgreSQL's error", async () => {
    const err = await errorOf(connect(p.url(), { statement_timeout: "soon" as unknown as number }));
    expect(err.code).toBe("22023");
    expect(err.message).toMatch(/invalid value for parameter "statement_timeout"/);
  });

  it("a client leaving with a session advisory lock (Prisma Migrate) leaves it on no pooled server", async () => {
    const key = 72707369;
    const a = await connect(p.url());
    await a.query(`SELECT pg_advisory_lock(${key})`);
    expect(await lockHolders(key)).toBe(1);
    await a.end();
    await waitFor(async () => (await lockHolders(key)) === 0, "the lock to be released");
    const direct = await connect(inject("pgAppUrl"));
    try {
      expect((await direct.query(`SELECT pg_try_advisory_lock(${key}) AS ok`)).rows[0].ok).toBe(true);
    } finally {
      await direct.end();
    }
    expect(onlyPool(p).pinnedClients).toBe(0);
  });

  it("pins for temp tables, WITH HOLD cursors and SQL PREPARE while they live", async () => {
    const a = await connect(p.url());
    try {
      await a.query("CREATE TEMP TABLE scratch (x int)");
      expect(await pinnedAfter(p, a)).toBe(1);
      await a.query("INSERT INTO scratch VALUES (1)");
      expect((await a.query("SELECT count(*)::int AS n FROM scratch")).rows[0].n).toBe(1);
      await a.query("DROP TABLE scratch");
      expect(await pinnedAfter(p, a)).toBe(0);

      await a.query("BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT generate_series(1, 3) AS n; COMMIT");
      expect(await pinnedAfter(p, a)).toBe(1);
      expect((await a.query("FETCH 2 FROM c")).rows).toEqual([{ n: 1 }, { n: 2 }]);
      await a.query("CLOSE c");
      expect(await pinnedAfter(p, a)).toBe(0);

      await a.query("PREPARE q(int) AS SELECT $1 + 1 AS n");
      expect(await pinnedAfter(p, a)).toBe(1);
      expect((await a.query("EXECUTE q(41)")).rows[0].n).toBe(42);
      await a.query("DEALLOCATE q");
      expect(await pinnedAfter(p, a)).toBe(0);

      // a temp table dropped at commit never pins
      await a.query("BEGIN; CREATE TEMP TABLE gone (x int) ON COMMIT DROP; COMMIT");
      expect(await pinnedAfter(p, a)).toBe(0);
    } finally {
      await a.end();
    }
  });
});

describe("a login that is no superuser, under SET ROLE of a superuser role", () => {
  const MEMBER = "pooler_su_member";
  const SUPER = "pooler_su_role";
  const PASSWORD = "member-pw";
  let userlists: UserlistDir;
  let p: TestPooler;
  beforeAll(async () => {
    await createLoginRole(inject("pgAppUrl"), MEMBER, PASSWORD, "md5");
    await dropRole(inject("pgAppUrl"), SUPER);
    const admin = await connect(inject("pgAppUrl"));
    try {
      await admin.query(`CREATE ROLE ${SUPER} SUPERUSER NOLOGIN; GRANT ${SUPER} TO ${MEMBER}`);
    } finally {
      await admin.end();
    }
    userlists = new UserlistDir();
    p = await startTestPooler({
      DEFAULT_POOL_SIZE: "1", // both clients share the one server
      AUTH_TYPE: "md5",
      AUTH_FILE: userlists.write([[MEMBER, PASSWORD]]),
    });
  });
  afterAll(async () => {
    await p.stop();
    userlists.remove();
    await dropRole(inject("pgAppUrl"), MEMBER);
    await dropRole(inject("pgAppUrl"), SUPER);
  });

  const setUnderRole = `SET ROLE ${SUPER}; SET log_min_duration_statement = 0`;

  it("a superuser-only setting SET after SET ROLE: kept as directly, the next client of its server not refused", async () => {
    const url = new URL(inject("pgAppUrl"));
    url.username = MEMBER;
    url.password = PASSWORD;
    const direct = await connect(url.href);
    try {
      await direct.query(setUnderRole); // PostgreSQL checks the privilege of the current role
      expect(await show(direct, "log_min_duration_statement")).toBe("0");
    } finally {
      await direct.end();
    }
    const a = await connect(p.urlAs(MEMBER, PASSWORD));
    const b = await connect(p.urlAs(MEMBER, PASSWORD));
    try {
      await a.query(setUnderRole);
      await a.query("SELECT 1"); // once the pooler has looked at the session
      await b.query("BEGIN"); // the one server: back to b's session
      expect((await b.query("SELECT current_user AS u")).rows[0].u).toBe(MEMBER);
      expect(await show(b, "log_min_duration_statement")).toBe("-1");
      await b.query("COMMIT");
      expect((await a.query("SELECT current_user AS u")).rows[0].u).toBe(SUPER);
      expect(await show(a, "log_min_duration_statement")).toBe("0");
    } finally {
      await a.end();
      await b.end();
    }
  });
});

describe("PIN_SESSION_STATE=off", () => {
  let p: TestPooler;
  beforeAll(async () => {
    p = await startTestPooler({ DEFAULT_POOL_SIZE: "2", PIN_SESSION_STATE: "off" });
  });
  afterAll(() => p.stop());

  it("refuses what would pin, with 0A000, and forwards nothing of it", async () => {
    const a = await connect(p.url());
    try {
      for (const sql of [
        "LISTEN ch",
        "SELECT pg_advisory_lock(1)",
        "CREATE TEMP TABLE t (x int)",
        "PREPARE q AS SELECT 1",
      ]) {
        const err = await errorOf(a.query(sql));
        expect(err.code).toBe("0A000");
        expect(err.message).toMatch(/is not supported in transaction pooling mode \(PIN_SESSION_STATE=off\)/);
      }
      // the same through the extended protocol
      const err = await errorOf(a.query("SELECT pg_advisory_lock($1)", [1]));
      expect(err.code).toBe("0A000");
      expect(await lockHolders(1)).toBe(0);
      // replayable state still works, and the connection too
      await a.query("SET statement_timeout = '2s'");
      expect(await show(a, "statement_timeout")).toBe("2s");
    } finally {
      await a.end();
    }
  });

  it("fails the transaction the refused statement was in, as a real error would", async () => {
    const a = await connect(p.url());
    try {
      await a.query("BEGIN");
      expect((await errorOf(a.query("LISTEN ch"))).code).toBe("0A000");
      expect((await errorOf(a.query("SELECT 1"))).code).toBe("25P02");
      await a.query("ROLLBACK");
      expect((await a.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    } finally {
      await a.end();
    }
  });

  it("a backend terminated as a refused statement reaches it: the client gets PostgreSQL's FATAL, not the refusal", async () => {
    const a = await connect(p.url());
    a.on("error", () => {});
    const direct = await connect(inject("pgAppUrl"));
    let stopped = 0;
    try {
      await a.query("BEGIN");
      stopped = await pid(a);
      // stopped, the backend finds its SIGTERM and the pooler's failing query together: the FATAL goes first
      process.kill(stopped, "SIGSTOP");
      await direct.query("SELECT pg_terminate_backend($1)", [stopped]);
      const refused = errorOf(a.query("LISTEN ch"));
      await new Promise((r) => setTimeout(r, 100));
      process.kill(stopped, "SIGCONT");
      stopped = 0;
      expect(await refused).toMatchObject({
        code: "57P01",
        message: "terminating connection due to administrator command",
      });
    } finally {
      if (stopped) process.kill(stopped, "SIGCONT");
      await a.end().catch(() => {});
      await direct.end();
    }
  });
});

describe("a cancel request while the pooler looks at the session", () => {
  // The probe after a SET waits for pg_rewrite. PostgreSQL acts on a cancel only while a query
  // runs: one sent while the client's next query waits behind the probe is that query's, one sent
  // with nothing of the client's pending is for nothing. Neither may land on the probe.
  /** Sends `sqls` behind the probe and cancels meanwhile: what the last of them got (null: rows or none sent). */
  async function cancelDuringProbe(...sqls: string[]): Promise<{ err: unknown; ms: number }> {
    return behindTheProbe({}, async (c, direct, p) => {
      const started = Date.now();
      const answers = sqls.map((sql) =>
        c.query(sql).then(
          () => null,
          (e: unknown) => e,
        ),
      );
      await new Promise((r) => setTimeout(r, 100));
      const { pid: key, secret } = cancelKeyOf(c);
      const cancel = rawExchange(p.port, cancelRequest(key, secret));
      await new Promise((r) => setTimeout(r, 200));
      await direct.query("COMMIT");
      await cancel;
      const err = (await Promise.all(answers)).at(-1) ?? null;
      const ms = Date.now() - started;
      expect((await c.query("SELECT current_setting('application_name') AS v")).rows).toEqual([
        { v: "probed" },
      ]);
      return { err, ms };
    });
  }

  it("cancels the client's query that waits behind the probe, not the probe", async () => {
    const { err, ms } = await cancelDuringProbe("SELECT pg_sleep(5)");
    expect(err).toMatchObject({ code: "57014", message: "canceling statement due to user request" });
    expect(ms).toBeLessThan(4000);
  });

  it("with no query of the client's pending, cancels nothing: the client goes on", async () => {
    expect((await cancelDuringProbe()).err).toBeNull();
  });

  it("held for a query that ends before it is sent, cancels nothing: not the client's next query", async () => {
    // sent a moment after its query starts (PostgreSQL ignores one while it reads the command), by
    // when that query has ended and the next one, sent on its answer, runs
    const { err } = await cancelDuringProbe("SELECT 1", "SELECT pg_sleep(0.3)");
    expect(err).toBeNull();
  });

  it("with only part of a message pending, cancels nothing: as PostgreSQL's, reading it; the query runs once whole", () =>
    withTestPooler({ DATABASE_URL: locked.url(), DEFAULT_POOL_SIZE: "1" }, async (p) => {
      const direct = await connect(locked.url());
      const c = await RawClient.connect(p.url(locked.name));
      try {
        const [, row] = await c.exchange([query("SELECT pg_backend_pid()")]);
        const backend = Number(row!.body.toString("utf8", 6));
        await direct.query("BEGIN; LOCK TABLE pg_catalog.pg_rewrite IN ACCESS EXCLUSIVE MODE");
        await c.exchange([query("SET application_name = 'probed'")]);
        await lockWaitOf(direct, backend);
        const sleep = query("SELECT pg_sleep(0.5)");
        c.send(sleep.subarray(0, 10));
        await new Promise((r) => setTimeout(r, 100));
        let closed = false;
        const cancel = rawExchange(p.port, cancelRequest(c.cancelKey.pid, c.cancelKey.secret)).then(
          () => (closed = true),
        );
        await waitFor(
          () => [...p.pooler.clients].some((client) => client.heldCancel?.waiting === true),
          "the pooler to hold the cancel",
        );
        await direct.query("COMMIT");
        await waitFor(() => closed, "the cancel request's connection to close", 1000);
        const replies = await c.exchange([sleep.subarray(10)]);
        expect(replies.map((r) => r.type).join("")).toBe("TDCZ");
        await cancel;
      } finally {
        await direct.query("ROLLBACK").catch(() => undefined);
        await c.close();
        await direct.end();
      }
    }));
});

describe("a probe that gets no answer", () => {
  // query_wait_timeout bounds the client's wait for the probe; set to 0, server_connect_timeout does,
  // as it does the pooler's other own queries: a lock held on a catalog must not hold the client for ever
  it("ends the client after server_connect_timeout when query_wait_timeout is 0", () =>
    behindTheProbe({ QUERY_WAIT_TIMEOUT: "0", SERVER_CONNECT_TIMEOUT: "1" }, async (c) => {
      const answer = errorOf(c.query("SELECT 1")).then((e) => e.message);
      const late = new Promise<string>((r) => setTimeout(() => r("still waiting after 4 s"), 4000));
      expect(await Promise.race([answer, late])).toMatch(/could not inspect the session state/);
    }));
});

describe("a client that quits while the pooler inspects its session", () => {
  // A database of its own: the test holds a lock on its pg_class, which would stall others.
  const own = ownDatabase("quit_probe");
  const db = own.name;
  const directUrl = own.url;
  let p: TestPooler;
  beforeAll(async () => {
    p = await startTestPooler({ DATABASE_URL: directUrl(), DEFAULT_POOL_SIZE: "1" });
  });
  afterAll(async () => {
    await p?.stop();
  });

  async function serverPid(): Promise<number> {
    const c = await connect(p.url(db));
    try {
      return await pid(c);
    } finally {
      await c.end();
    }
  }

  // The pooler reads nothing more from a client while it asks the server what the session holds,
  // so what ends it then is the pooler's side: KILL_CLIENT, query_wait_timeout. The probe waits
  // here on a lock on pg_class. The server is cleaned once the probe ends, and kept, not closed.
  it("keeps the server, without what the client left on it", async () => {
    const key = 72707370;
    const before = await serverPid();
    const console_ = await connect(p.url("pgbouncer"));
    try {
      for (const sql of [`SET app.tenant = 'leaver'`, `SELECT pg_advisory_lock(${key})`]) {
        const locker = await connect(directUrl());
        try {
          await locker.query("BEGIN; LOCK TABLE pg_catalog.pg_class IN ACCESS EXCLUSIVE MODE");
          const c = await connect(p.url(db));
          c.on("error", () => {});
          await c.query(sql);
          const { rows } = await console_.query<{ id: string; database: string }>("SHOW CLIENTS");
          await console_.query(`KILL_CLIENT ${rows.find((r) => r.database === db)!.id}`);
          await waitFor(() => onlyPool(p).clientCount === 0, "the client to be gone");
        } finally {
          await locker.query("COMMIT");
          await locker.end();
        }
        expect(await serverPid()).toBe(before);
      }
    } finally {
      await console_.end();
    }
    const c = await connect(p.url(db));
    try {
      expect(await pid(c)).toBe(before);
      const tenant = await c.query("SELECT coalesce(current_setting('app.tenant', true), '') AS v");
      expect(tenant.rows[0].v).toBe("");
      expect((await c.query(`SELECT pg_try_advisory_lock(${key}) AS ok`)).rows[0].ok).toBe(true);
    } finally {
      await c.end();
    }
  });
});

describe("a client that leaves while its settings are being replayed", () => {
  // The sync that brings a server to the client's settings is held up (its backend stopped), the
  // client goes, another waits for the server: it must get a clean one, not the settings of the
  // client that left (the pooler's record of them comes only once the sync has answered).
  it("leaves nothing of them to the next client", async () => {
    const p = await startTestPooler({ DEFAULT_POOL_SIZE: "1" });
    let stopped = 0;
    try {
      const a = await connect(p.url());
      await a.query("SET app.tenant = 'a-secret'");
      // another client takes the server and RESETs the setting there: A's next link replays it
      const b = await connect(p.url());
      stopped = await pid(b);
      await b.end();
      process.kill(stopped, "SIGSTOP");
      void a.query("SELECT 1").catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
      (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      const w = await connect(p.url());
      const seen = w.query("SELECT coalesce(current_setting('app.tenant', true), '') AS v");
      await new Promise((r) => setTimeout(r, 100));
      process.kill(stopped, "SIGCONT");
      stopped = 0;
      expect((await seen).rows[0].v).toBe("");
      await w.end();
    } finally {
      if (stopped) process.kill(stopped, "SIGCONT");
      await p.stop();
    }
  });
});

describe("a cancel request while the pooler replays the client's settings", () => {
  // psql's Ctrl-C on a query that waits behind the SET bringing a server to the client's settings
  // (here a lock wait: a SET default_tablespace reads pg_tablespace, locked on a PostgreSQL of the
  // test's own). PostgreSQL acts on a cancel only while a query of the client's runs: the SET is the
  // pooler's, so the cancel waits for the client's query behind it, or cancels nothing when it sent
  // none. The session keeps its settings either way.
  let pg: PrivatePostgres;
  beforeAll(async () => {
    pg = await startPrivatePostgres();
  });
  afterAll(() => pg?.stop());

  const env = (): Record<string, string> => ({
    DATABASE_URL: pg.url("postgres"),
    DEFAULT_POOL_SIZE: "1",
    ADMIN_USERS: "postgres",
  });

  /**
   * Sends `sqls` on `a` while pg_tablespace is locked and cancels `a` once the pooler's SET waits
   * for the lock; lets the lock go once the pooler has the cancel (held, or done with). Resolves to
   * what the last of `sqls` got (its rows or its error), and how long after the lock went.
   */
  async function cancelBehindLock(
    p: TestPooler,
    a: pg.Client,
    ...sqls: string[]
  ): Promise<{ outcome: unknown; ms: number }> {
    const locker = await connect(pg.url("postgres"));
    try {
      await locker.query("BEGIN; LOCK TABLE pg_catalog.pg_tablespace IN ACCESS EXCLUSIVE MODE");
      const answers = sqls.map((sql) =>
        a.query(sql).then(
          (r) => r.rows,
          (e: unknown) => e,
        ),
      );
      await waitFor(async () => {
        // within its transaction, pg_stat_activity is read once unless told otherwise
        await locker.query("SELECT pg_stat_clear_snapshot()");
        const { rows } = await locker.query(
          "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%default_tablespace%'",
        );
        return rows.length === 1;
      }, "the pooler's SET to wait for the lock");
      // what the client sent behind the SET has reached the pooler before its cancel
      await new Promise((r) => setTimeout(r, 100));
      const { pid: key, secret } = cancelKeyOf(a);
      let closed = false;
      const cancel = rawExchange(p.port, cancelRequest(key, secret)).then(() => (closed = true));
      await waitFor(
        () => closed || [...p.pooler.clients].some((c) => c.heldCancel?.waiting === true),
        "the pooler to take the cancel",
      );
      const started = Date.now();
      await locker.query("COMMIT");
      await cancel;
      const outcome = await answers[answers.length - 1];
      return { outcome, ms: Date.now() - started };
    } finally {
      await locker.query("ROLLBACK").catch(() => undefined);
      await locker.end();
    }
  }

  const canceled = { code: "57014", message: "canceling statement due to user request" };

  it("on a new server: cancels the client's query behind the SET, not the SET; the client keeps its settings", () =>
    withTestPooler(env(), async (p) => {
      const [a, admin] = await Promise.all([connect(p.url("postgres")), connect(p.url("pgbouncer"))]);
      try {
        await a.query("SET default_tablespace = 'pg_default'");
        // its server goes: the next one is brought to the client's settings by a SET
        await admin.query("RECONNECT");
        await waitFor(
          async () => (await admin.query("SHOW SERVERS")).rows.length === 0,
          "the server to close",
        );
        const { outcome, ms } = await cancelBehindLock(p, a, "SELECT pg_sleep(5)");
        expect(outcome).toMatchObject(canceled);
        expect(ms).toBeLessThan(4000);
        expect((await a.query("SELECT current_setting('default_tablespace') AS ts")).rows).toEqual([
          { ts: "pg_default" },
        ]);
      } finally {
        await Promise.all([a.end(), admin.end()]);
      }
    }));

  /** A client kept on its server (an advisory lock) with a startup setting, which RESET ALL takes away there. */
  async function keptWithStartupSetting(p: TestPooler): Promise<pg.Client> {
    const a = await connect(p.url("postgres"), { options: "-c default_tablespace=pg_default" });
    await a.query("SELECT pg_advisory_lock(42)");
    // the pooler looks at the session once the client has its answer: done before pg_tablespace
    // is locked, which that look may need on a fresh backend
    await a.query("SELECT 1");
    return a;
  }

  it("after a RESET ALL of a client kept on its server, with nothing sent behind it: cancels nothing, sets its startup settings again", () =>
    withTestPooler(env(), async (p) => {
      const a = await keptWithStartupSetting(p);
      try {
        expect((await cancelBehindLock(p, a, "RESET ALL")).outcome).toEqual([]);
        expect((await a.query("SELECT current_setting('default_tablespace') AS ts")).rows).toEqual([
          { ts: "pg_default" },
        ]);
      } finally {
        await a.end();
      }
    }));

  it("after a RESET ALL of a client kept on its server: cancels the query sent behind it, sets its startup settings again", () =>
    withTestPooler(env(), async (p) => {
      const a = await keptWithStartupSetting(p);
      try {
        const { outcome, ms } = await cancelBehindLock(p, a, "RESET ALL", "SELECT pg_sleep(5)");
        expect(outcome).toMatchObject(canceled);
        expect(ms).toBeLessThan(4000);
        expect((await a.query("SELECT current_setting('default_tablespace') AS ts")).rows).toEqual([
          { ts: "pg_default" },
        ]);
      } finally {
        await a.end();
      }
    }));

  it("a statement_timeout that ends the replay is not taken for a cancel: the client gets its error, not the SET again and again", () =>
    withTestPooler(env(), async (p) => {
      // 57014 too, but the client sent no cancel request: run again, the SET would time out again for
      // as long as the lock is held, past the timeout the client asked for
      const a = await connect(p.url("postgres"), {
        options: "-c default_tablespace=pg_default -c statement_timeout=200",
      });
      a.on("error", () => undefined);
      const locker = await connect(pg.url("postgres"));
      try {
        await a.query("SELECT pg_advisory_lock(42)");
        // the pooler looks at the session once the client has its answer: done before pg_tablespace
        // is locked, which that look may need on a fresh backend
        await a.query("SELECT 1");
        await locker.query("BEGIN; LOCK TABLE pg_catalog.pg_tablespace IN ACCESS EXCLUSIVE MODE");
        // the pooler's own queries after the RESET (the probe, the SET bringing the value back) wait
        const answer = errorOf(a.query("RESET default_tablespace").then(() => a.query("SELECT 1")));
        const late = new Promise<string>((r) => setTimeout(() => r("still waiting after 3 s"), 3000));
        expect(await Promise.race([answer.then((e) => e.message), late])).toMatch(/statement timeout/);
      } finally {
        await locker.query("ROLLBACK").catch(() => undefined);
        await locker.end();
        await a.end().catch(() => undefined);
      }
    }));
});

describe("server_reset_query", () => {
  /**
   * The last statement the only server of a fresh pooler ran, once a client left it in the middle of
   * a transaction (in transaction pooling a client between transactions holds no server).
   */
  async function lastStatementAfterClientLeaves(env: Record<string, string>): Promise<string> {
    const p = await startTestPooler({ DEFAULT_POOL_SIZE: "1", ...env });
    const direct = await connect(inject("pgAppUrl"));
    try {
      const a = await connect(p.url());
      const backend = await pid(a);
      await a.query("BEGIN");
      await a.query("SELECT 'the client was here'");
      await a.end();
      await waitFor(() => onlyPool(p).idle.length === 1, "the server to be idle");
      const r = await direct.query<{ query: string }>("SELECT query FROM pg_stat_activity WHERE pid = $1", [
        backend,
      ]);
      return r.rows[0]!.query;
    } finally {
      await direct.end();
      await p.stop();
    }
  }

  it("runs when a client leaves only in session pooling, or with server_reset_query_always, as in PgBouncer", async () => {
    // the pooler's own ROLLBACK, and nothing after it
    expect(await lastStatementAfterClientLeaves({ POOL_MODE: "transaction" })).toBe("ROLLBACK");
    expect(
      await lastStatementAfterClientLeaves({ POOL_MODE: "transaction", SERVER_RESET_QUERY_ALWAYS: "1" }),
    ).toBe("DISCARD ALL");
    expect(await lastStatementAfterClientLeaves({ POOL_MODE: "session" })).toBe("DISCARD ALL");
  });
});
