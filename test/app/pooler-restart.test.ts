// The pooler process restarted on the same port under a running app (docker compose restart, or a
// crash and restart: unless-stopped): the app's idle connections to the old one are dropped by
// pg-pool when their sockets close, so the next requests are served, and logins survive (sessions
// are rows in PostgreSQL).
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { spawnPooler, type PoolerProcess } from "../support/pooler-process.ts";
import { freePort } from "../support/ports.ts";
import { waitFor } from "../support/wait.ts";
import { createHarness, createUser, logIn, type Agent, type Harness } from "./support.ts";

let port: number;
let pooler: PoolerProcess;
let h: Harness;
let agent: Agent;

async function startPooler(): Promise<PoolerProcess> {
  const p = spawnPooler([], { DATABASE_URL: inject("pgAppUrl"), LISTEN_PORT: String(port) });
  await waitFor(() => p.output().includes('"listening"'), "the pooler to listen", 15_000);
  return p;
}

beforeAll(async () => {
  port = await freePort();
  pooler = await startPooler();
  const url = `postgresql://postgres:postgres@127.0.0.1:${port}/app`;
  const close = async () => void pooler.child.kill("SIGKILL");
  h = await createHarness({ database: { url, directUrl: inject("pgAppUrl"), close } });
  ({ agent } = await logIn(h.app, (await createUser(h)).username));
}, 60_000);

afterAll(async () => {
  await h?.close();
});

/** Logged-in pages at once, so that both of the app's pools hold several connections. */
const pageStatuses = async () =>
  (await Promise.all(Array.from({ length: 6 }, () => agent.get("/admin/core/post/")))).map((r) => r.status);

it.each(["SIGKILL", "SIGTERM"] as const)(
  "serves the logged-in user at once after the pooler is stopped by %s and started again",
  async (signal) => {
    expect(await pageStatuses()).toEqual(Array(6).fill(200));
    pooler.child.kill(signal);
    await pooler.exited;
    pooler = await startPooler();
    expect(await pageStatuses()).toEqual(Array(6).fill(200));
  },
  30_000,
);
