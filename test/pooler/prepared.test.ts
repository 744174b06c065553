// Protocol-level named prepared statements in transaction pooling (MAX_PREPARED_STATEMENTS): the
// rows of README "What works in transaction mode" that fail with PgBouncer 1.18, and the edges.
import crypto from "node:crypto";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PrismaClient } from "../../app/generated/prisma/client.ts";
import {
  bind,
  close,
  describe as describeMsg,
  execute,
  parse,
  query,
  sync,
} from "../../pooler/protocol/messages.ts";
import { startBenchServer, type BenchServer } from "../support/bench-server.ts";
import { connect, errorOf, pgbench } from "../support/clients.ts";
import { startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";
import { RawClient, errorOfReply, type Reply } from "../support/protocol.ts";

/** Replies as one line: types, errors with their code and message (to compare with PostgreSQL's own). */
function transcript(replies: Reply[]): string {
  return replies
    .map((m) => (m.type === "E" ? `E(${errorOfReply(m).get("C")} ${errorOfReply(m).get("M")})` : m.type))
    .join(" ");
}

async function pid(c: pg.Client): Promise<number> {
  return (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
}

describe("named prepared statements in transaction pooling", () => {
  let p: TestPooler;
  beforeAll(async () => {
    p = await startTestPooler({ DEFAULT_POOL_SIZE: "4", MAX_CLIENT_CONN: "400" });
  });
  afterAll(() => p.stop());

  it("300 concurrent named queries (3 names) through pg.Pool(10) all succeed", async () => {
    const texts = ["SELECT $1::int AS v", "SELECT $1::int * 2 AS v", "SELECT $1::int + 1000 AS v"];
    const pool = new pg.Pool({ connectionString: p.url(), max: 10 });
    try {
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          pool.query<{ v: number }>({ name: `stmt_${i % 3}`, text: texts[i % 3]!, values: [i] }),
        ),
      );
      expect(results.map((r) => r.rows[0]!.v)).toEqual(
        Array.from({ length: 300 }, (_, i) => [i, i * 2, i + 1000][i % 3]),
      );
    } finally {
      await pool.end();
    }
  });

  it("clients A and B both prepare s1 with different SQL: each gets its own statement", async () => {
    const a = await connect(p.url());
    const b = await connect(p.url());
    try {
      expect((await a.query({ name: "s1", text: "SELECT 'a' AS who" })).rows[0].who).toBe("a");
      const serverOfA = await pid(a);
      expect((await b.query({ name: "s1", text: "SELECT 'b' AS who" })).rows[0].who).toBe("b");
      expect(await pid(b)).toBe(serverOfA); // the same server: the names did meet there
      for (let i = 0; i < 3; i++) {
        expect((await a.query({ name: "s1", text: "SELECT 'a' AS who" })).rows[0].who).toBe("a");
        expect((await b.query({ name: "s1", text: "SELECT 'b' AS who" })).rows[0].who).toBe("b");
      }
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("Prisma with statementNameGenerator (statement caching): 200 concurrent findMany succeed", async () => {
    const prisma = new PrismaClient({
      adapter: new PrismaPg(
        { connectionString: p.url(), max: 10 },
        {
          statementNameGenerator: (q) =>
            `p_${crypto.createHash("sha1").update(q.sql).digest("hex").slice(0, 16)}`,
        },
      ),
    });
    try {
      const results = await Promise.allSettled(Array.from({ length: 200 }, () => prisma.post.findMany()));
      expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    } finally {
      await prisma.$disconnect();
    }
  });

  it("Prisma's interactive transaction that fails rolls back, also on a server that prepared its ROLLBACK for another client", async () => {
    // one server: the second client's transaction lands where the first one's ROLLBACK is prepared
    const single = await startTestPooler({ DEFAULT_POOL_SIZE: "1" });
    const clients = [0, 1].map(
      () =>
        new PrismaClient({
          adapter: new PrismaPg(
            { connectionString: single.url(), max: 1 },
            {
              statementNameGenerator: (q) =>
                `p_${crypto.createHash("sha1").update(q.sql).digest("hex").slice(0, 16)}`,
            },
          ),
        }),
    );
    try {
      for (const prisma of clients) {
        const failed = await errorOf(
          prisma.$transaction(async (tx) => {
            await tx.post.count();
            await tx.$executeRawUnsafe("SELECT 1 / 0");
          }),
        );
        expect(failed.message).toMatch(/division by zero/);
        // the ROLLBACK ran: the connection is usable, not stuck in an aborted transaction (25P02)
        expect(await prisma.post.count()).toBeGreaterThanOrEqual(0);
      }
    } finally {
      await Promise.all(clients.map((c) => c.$disconnect()));
      await single.stop();
    }
  });

  it("DEALLOCATE ALL and DISCARD ALL drop the client's statements, not anyone else's", async () => {
    const a = await connect(p.url());
    const b = await connect(p.url());
    /** pg remembers what it prepared on its connection: make it send Parse again. */
    const forgetPrepared = (c: pg.Client): void => {
      (
        c as unknown as { connection: { parsedStatements: Record<string, string> } }
      ).connection.parsedStatements = {};
    };
    try {
      await b.query({ name: "theirs", text: "SELECT 1 AS n" });
      for (const reset of ["DEALLOCATE ALL", "DISCARD ALL"]) {
        forgetPrepared(a);
        await a.query({ name: "mine", text: "SELECT 1 AS n" });
        await a.query(reset);
        // pg still believes "mine" is prepared and sends only Bind: PostgreSQL's own error, as directly
        const err = await errorOf(a.query({ name: "mine", text: "SELECT 1 AS n" }));
        expect(err.code).toBe("26000");
        expect(err.message).toBe('prepared statement "mine" does not exist');
        expect((await b.query({ name: "theirs", text: "SELECT 1 AS n" })).rows[0].n).toBe(1);
        // a fresh connection prepares it again, on a server where it may still exist
        const again = await connect(p.url());
        expect((await again.query({ name: "mine", text: "SELECT 1 AS n" })).rows[0].n).toBe(1);
        await again.end();
      }
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("one text prepared by clients of different search_paths is each one's own statement", async () => {
    // schema per tenant, the tenants' tables differ: shared, PostgreSQL refused the second tenant's
    // Bind ("cached plan must not change result type", 0A000) on the server the first one prepared it
    const setup = await connect(p.url());
    await setup.query(`
      DROP SCHEMA IF EXISTS ps_tenant_a, ps_tenant_b CASCADE;
      CREATE SCHEMA ps_tenant_a; CREATE TABLE ps_tenant_a.t (x int); INSERT INTO ps_tenant_a.t VALUES (1);
      CREATE SCHEMA ps_tenant_b; CREATE TABLE ps_tenant_b.t (y text, z text); INSERT INTO ps_tenant_b.t VALUES ('b', 'bb');`);
    const a = await connect(p.url());
    const b = await connect(p.url(), { options: "-c search_path=ps_tenant_b" });
    try {
      await a.query("SET search_path = ps_tenant_a");
      for (let i = 0; i < 3; i++) {
        expect((await a.query({ name: "q", text: "SELECT * FROM t" })).rows).toEqual([{ x: 1 }]);
        expect((await b.query({ name: "q", text: "SELECT * FROM t" })).rows).toEqual([{ y: "b", z: "bb" }]);
      }
    } finally {
      await a.end();
      await b.end();
      await setup.query("DROP SCHEMA ps_tenant_a, ps_tenant_b CASCADE");
      await setup.end();
    }
  });

  it.each(["SET LOCAL search_path = ps_sp_1", "SET LOCAL SCHEMA 'ps_sp_1'"])(
    "a search_path SET earlier in the same transaction or pipeline counts for a Parse (%s): not shared with the previous search_path's",
    (setLocal) =>
      // One server. All three clients start in ps_sp_2; A's transaction SETs ps_sp_1, whose t has other
      // columns, and C's SET LOCAL does in the same write as its Parse: keyed by their previous
      // search_path, B's statement answered their Parse (0A000 cached plan must not change result type).
      withTestPooler({ DEFAULT_POOL_SIZE: "1" }, async (single) => {
        const setup = await connect(single.url());
        await setup.query(`
        DROP SCHEMA IF EXISTS ps_sp_1, ps_sp_2 CASCADE;
        CREATE SCHEMA ps_sp_1; CREATE TABLE ps_sp_1.t (x int); INSERT INTO ps_sp_1.t VALUES (1);
        CREATE SCHEMA ps_sp_2; CREATE TABLE ps_sp_2.t (y text, z text); INSERT INTO ps_sp_2.t VALUES ('b', 'bb');`);
        const inSchema2 = { options: "-c search_path=ps_sp_2" };
        const a = await connect(single.url(), inSchema2);
        const b = await connect(single.url(), inSchema2);
        const c = await RawClient.connect(single.url(), inSchema2);
        const text = "SELECT * FROM t";
        const schema2Rows = [{ y: "b", z: "bb" }];
        try {
          const oneColumn = (replies: Reply[]): void => {
            expect(transcript(replies)).toMatch(/^1 2 D C Z/);
            expect(replies[2]!.body.readInt16BE(0)).toBe(1); // ps_sp_1.t's
          };
          const run = (name: string): Buffer[] => [parse(name, text), bind("", name), execute(), sync()];
          // C first, the SET LOCAL in the same write as the Parse
          const piped = await c.exchange([query(`BEGIN; ${setLocal}`), ...run("q"), query("COMMIT")], 3);
          oneColumn(piped.slice(3));
          expect((await b.query({ name: "q", text })).rows).toEqual(schema2Rows);
          await a.query("BEGIN");
          await a.query("SET search_path = ps_sp_1");
          expect((await a.query({ name: "q", text })).rows).toEqual([{ x: 1 }]);
          await a.query("COMMIT");
          // C again, the SET LOCAL earlier in the transaction
          await c.exchange([query(`BEGIN; ${setLocal}`)]);
          oneColumn(await c.exchange(run("q2")));
          await c.exchange([query("COMMIT")]);
          expect((await b.query({ name: "q", text })).rows).toEqual(schema2Rows);
        } finally {
          await Promise.all([a.end(), b.end(), c.close()]);
          await setup.query("DROP SCHEMA ps_sp_1, ps_sp_2 CASCADE");
          await setup.end();
        }
      }),
  );

  it("a failed Parse leaves no mapping; a name never prepared gets PostgreSQL's 26000", async () => {
    const c = await RawClient.connect(p.url());
    try {
      const failed = await c.exchange([parse("s", "SELEC 1"), sync()]);
      expect(errorOfReply(failed[0]!).get("C")).toBe("42601");
      const ok = await c.exchange([parse("s", "SELECT 1"), bind("", "s"), execute(), sync()]);
      expect(ok.map((m) => m.type).join("")).toBe("12DCZ");
      const unknown = await c.exchange([describeMsg("S", "nope"), sync()]);
      expect(errorOfReply(unknown[0]!).get("M")).toBe('prepared statement "nope" does not exist');
      expect(errorOfReply(unknown[0]!).get("C")).toBe("26000");
    } finally {
      await c.close();
    }
  });
});

describe("what follows a Parse that fails or breaks off a COPY, in the same write, with SQL the server holds for another client", () => {
  // One server: client B prepares the SQL there first, so client A's Parse of it is answered by a
  // check, and what A sends behind it in the same write is routed before the check's outcome is known.
  /** A Parse of s that fails in a failed transaction (25P02), a Sync, the ROLLBACK, then `rest`. */
  const failedThenRolledBack = (...rest: Buffer[]): Buffer[] => [
    query("BEGIN; SELECT 1 / 0"),
    parse("s", "SELECT 1 AS n"),
    sync(),
    query("ROLLBACK"),
    ...rest,
  ];
  /** `sql` run with the extended protocol's unnamed statement. */
  const unnamed = (sql: string): Buffer[] => [parse("", sql), bind("", ""), execute(), sync()];
  /** A Parse of s of each text, each behind its own Sync. */
  const parsesOfS = (...texts: string[]): Buffer[] => texts.flatMap((text) => [parse("s", text), sync()]);
  // `direct`: what PostgreSQL answers, to be sure each scenario is the case it names. `opening`
  // (up to a COPY FROM STDIN) is sent first, answered up to the CopyInResponse; `later` once `send` is.
  const scenarios: {
    name: string;
    sql: string;
    opening?: Buffer[];
    send: Buffer[];
    readyCount: number;
    later?: Buffer[];
    direct: RegExp;
  }[] = [
    {
      name: "in a failed transaction: the Parse fails (25P02), so the name does not exist (26000)",
      sql: "SELECT 1 AS n",
      send: [
        query("BEGIN; SELECT 1 / 0"),
        parse("s", "SELECT 1 AS n"),
        sync(),
        bind("", "s"),
        execute(),
        sync(),
        describeMsg("S", "s"),
        sync(),
        query("ROLLBACK"),
      ],
      readyCount: 5,
      direct: /26000/,
    },
    {
      name: "a ROLLBACK skipped behind a failed Parse is not run by the Bind after the Sync",
      sql: "ROLLBACK",
      send: [
        query("BEGIN"),
        parse("bad", "SELEC 1"),
        parse("r", "ROLLBACK"),
        sync(),
        bind("", "r"),
        execute(),
        sync(),
        query("SELECT 1"),
        query("ROLLBACK"),
      ],
      readyCount: 5,
      direct: /26000/,
    },
    {
      name: "a ROLLBACK parsed in a failed transaction succeeds, and the Bind after the Sync runs it",
      sql: "ROLLBACK",
      send: [query("BEGIN; SELECT 1 / 0"), parse("r", "ROLLBACK"), sync(), bind("", "r"), execute(), sync()],
      readyCount: 3,
      direct: /1 Z 2 C Z$/,
    },
    {
      name: "a Parse that breaks off a COPY FROM STDIN is consumed by it (08P01): the name does not exist after",
      sql: "SELECT 1 AS n",
      opening: [query("COPY ps_copy FROM STDIN")],
      send: [parse("s", "SELECT 1 AS n"), bind("", "s"), execute(), sync()],
      readyCount: 2,
      later: [bind("", "s"), execute(), sync()],
      direct: /^G E\(08P01 .*\) Z E\(26000 .*\) Z E\(26000 .*\) Z$/,
    },
    {
      name: "a Close that breaks off a COPY FROM STDIN is consumed by it (08P01), not answered by the pooler",
      sql: "SELECT 1 AS n",
      opening: [query("COPY ps_copy FROM STDIN")],
      send: [close("S", "s"), sync()],
      readyCount: 2,
      direct: /^G E\(08P01 .*\) Z Z$/,
    },
    {
      name: "a Close in the same write as a COPY FROM STDIN is consumed by it (08P01), not answered by the pooler",
      sql: "SELECT 1 AS n",
      send: [query("COPY ps_copy FROM STDIN"), close("S", "s"), sync()],
      readyCount: 2,
      direct: /^G E\(08P01 .*\) Z Z$/,
    },
    {
      name: "a Parse that breaks off a COPY FROM STDIN started by an Execute is consumed by it (08P01)",
      sql: "SELECT 1 AS n",
      opening: [parse("", "COPY ps_copy FROM STDIN"), bind("", ""), execute(), sync()],
      send: [parse("s", "SELECT 1 AS n"), sync()],
      readyCount: 1,
      later: [bind("", "s"), execute(), sync()],
      direct: /^1 2 G E\(08P01 .*\) Z E\(26000 .*\) Z$/,
    },
    {
      name: "a Bind that breaks off a COPY FROM STDIN is consumed by it (08P01), the statement not run",
      sql: "SELECT 1 AS n",
      opening: [parse("s", "SELECT 1 AS n"), sync(), query("COPY ps_copy FROM STDIN")],
      send: [bind("", "s"), execute(), sync()],
      readyCount: 2,
      later: [bind("", "s"), execute(), sync()],
      direct: /^1 Z G E\(08P01 .*\) Z E\(34000 .*\) Z 2 D C Z$/,
    },
    {
      name: "a Parse of a name after its Parse failed in a failed transaction and a ROLLBACK, in the same write, succeeds",
      sql: "SELECT 1 AS n",
      send: failedThenRolledBack(parse("s", "SELECT 2 AS n"), bind("", "s"), execute(), sync()),
      readyCount: 4,
      later: [bind("", "s"), execute(), sync()],
      direct: /E\(25P02 .*\) Z C Z 1 2 D C Z 2 D C Z$/,
    },
    {
      name: "the same Parse again after it failed in a failed transaction and a ROLLBACK, in the same write, succeeds",
      sql: "SELECT 1 AS n",
      send: failedThenRolledBack(parse("s", "SELECT 1 AS n"), sync()),
      readyCount: 4,
      later: [bind("", "s"), execute(), sync()],
      direct: /E\(25P02 .*\) Z C Z 1 Z 2 D C Z$/,
    },
    {
      name: "a Parse of a name after its Parse failed (SQL the server lacks), behind a Sync in the same write, succeeds",
      sql: "SELECT 1 AS n",
      send: [parse("s", "SELEC 1"), sync(), parse("s", "SELECT 2 AS n"), bind("", "s"), execute(), sync()],
      readyCount: 2,
      later: [bind("", "s"), execute(), sync()],
      direct: /^E\(42601 .*\) Z 1 2 D C Z 2 D C Z$/,
    },
    {
      name: "a second Parse of a name whose Parse in a failed transaction succeeded, after a Sync, gets 42P05",
      sql: "ROLLBACK",
      send: [
        query("BEGIN; SELECT 1 / 0"),
        parse("r", "ROLLBACK"),
        sync(),
        parse("r", "ROLLBACK"),
        sync(),
        bind("", "r"),
        execute(),
        sync(),
      ],
      readyCount: 4,
      direct: /1 Z E\(42P05 .*\) Z 2 C Z$/,
    },
    {
      name: "a Parse skipped behind a failed one, of SQL the server holds for another client, leaves its name free after the Sync",
      sql: "SELECT 1 AS n",
      send: [
        parse("bad", "SELEC 1"),
        parse("s", "SELECT 1 AS n"),
        sync(),
        parse("s", "SELECT 2 AS n"),
        bind("", "s"),
        execute(),
        sync(),
      ],
      readyCount: 2,
      later: [bind("", "s"), execute(), sync()],
      direct: /^E\(42601 .*\) Z 1 2 D C Z 2 D C Z$/,
    },
    {
      name: "a Parse of SQL the server holds for another client, behind an Execute that starts a COPY FROM STDIN, is consumed by it (08P01)",
      sql: "SELECT 1 AS n",
      send: [
        parse("", "COPY ps_copy FROM STDIN"),
        bind("", ""),
        execute(),
        parse("s", "SELECT 1 AS n"),
        sync(),
      ],
      readyCount: 1,
      later: [bind("", "s"), execute(), sync()],
      direct: /^1 2 G E\(08P01 .*\) Z E\(26000 .*\) Z$/,
    },
    {
      name: "a Close of a name behind an Execute that starts a COPY FROM STDIN is consumed by it (08P01): the name still exists",
      sql: "SELECT 1 AS n",
      opening: [
        parse("s", "SELECT 1 AS n"),
        sync(),
        parse("", "COPY ps_copy FROM STDIN"),
        bind("", ""),
        execute(),
        sync(),
      ],
      send: [close("S", "s"), sync()],
      readyCount: 1,
      later: [bind("", "s"), execute(), sync()],
      direct: /^1 Z 1 2 G E\(08P01 .*\) Z 2 D C Z$/,
    },
    {
      name: "three Parses of a name, the second failing: the name keeps the first's statement",
      sql: "SELECT 1 AS n",
      send: parsesOfS("SELECT 3 AS n", "SELEC 1", "SELECT 4 AS n"),
      readyCount: 3,
      later: [bind("", "s"), execute(), sync()],
      direct: /^1 Z E\(42601 .*\) Z E\(42P05 .*\) Z 2 D C Z$/,
    },
    {
      name: "three Parses of a name, the first failing: the name is the second's statement",
      sql: "SELECT 1 AS n",
      send: parsesOfS("SELEC 1", "SELECT 3 AS n", "SELECT 4 AS n"),
      readyCount: 3,
      later: [bind("", "s"), execute(), sync()],
      direct: /^E\(42601 .*\) Z 1 Z E\(42P05 .*\) Z 2 D C Z$/,
    },
    {
      name: "two Parses of a name, the second failing, then DEALLOCATE ALL: the name is gone",
      sql: "SELECT 1 AS n",
      send: [...parsesOfS("SELECT 3 AS n", "SELECT 4 AS n"), query("DEALLOCATE ALL")],
      readyCount: 3,
      later: [bind("", "s"), execute(), sync()],
      direct: /^1 Z E\(42P05 .*\) Z C Z E\(26000 .*\) Z$/,
    },
    {
      name: "two Parses of a name, the second failing, then a Close: the name is gone",
      sql: "SELECT 1 AS n",
      send: [...parsesOfS("SELECT 3 AS n", "SELECT 4 AS n"), close("S", "s"), sync()],
      readyCount: 3,
      later: [bind("", "s"), execute(), sync()],
      direct: /^1 Z E\(42P05 .*\) Z 3 Z E\(26000 .*\) Z$/,
    },
    // PostgreSQL drops the names only when DEALLOCATE ALL or DISCARD ALL runs (not transactional:
    // an error after it in the same Query does not bring them back); with the extended protocol, a
    // Parse or Bind of it fails in a failed transaction (25P02), DISCARD ALL's Execute in a block
    ...(
      [
        [
          "a DEALLOCATE ALL in a failed transaction (25P02)",
          ["BEGIN; SELECT 1 / 0", "DEALLOCATE ALL", "ROLLBACK"],
          true,
        ],
        ["a DISCARD ALL in a transaction block (25001)", ["BEGIN", "DISCARD ALL", "ROLLBACK"], true],
        ["a DEALLOCATE ALL behind an error in its Query", ["SELECT 1 / 0; DEALLOCATE ALL"], true],
        ["a DEALLOCATE ALL ahead of an error in its Query", ["DEALLOCATE ALL; SELECT 1 / 0"], false],
        ["a DEALLOCATE ALL that runs", ["DEALLOCATE ALL"], false],
        [
          "an unnamed Parse of DEALLOCATE ALL in a failed transaction (25P02)",
          ["BEGIN; SELECT 1 / 0", unnamed("DEALLOCATE ALL"), "ROLLBACK"],
          true,
        ],
        [
          "a Bind of a DEALLOCATE ALL prepared before, in a failed transaction (25P02)",
          [
            [parse("d", "DEALLOCATE ALL"), sync()],
            "BEGIN; SELECT 1 / 0",
            [bind("", "d"), execute(), sync()],
            "ROLLBACK",
          ],
          true,
        ],
        [
          "an unnamed DISCARD ALL in a transaction block (25001)",
          ["BEGIN", unnamed("DISCARD ALL"), "ROLLBACK"],
          true,
        ],
        ["an unnamed DEALLOCATE ALL that runs", [unnamed("DEALLOCATE ALL")], false],
      ] as const
    ).map(([what, requests, kept]) => ({
      name: `${what}: the name ${kept ? "still exists" : "is gone"} for a Bind sent behind it`,
      sql: "SELECT 1 AS n",
      send: [
        parse("s", "SELECT 1 AS n"),
        sync(),
        ...requests.flatMap((r) => (typeof r === "string" ? [query(r)] : r)),
        bind("", "s"),
        execute(),
        sync(),
      ],
      readyCount: requests.length + 2,
      direct: kept ? /Z 2 D C Z$/ : /Z E\(26000 .*\) Z$/,
    })),
    {
      name: "a Parse skipped behind an error, then a DISCARD ALL that fails: the name does not exist",
      sql: "SELECT 1 AS n",
      send: [
        bind("", "nothing"),
        parse("s", "SELECT 1 AS n"),
        sync(),
        query("BEGIN"),
        query("DISCARD ALL"),
        query("ROLLBACK"),
        bind("", "s"),
        execute(),
        sync(),
      ],
      readyCount: 5,
      direct: /E\(25001 .*\) Z C Z E\(26000 .*\) Z$/,
    },
    {
      name: "a Close and a DEALLOCATE ALL Query, both skipped behind a failed Parse of their batch: the name still exists",
      sql: "SELECT 1 AS n",
      send: [
        parse("s", "SELECT 1 AS n"),
        sync(),
        parse("bad", "SELEC 1"),
        close("S", "s"),
        query("DEALLOCATE ALL"),
        sync(),
      ],
      readyCount: 2,
      later: [bind("", "s"), execute(), sync()],
      direct: /^1 Z E\(42601 .*\) Z 2 D C Z$/,
    },
    {
      name: "a Close of a name whose Parse is unanswered and an unnamed DEALLOCATE ALL, both skipped behind a failed Parse: the name still exists",
      sql: "SELECT 1 AS n",
      send: [
        parse("s", "SELECT 1 AS n"),
        parse("bad", "SELEC 1"),
        close("S", "s"),
        ...unnamed("DEALLOCATE ALL"),
      ],
      readyCount: 1,
      later: [bind("", "s"), execute(), sync()],
      direct: /^1 E\(42601 .*\) Z 2 D C Z$/,
    },
    {
      name: "a Parse of a new name and an unnamed DEALLOCATE ALL, both skipped behind a failed Parse: the name does not exist",
      sql: "SELECT 1 AS n",
      send: [parse("bad", "SELEC 1"), parse("s", "SELECT 1 AS n"), ...unnamed("DEALLOCATE ALL")],
      readyCount: 1,
      later: [bind("", "s"), execute(), sync()],
      direct: /^E\(42601 .*\) Z E\(26000 .*\) Z$/,
    },
    {
      name: "a DEALLOCATE ALL that runs, a Parse, then one skipped behind an error in the same batch: the Parse's name still exists",
      // (another text: behind a DEALLOCATE ALL the client's search_path is unknown, its Parse not shared)
      sql: "SELECT 2 AS n",
      send: [
        ...unnamed("DEALLOCATE ALL").slice(0, -1),
        parse("s", "SELECT 1 AS n"),
        ...unnamed("SELECT 1 / 0").slice(0, -1),
        ...unnamed("DEALLOCATE ALL"),
      ],
      readyCount: 1,
      later: [bind("", "s"), execute(), sync()],
      direct: /^1 2 C 1 1 E\(22012 .*\) Z 2 D C Z$/,
    },
    {
      name: "a DEALLOCATE ALL that fails (25P02), then in the next batch a ROLLBACK and one that runs: the name is gone",
      sql: "SELECT 1 AS n",
      send: [
        parse("s", "SELECT 1 AS n"),
        sync(),
        query("BEGIN; SELECT 1 / 0"),
        ...unnamed("DEALLOCATE ALL"),
        ...unnamed("ROLLBACK").slice(0, -1),
        ...unnamed("DEALLOCATE ALL"),
      ],
      readyCount: 4,
      later: [bind("", "s"), execute(), sync()],
      direct: /Z E\(26000 .*\) Z$/,
    },
  ];
  let p: TestPooler;
  beforeAll(async () => {
    p = await startTestPooler({ DEFAULT_POOL_SIZE: "1" });
    const setup = await connect(p.url());
    await setup.query("CREATE TABLE IF NOT EXISTS ps_copy (x int)");
    await setup.end();
  });
  afterAll(() => p.stop());

  for (const { name, sql, opening, send, readyCount, later, direct: expected } of scenarios) {
    it(`${name}, as PostgreSQL answers directly`, async () => {
      const b = await connect(p.url());
      const runOn = async (url: string): Promise<string> => {
        const a = await RawClient.connect(url);
        try {
          const replies: Reply[] = [];
          if (opening !== undefined) {
            a.send(...opening);
            do replies.push(await a.next());
            while (replies.at(-1)!.type !== "G");
          }
          replies.push(...(await a.exchange(send, readyCount)));
          if (later !== undefined) replies.push(...(await a.exchange(later)));
          return transcript(replies);
        } finally {
          await a.close();
        }
      };
      try {
        await b.query({ name: "b", text: sql });
        const direct = await runOn(inject("pgAppUrl"));
        expect(direct).toMatch(expected);
        expect(await runOn(p.url())).toBe(direct);
        expect((await b.query({ name: "b", text: sql })).command).toBe(sql.split(" ")[0]);
        // B's Bind closed what A's check left on the server
        const left = await b.query("SELECT name FROM pg_prepared_statements WHERE name LIKE 'POOLER_parse%'");
        expect(left.rows).toEqual([]);
        // nor a statement under a name the pooler took for another's
        const twice = await b.query(
          "SELECT statement FROM pg_prepared_statements GROUP BY statement HAVING count(*) > 1",
        );
        expect(twice.rows).toEqual([]);
      } finally {
        await b.end();
      }
    });
  }
});

describe("MAX_PREPARED_STATEMENTS", () => {
  it("evicts the least recently used beyond the limit and prepares again when needed", async () => {
    const p = await startTestPooler({ DEFAULT_POOL_SIZE: "1", MAX_PREPARED_STATEMENTS: "2" });
    const c = await connect(p.url());
    try {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 5; i++) {
          const r = await c.query({ name: `q${i}`, text: `SELECT ${i} AS n, $1::int AS r`, values: [round] });
          expect(r.rows[0]).toEqual({ n: i, r: round });
        }
      }
      const onServer = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'POOLER_%'",
      );
      expect(onServer.rows[0]!.n).toBeLessThanOrEqual(2);
    } finally {
      await c.end();
      await p.stop();
    }
  });

  it("a second Parse of a name whose first is unanswered gets 42P05 even when the first's statement is evicted between them", async () => {
    // capacity 1: y's Parse evicts x's statement (a Close behind its Parse); x's second Parse, sent
    // under that statement's name, must not take the name PostgreSQL has just freed
    const send = [
      parse("x", "SELECT 1 AS n"),
      parse("y", "SELECT 2 AS n"),
      sync(),
      parse("x", "SELECT 3 AS n"),
      sync(),
    ];
    const later = [bind("", "x"), execute(), sync()];
    const runOn = async (url: string): Promise<string> => {
      const a = await RawClient.connect(url);
      try {
        return transcript([...(await a.exchange(send, 2)), ...(await a.exchange(later))]);
      } finally {
        await a.close();
      }
    };
    const direct = await runOn(inject("pgAppUrl"));
    expect(direct).toMatch(/^1 1 Z E\(42P05 .*\) Z 2 D C Z$/);
    await withTestPooler({ DEFAULT_POOL_SIZE: "1", MAX_PREPARED_STATEMENTS: "1" }, async (p) => {
      expect(await runOn(p.url())).toBe(direct);
    });
  });

  it("a parse check's statement is closed on a server that afterwards serves only simple queries", async () => {
    const p = await startTestPooler({ DEFAULT_POOL_SIZE: "1" });
    const b = await connect(p.url());
    try {
      await b.query({ name: "k", text: "SELECT 1 AS one" });
      // behind an unanswered Query, a Parse of SQL the server has goes under a check's name
      const a = await RawClient.connect(p.url());
      await a.exchange([query("SELECT 2"), parse("mine", "SELECT 1 AS one"), sync()], 2);
      await a.close();
      const left = await b.query("SELECT name FROM pg_prepared_statements WHERE name LIKE 'POOLER_parse%'");
      expect(left.rows).toEqual([]);
    } finally {
      await b.end();
      await p.stop();
    }
  });

  it("0 turns the pooler's handling off: names go to the server unchanged, as PgBouncer 1.18", async () => {
    const p = await startTestPooler({ DEFAULT_POOL_SIZE: "1", MAX_PREPARED_STATEMENTS: "0" });
    const a = await connect(p.url());
    const b = await connect(p.url());
    try {
      await a.query({ name: "shared", text: "SELECT 1" });
      const err = await errorOf(b.query({ name: "shared", text: "SELECT 2" }));
      expect(err.code).toBe("42P05");
    } finally {
      await a.end();
      await b.end();
      await p.stop();
    }
  });
});

describe("pgbench -M prepared through a pool of 20", () => {
  let bench: BenchServer;
  beforeAll(async () => {
    bench = await startBenchServer("pooler-prepared");
  }, 120_000);
  afterAll(() => bench?.stop());

  it(
    "10, 50 and 200 clients: 0 failed transactions; prepared vs extended TPS printed",
    () =>
      bench.withPooler({ POOL_MODE: "transaction", DEFAULT_POOL_SIZE: "20" }, async (url) => {
        const run = (mode: string, clients: number) =>
          pgbench(url, ["-n", "-S", "-M", mode, "-c", String(clients), "-j", "2", "-T", "3"]);
        for (const clients of [10, 50, 200]) {
          const r = await run("prepared", clients);
          expect(r.failed, r.output).toBe(0);
          expect(r.processed).toBeGreaterThan(100);
        }
        const extended = await run("extended", 50);
        const prepared = await run("prepared", 50);
        expect(extended.failed + prepared.failed).toBe(0);
        console.log(
          `pgbench -S, 50 clients, pool 20: -M extended ${extended.tps.toFixed(0)} tps, -M prepared ${prepared.tps.toFixed(0)} tps`,
        );
      }),
    120_000,
  );
});
