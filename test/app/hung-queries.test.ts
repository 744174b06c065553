// A query the app has sent is bounded too (DB_QUERY_TIMEOUT), not only the wait for a connection:
// a pooler that holds it (PAUSE) or a lock PostgreSQL makes it wait on ends the request in a 503,
// and the connection it was sent on is closed, never handed to another request still busy with it.
// The app's connections to the pooler carry TCP keepalive, so one to a host that vanished without a
// FIN is found dead.
import pg from "pg";
import request from "supertest";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { connect } from "../support/clients.ts";
import { tcpSocket } from "../support/tcp-sockets.ts";
import { waitFor } from "../support/wait.ts";
import { CONNECTION_WAIT_MS, KEEPALIVE_DELAY_MS } from "../../app/db.ts";
import { transaction } from "../../app/db-errors.ts";
import { createHarness, createUser, logIn, textOf, type Agent, type Harness } from "./support.ts";

/** Seconds: below Prisma's transaction timeout (5 s), so that it is the limit a save meets. */
const QUERY_TIMEOUT = 2;

let pooler: TestPooler;
let h: Harness;
let agent: Agent;

beforeAll(async () => {
  pooler = await startTestPooler();
  h = await createHarness({
    database: { url: pooler.url("app"), directUrl: inject("pgAppUrl"), close: pooler.stop },
    dbQueryTimeout: QUERY_TIMEOUT,
  });
  ({ agent } = await logIn(h.app, (await createUser(h)).username));
}, 60_000);

afterAll(async () => {
  await h?.close();
});

/**
 * The first answer to `send`, which must come between the query timeout and well before the wait
 * for a connection would end the request (CONNECTION_WAIT_MS), and be the outage page.
 */
async function answersAtQueryTimeout(send: () => Promise<request.Response>): Promise<void> {
  const started = Date.now();
  const limit = CONNECTION_WAIT_MS - 2_000;
  const res = await Promise.race([send(), new Promise<undefined>((resolve) => setTimeout(resolve, limit))]);
  expect(res, `no answer within ${limit} ms`).toBeDefined();
  expect(res!.status).toBe(503);
  expect(textOf(res!.text)).toContain("The database could not be reached");
  expect(Date.now() - started).toBeGreaterThanOrEqual(QUERY_TIMEOUT * 1000 - 100);
}

/** Runs `work` while a transaction on PostgreSQL directly holds core_post locked. */
async function whileLocked(work: () => Promise<void>): Promise<void> {
  const locker = new pg.Client({ connectionString: h.database.directUrl });
  await locker.connect();
  try {
    await locker.query("BEGIN");
    await locker.query(`LOCK TABLE ${h.schema}.core_post`);
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
