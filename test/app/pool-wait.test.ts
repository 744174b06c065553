// The app's wait for one of its own connections is bounded: while the pooler holds every query (a
// PAUSE, a KILL until RESUME, a frozen pooler), the requests that find the app's pools all taken
// answer 503 after a while, instead of queueing behind them for as long as the pause lasts.
import request from "supertest";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { connect } from "../support/clients.ts";
import { CONNECTION_WAIT_MS } from "../../app/db.ts";
import {
  HARNESS_POOL_MAX,
  createHarness,
  createUser,
  logIn,
  textOf,
  type Agent,
  type Harness,
} from "./support.ts";

let pooler: TestPooler;
let h: Harness;
let agent: Agent;

beforeAll(async () => {
  pooler = await startTestPooler({ DEFAULT_POOL_SIZE: "5" });
  h = await createHarness({
    database: { url: pooler.url("app"), directUrl: inject("pgAppUrl"), close: pooler.stop },
  });
  ({ agent } = await logIn(h.app, (await createUser(h)).username));
}, 60_000);

afterAll(async () => {
  await h?.close();
});

/**
 * Sends `count` requests while the pooler holds the app's queries; the first answer must be a 503
 * that came after CONNECTION_WAIT_MS; after RESUME the others are served.
 */
async function whilePaused(send: () => Promise<request.Response>, count: number): Promise<void> {
  const admin = await connect(pooler.url("pgbouncer"));
  try {
    await admin.query("PAUSE app");
    const started = Date.now();
    const pages = Array.from({ length: count }, () =>
      send().then((res) => ({ res, ms: Date.now() - started })),
    );
    const limit = CONNECTION_WAIT_MS + 5_000;
    const first = await Promise.race([
      Promise.race(pages),
      new Promise<undefined>((resolve) => setTimeout(resolve, limit)),
    ]);
    expect(first, `no answer within ${limit} ms of the PAUSE`).toBeDefined();
    expect(first!.res.status).toBe(503);
    expect(textOf(first!.res.text)).toContain("The database could not be reached");
    expect(first!.ms).toBeGreaterThanOrEqual(CONNECTION_WAIT_MS - 100);

    await admin.query("RESUME app");
    const statuses = (await Promise.all(pages)).map(({ res }) => res.status);
    expect(
      statuses.every((s) => s === 200 || s === 503),
      String(statuses),
    ).toBe(true);
    expect(statuses).toContain(200);
    expect((await send()).status).toBe(200);
  } finally {
    await admin.query("RESUME app").catch(() => undefined);
    await admin.end();
  }
}

// More logged-in requests than the session store has connections: the first ones wait at the
// pooler, as PgBouncer's PAUSE means; the rest wait for a connection of the app's pool.
it("answers 503 when the session store's connections all wait on a paused pooler", async () => {
  await whilePaused(() => agent.get("/admin/core/post/"), 4);
}, 60_000);

// The public post list reads through Prisma only: one more visitor than its pool (DB_POOL_MAX).
it("answers 503 when Prisma's connections all wait on a paused pooler", async () => {
  await whilePaused(() => request(h.app).get("/"), HARNESS_POOL_MAX + 2);
}, 60_000);
