// autodb_idle_timeout: databases made up from the "*" entry (any name a client sends, even before it
// authenticates) are forgotten once they have had no clients and no servers for that long, as in
// PgBouncer, so names that come and go do not pile up; one still in use stays.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { connect, errorOf } from "../support/clients.ts";
import { hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { freePort } from "../support/ports.ts";
import { RawClient } from "../support/protocol.ts";
import { waitFor } from "../support/wait.ts";
import { query } from "../../pooler/protocol/messages.ts";

let tp: TestPooler;
let admin: pg.Client;
let metricsUrl: string;

beforeAll(async () => {
  // A DATABASE_URL without a database name is the "*" entry: every name is forwarded as it is.
  const server = new URL(inject("pgAppUrl"));
  server.pathname = "";
  const metricsPort = await freePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  tp = await startTestPooler({
    METRICS_PORT: String(metricsPort),
    DATABASE_URL: server.toString(),
    AUTODB_IDLE_TIMEOUT: "1",
    SERVER_IDLE_TIMEOUT: "1",
  });
  admin = await connect(tp.url("pgbouncer"));
});

afterAll(async () => {
  await admin?.end();
  await tp?.stop();
});

const databases = async (): Promise<string[]> =>
  (await admin.query<{ name: string }>("SHOW DATABASES")).rows
    .map((r) => r.name)
    .filter((n) => n !== "pgbouncer");
/** The databases /metrics has wait-time histograms for. */
const histogrammed = async (): Promise<string[]> => {
  const text = await (await fetch(metricsUrl)).text();
  return [
    ...new Set([...text.matchAll(/_wait_seconds_count\{database="([^"]+)"/g)].map((m) => m[1]!)),
  ].sort();
};
const pools = async (): Promise<string[]> =>
  (await admin.query<{ database: string }>("SHOW POOLS")).rows
    .map((r) => r.database)
    .filter((n) => n !== "pgbouncer");

describe("autodb_idle_timeout", () => {
  it("forgets unused auto-databases, pools and all, and keeps the one a client still uses", async () => {
    const stays = await connect(tp.url("app"));
    await stays.query("SELECT 1");
    const leaves = await connect(tp.url("postgres"));
    await leaves.query("SELECT 1");
    await leaves.end();
    const stranger = `nope_${process.pid}`;
    const refused = await errorOf(connect(tp.url(stranger).replace(":postgres@", ":wrong@")));
    expect(refused.code).toBe("28P01");
    expect(await databases()).toEqual(expect.arrayContaining(["app", "postgres", stranger]));
    expect(await pools()).toEqual(expect.arrayContaining(["app", "postgres"]));
    expect(await histogrammed()).toEqual(["app", "postgres"]);

    // 1 s for the idle server to close, 1 s unused, and the janitor's ticks
    await waitFor(
      async () => (await databases()).length === 1,
      "unused auto-databases to be forgotten",
      10_000,
    );
    expect(await databases()).toEqual(["app"]);
    expect(await pools()).toEqual(["app"]);
    expect(await histogrammed()).toEqual(["app"]);
    const forgotten = tp.logs.filter(
      (l) => l.msg === "auto-database forgotten after autodb_idle_timeout unused",
    );
    expect(forgotten.map((l) => l.db).sort()).toEqual([stranger, "postgres"].sort());

    expect((await stays.query("SELECT 2 AS two")).rows[0].two).toBe(2);
    await stays.end();
    // a forgotten name is made up again on the next login
    const again = await connect(tp.url("postgres"));
    expect((await again.query("SELECT current_database() AS db")).rows[0].db).toBe("postgres");
    await again.end();
    expect(await databases()).toEqual(expect.arrayContaining(["app", "postgres"]));
  });
});

/**
 * SHOW STATS_TOTALS' xact_count and query_count of auto-database `db` after 5 queries, once it is
 * forgotten, and once one query made it up again.
 */
async function statsAcrossForgetting(url: (db: string) => string, db: string): Promise<string[][][]> {
  const admin = await connect(url("pgbouncer"));
  const counts = async (): Promise<string[][]> =>
    (
      await admin.query<{ database: string; xact_count: string; query_count: string }>("SHOW STATS_TOTALS")
    ).rows
      .filter((r) => r.database === db)
      .map((r) => [r.xact_count, r.query_count]);
  const queries = async (n: number): Promise<void> => {
    const c = await connect(url(db));
    for (let i = 0; i < n; i++) await c.query("SELECT 1");
    await c.end();
  };
  try {
    await queries(5);
    const before = await counts();
    // (PgBouncer 1.18 stops listing it in SHOW DATABASES once it has no servers, before it is forgotten)
    await waitFor(
      async () =>
        !(await admin.query<{ database: string }>("SHOW POOLS")).rows.some((r) => r.database === db),
      `${db} to be forgotten`,
      10_000,
    );
    const after = await counts();
    await queries(1);
    return [before, after, await counts()];
  } finally {
    await admin.end();
  }
}

describe("a forgotten auto-database's stats", () => {
  const expected = [[["5", "5"]], [], [["1", "1"]]];

  it("leave SHOW STATS_TOTALS with it; made up again, it counts from 0", async () => {
    expect(await statsAcrossForgetting(tp.url, "template1")).toEqual(expected);
  });

  it.skipIf(!hasPgBouncer())("as in PgBouncer 1.18", async () => {
    const b = await startPgBouncer(
      { "*": `host=127.0.0.1 port=${inject("pgPort")}` },
      { pool_mode: "transaction", admin_users: "postgres", autodb_idle_timeout: 1, server_idle_timeout: 1 },
    );
    try {
      expect(await statsAcrossForgetting(b.url, "template1")).toEqual(expected);
    } finally {
      await b.stop();
    }
  });
});

describe("made-up names", () => {
  it("a name of 64 bytes or more makes up no database (PgBouncer's MAX_DBNAME): it is no such database", async () => {
    // none is made up, not even for a wrong password: each would be kept for autodb_idle_timeout, at
    // up to 10 kB of name. As any unknown database, it is told only once authenticated (PgBouncer 1.18).
    for (const name of ["x".repeat(64), "é".repeat(32), "y".repeat(9000)]) {
      const wrong = await errorOf(connect(tp.url(name).replace(":postgres@", ":wrong@")));
      expect(wrong.code).toBe("28P01");
      const refused = await errorOf(connect(tp.url(name)));
      expect(refused.code).toBe("3D000");
      expect(refused.message).toBe(`no such database: ${name}`);
    }
    expect((await databases()).filter((n) => n.length > 32)).toEqual([]);
    // 63 bytes still do
    const longest = `l${"é".repeat(31)}`;
    expect(Buffer.byteLength(longest)).toBe(63);
    expect((await errorOf(connect(tp.url(longest).replace(":postgres@", ":wrong@")))).code).toBe("28P01");
    expect(await databases()).toContain(longest);
  });
});

describe("long user names", () => {
  it("one of 128 bytes or more is refused before anything else, as PgBouncer's MAX_USERNAME: 08P01 username too long", async () => {
    const stranger = `nodb_${process.pid}`;
    const as = (user: string, db: string): string =>
      tp.url(db).replace("postgres:postgres@", `${encodeURIComponent(user)}:wrong@`);
    for (const [user, db] of [
      ["u".repeat(128), "app"],
      ["é".repeat(64), "app"],
      ["u".repeat(128), "pgbouncer"],
      ["u".repeat(128), stranger],
    ] as const) {
      const refused = await errorOf(connect(as(user, db)));
      expect({ code: refused.code, message: refused.message }).toEqual({
        code: "08P01",
        message: "username too long",
      });
    }
    // refused before its database is made up
    expect(await databases()).not.toContain(stranger);
    // 127 bytes still log in as far as the password
    expect((await errorOf(connect(as(`u${"é".repeat(63)}`, "app")))).code).toBe("28P01");
  });
});

describe("RELOAD", () => {
  it("keeps the servers of a database made up from an unchanged '*' entry", async () => {
    const c = await connect(tp.url("app"));
    try {
      const pid = async () => (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
      const before = await pid();
      await admin.query("RELOAD");
      expect(await pid()).toBe(before);
    } finally {
      await c.end();
    }
  });

  it("lets a client of a made-up database that was logging in meanwhile in", async () => {
    const c = await RawClient.connect(tp.url("app"), {}, () => admin.query("RELOAD"));
    expect((await c.exchange([query("SELECT current_database()")])).map((m) => m.type)).toEqual([
      "T",
      "D",
      "C",
      "Z",
    ]);
    await c.close();
  });
});

/**
 * What a client of auto-database `db` gets once the database, made up, then flagged by `command`
 * (DISABLE), has been forgotten: its first query's answer, or its error.
 */
async function flagAcrossForgetting(
  url: (db: string) => string,
  db: string,
  command: string,
): Promise<string> {
  const admin = await connect(url("pgbouncer"));
  try {
    const made = await connect(url(db));
    await made.query("SELECT 1");
    await made.end();
    await admin.query(`${command} ${db}`);
    await waitFor(
      async () =>
        !(await admin.query<{ database: string }>("SHOW POOLS")).rows.some((r) => r.database === db),
      `${db} to be forgotten`,
      10_000,
    );
  } finally {
    await admin.end();
  }
  try {
    const again = await connect(url(db), { query_timeout: 2000, connectionTimeoutMillis: 2000 });
    try {
      return String((await again.query("SELECT 1 AS one")).rows[0].one);
    } finally {
      await again.end();
    }
  } catch (err) {
    return (err as Error).message;
  }
}

// (a PAUSEd one is not forgotten by PgBouncer 1.18: its next client waits for a RESUME there too)
describe("a forgotten auto-database's DISABLE", () => {
  it("goes with it: made up again, it serves", async () => {
    expect(await flagAcrossForgetting(tp.url, "template1", "DISABLE")).toBe("1");
  });

  it.skipIf(!hasPgBouncer())("as in PgBouncer 1.18", async () => {
    const b = await startPgBouncer(
      { "*": `host=127.0.0.1 port=${inject("pgPort")}` },
      { pool_mode: "transaction", admin_users: "postgres", autodb_idle_timeout: 1, server_idle_timeout: 1 },
    );
    try {
      expect(await flagAcrossForgetting(b.url, "template1", "DISABLE")).toBe("1");
    } finally {
      await b.stop();
    }
  });
});
