// A server lost in the same read as the ReadyForQuery of the pooler's own query (a settings sync, the
// ROLLBACK after a client left): the message behind it, a NOTICE over max_packet_size here, closes
// the server before the code waiting for that query runs. It must find the server gone, not go on.
import { afterEach, describe, expect, it } from "vitest";
import { commandComplete, noticeResponse, readyForQuery } from "../../pooler/protocol/messages.ts";
import { connect } from "../support/clients.ts";
import { startFakePostgres, type FakePostgres } from "../support/fake-postgres.ts";
import { spawnPooler, type PoolerProcess } from "../support/pooler-process.ts";
import { startTestPooler } from "../support/pooler.ts";
import { freePort } from "../support/ports.ts";
import { waitFor } from "../support/wait.ts";

const MAX_PACKET_SIZE = 1024;

/** The first server answers `sql` in full, then sends a NOTICE the pooler refuses, in one write. */
function firstServerBreaksAfter(sql: string): Promise<FakePostgres> {
  const notice = noticeResponse({ severity: "NOTICE", code: "00000", message: "x".repeat(MAX_PACKET_SIZE) });
  return startFakePostgres({
    params: { server_version: "13.0" },
    endOnQuery: (q, n) =>
      q.startsWith(sql) && n === 0 ? Buffer.concat([commandComplete(sql), readyForQuery("I"), notice]) : null,
  });
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("a server lost right behind the reply to the pooler's own query", () => {
  it("the SET of a client's startup settings: the pooler goes on, and the client gets the next server", async () => {
    const fake = await firstServerBreaksAfter("SET");
    cleanups.push(() => fake.close());
    const port = await freePort();
    const p: PoolerProcess = spawnPooler([], {
      DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${fake.port}/app`,
      LISTEN_PORT: String(port),
      POOL_MODE: "transaction",
      MAX_PACKET_SIZE: String(MAX_PACKET_SIZE),
    });
    cleanups.push(() => p.child.kill("SIGKILL"));
    await waitFor(() => p.output().includes('"listening"'), "the pooler to listen", 15_000);
    // a startup setting: the client is welcomed once a server has taken it
    const c = await connect(`postgresql://postgres:postgres@127.0.0.1:${port}/app`, {
      options: "-c statement_timeout=1000",
    });
    expect((await c.query("SELECT 1")).rowCount).toBe(0);
    await c.end();
    expect(p.child.exitCode).toBeNull();
    expect(fake.logins()).toBe(2);
  });

  it("the ROLLBACK after a client left mid-transaction: the lost server does not go back to the pool", async () => {
    const fake = await firstServerBreaksAfter("ROLLBACK");
    cleanups.push(() => fake.close());
    const p = await startTestPooler({
      DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${fake.port}/app`,
      MAX_PACKET_SIZE: String(MAX_PACKET_SIZE),
      DEFAULT_POOL_SIZE: "1",
    });
    cleanups.push(() => p.stop());
    const [leaver, waiter] = [await connect(p.url()), await connect(p.url())];
    await leaver.query("BEGIN");
    const answer = waiter.query("SELECT 1");
    await waitFor(
      () => [...p.pooler.pools.values()].some((pool) => pool.waiting.length > 0),
      "the waiter to queue",
    );
    await leaver.end();
    expect((await answer).rowCount).toBe(0);
    await waiter.end();
    // put back as idle, it was closed a second time when a write to it failed
    const closes = p.logs.filter((l) => l.msg === "server closed").map((l) => l.server);
    expect(new Set(closes).size).toBe(closes.length);
  });
});
