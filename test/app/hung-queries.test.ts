// A query the app has sent is bounded too (DB_QUERY_TIMEOUT), not only the wait for a connection:
// a pooler that holds it (PAUSE) or a lock PostgreSQL makes it wait on ends the request in a 503
// that says the database took too long (not that it is down), within one timeout, and the connection
// it was sent on is closed at once, never handed to another request still busy with it.
// The app's connections to the pooler carry TCP keepalive, so one to a host that vanished without a
// FIN is found dead.
import pg from "pg";
import request from "supertest";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { connect } from "../support/clients.ts";
import { tcpSocket } from "../support/tcp-sockets.ts";
import { waitFor } from "../support/wait.ts";
import { KEEPALIVE_DELAY_MS } from "../../app/db.ts";
import { transaction } from "../../app/db-errors.ts";
import {
  createHarness,
  createUser,
  csrfFrom,
  logIn,
  PASSWORD,
  textOf,
  type Agent,
  type Harness,
} from "./support.ts";

/** Seconds: below Prisma's transaction timeout (5 s), so that it is the limit a save meets. */
const QUERY_TIMEOUT = 2;

let pooler: TestPooler;
let h: Harness;
let agent: Agent;
let csrf: string;
let username: string;

beforeAll(async () => {
  pooler = await startTestPooler();
  h = await createHarness({
    database: { url: pooler.url("app"), directUrl: inject("pgAppUrl"), close: pooler.stop },
    dbQueryTimeout: QUERY_TIMEOUT,
  });
  ({ username } = await createUser(h));
  ({ agent, csrf } = await logIn(h.app, username));
}, 60_000);

afterAll(async () => {
  await h?.close();
});

/**
 * The first answer to `send`, which must come at the query timeout, within one of them: a second
 * one (a ROLLBACK queued behind the query that got no answer) must not be added to the wait.
 */
async function answerAtQueryTimeout(send: () => Promise<request.Response>): Promise<request.Response> {
  const started = Date.now();
  const limit = QUERY_TIMEOUT * 1000 + 1_500;
  const res = await Promise.race([send(), new Promise<undefined>((resolve) => setTimeout(resolve, limit))]);
  expect(res, `no answer within ${limit} ms`).toBeDefined();
  expect(res!.status).toBe(503);
  expect(Date.now() - started).toBeGreaterThanOrEqual(QUERY_TIMEOUT * 1000 - 100);
  return res!;
}

/** A page read that got no answer in time: it says so, not that the database is down. */
async function answersAtQueryTimeout(send: () => Promise<request.Response>): Promise<void> {
  const text = textOf((await answerAtQueryTimeout(send)).text);
  expect(text).toContain("The database took too long to answer. Please try again in a moment.");
  expect(text).not.toContain("could not be reached");
}

/**
 * Runs `work` while a transaction on PostgreSQL directly holds a lock: by default all of core_post,
 * else what `lock` (SQL in the test's schema) takes.
 */
async function whileLocked(work: () => Promise<void>, lock = "LOCK TABLE core_post"): Promise<void> {
  const locker = new pg.Client({ connectionString: h.database.directUrl });
  await locker.connect();
  try {
    await locker.query(`SET search_path TO ${h.schema}`);
    await locker.query("BEGIN");
    await locker.query(lock);
    await work();
  } finally {
    await locker.query("COMMIT");
    await locker.end();
  }
}

describe("a query that gets no answer", () => {
  async function whilePaused(fn: () => Promise<void>): Promise<void> {
    const admin = await connect(pooler.url("pgbouncer"));
    try {
      await admin.query("PAUSE app");
      await fn();
    } finally {
      await admin.query("RESUME app");
      await admin.end();
    }
  }

  it("a page read through Prisma while the pooler is paused: 503 at the query timeout", async () => {
    await request(h.app).get("/").expect(200);
    await whilePaused(() => answersAtQueryTimeout(() => request(h.app).get("/")));
    await request(h.app).get("/").expect(200);
  }, 30_000);

  it("a logged-in page whose session lookup the paused pooler holds: 503 at the query timeout", async () => {
    await agent.get("/admin/core/post/").expect(200);
    await whilePaused(() => answersAtQueryTimeout(() => agent.get("/admin/core/post/")));
    await agent.get("/admin/core/post/").expect(200);
  }, 30_000);

  // Only its session lookup was sent: nothing of the form can be applied when the pooler resumes.
  it("a form sent while the pooler is paused: 503 saying nothing was saved, the text kept", async () => {
    const before = await h.db.prisma.post.count();
    await whilePaused(async () => {
      const res = await answerAtQueryTimeout(() =>
        agent
          .post("/admin/core/post/add/")
          .type("form")
          .send({ _csrf: csrf, title: "Sent while paused", content: "Body", _save: "Save" }),
      );
      const text = textOf(res.text);
      expect(text).toContain("The database took too long to answer, so nothing was saved or changed.");
      expect(text).not.toContain("may or may not");
      expect(res.text).toContain("Sent while paused");
    });
    expect(await h.db.prisma.post.count()).toBe(before);
  }, 30_000);

  it("a read waiting for a lock PostgreSQL holds: 503 at the query timeout, then served again", async () => {
    await whileLocked(() => answersAtQueryTimeout(() => request(h.app).get("/")));
    await request(h.app).get("/").expect(200);
  }, 30_000);
});

// The admin's saves are transactions on a client checked out of the pool: their UPDATE timed out,
// then the ROLLBACK queued behind it did too, and Prisma releases the client all the same. Kept, it
// would see the UPDATE through once the lock goes, inside a transaction nobody ends, and run the next
// request's statements in it: a later COMMIT would save the change the user was told was not saved.
it("a save's transaction that timed out leaves nothing open for the next requests", async () => {
  const [abandoned, later] = await Promise.all(
    ["Original", "Before"].map((title) => h.db.prisma.post.create({ data: { title, content: "Body" } })),
  );
  await whileLocked(async () => {
    const save = transaction(h.db.prisma, (tx) =>
      tx.post.update({ where: { id: abandoned!.id }, data: { title: "Abandoned" } }),
    );
    await expect(save).rejects.toThrow();
  });
  for (let i = 0; i < 3; i++)
    await h.db.prisma.post.update({ where: { id: later!.id }, data: { title: `Later ${i}` } });
  const titles = await h.sql<{ id: number; title: string }>(
    "SELECT id, title FROM core_post WHERE id IN ($1, $2)",
    [abandoned!.id, later!.id],
  );
  expect(Object.fromEntries(titles.map((r) => [r.id, r.title]))).toEqual({
    [abandoned!.id]: "Original",
    [later!.id]: "Later 2",
  });
}, 30_000);

describe("a write whose statement gets no answer", () => {
  it("an admin save: 503 at one query timeout saying it was NOT saved, the text kept", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "Original", content: "Body" } });
    const form = await agent.get(`/admin/core/post/${saved.id}/change/`).expect(200);
    const version = /name="_version" value="([^"]+)"/.exec(form.text)![1]!;
    await whileLocked(async () => {
      const res = await answerAtQueryTimeout(() =>
        agent
          .post(`/admin/core/post/${saved.id}/change/`)
          .type("form")
          .send({ _csrf: csrf, title: "Edited", content: "Edited body", _version: version, _save: "Save" }),
      );
      const text = textOf(res.text);
      expect(text).toContain("Saving took too long");
      expect(text).toContain("so it was NOT saved");
      expect(text).not.toContain("could not be reached");
      expect(res.text).toContain('value="Edited"');
    }, `SELECT 1 FROM core_post WHERE id = ${saved.id} FOR UPDATE`);
    expect(await h.db.prisma.post.findUnique({ where: { id: saved.id } })).toMatchObject({
      title: "Original",
    });
  }, 30_000);

  // The login's UPDATE of last_login runs on its own (no transaction): closing its connection does
  // not undo it once the lock is gone, so nobody can say whether it happened.
  it("a login whose last_login update waits on a lock: 503 saying it may or may not have been saved", async () => {
    const visitor = request.agent(h.app);
    const page = await visitor.get("/admin/login/").expect(200);
    await whileLocked(async () => {
      const res = await answerAtQueryTimeout(() =>
        visitor
          .post("/admin/login/")
          .type("form")
          .send({ _csrf: csrfFrom(page.text), username, password: PASSWORD, next: "/admin/" }),
      );
      const text = textOf(res.text);
      expect(text).toContain("The database took too long to answer");
      expect(text).toContain("may or may not have been saved");
      expect(text).not.toContain("could not be reached");
    }, `SELECT 1 FROM auth_user WHERE username = '${username}' FOR UPDATE`);
  }, 30_000);
});

describe("TCP keepalive", () => {
  it("is on for the connections of both pools, Prisma's and the session store's", async () => {
    await agent.get("/admin/core/post/").expect(200);
    const admin = await connect(pooler.url("pgbouncer"));
    try {
      const clients = (await admin.query<{ database: string; port: number }>("SHOW CLIENTS")).rows.filter(
        (r) => r.database === "app",
      );
      expect(clients.length).toBeGreaterThanOrEqual(2);
      // ss counts the keepalive timer down from the delay; without keepalive it shows no such timer
      const keepalive = (port: number): boolean => {
        const timer = /timer:\(keepalive,([\d.]+)(ms|sec)/.exec(tcpSocket(port, pooler.port));
        return timer !== null && Number(timer[1]) * (timer[2] === "sec" ? 1000 : 1) <= KEEPALIVE_DELAY_MS;
      };
      for (const c of clients)
        // an ACK of the last reply may be delayed (up to 40 ms): until then ss shows the retransmit timer
        await waitFor(() => keepalive(c.port), `keepalive on port ${c.port}`, 2000);
    } finally {
      await admin.end();
    }
  });
});
