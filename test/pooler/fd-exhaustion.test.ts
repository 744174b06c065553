// The pooler out of file descriptors: a process of its own under a small RLIMIT_NOFILE, its
// descriptors taken by idle client connections.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { IDLE_TIMEOUT_MS, METRICS_MAX_CONNECTIONS } from "../../pooler/metrics.ts";
import { connect } from "../support/clients.ts";
import { spawnPooler, type PoolerProcess } from "../support/pooler-process.ts";
import { startTestPooler } from "../support/pooler.ts";
import { freePort } from "../support/ports.ts";
import { waitFor } from "../support/wait.ts";

/** Enough for Node and tsx to start (64 is not), few enough to fill in a moment. */
const FD_LIMIT = 128;

/** The pooler under FD_LIMIT, listening on `port`; `env` on top. */
async function limitedPooler(port: number, env: Record<string, string> = {}): Promise<PoolerProcess> {
  const pooler = spawnPooler(
    [],
    {
      DATABASE_URL: inject("pgAppUrl"),
      LISTEN_PORT: String(port),
      POOL_MODE: "transaction",
      // the descriptors run out first
      MAX_CLIENT_CONN: String(FD_LIMIT * 2),
      ...env,
    },
    ["prlimit", `--nofile=${FD_LIMIT}`, "--"],
  );
  await waitFor(() => pooler.output().includes('"listening"'), "the pooler to listen", 15_000);
  return pooler;
}

/** An idle TCP connection to `port`, pushed on `held`. */
function hold(held: net.Socket[], port: number): net.Socket {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => undefined);
  held.push(s);
  return s;
}

describe("out of file descriptors", () => {
  let pooler: PoolerProcess;
  let port: number;
  const held: net.Socket[] = [];

  beforeAll(async () => {
    port = await freePort();
    pooler = await limitedPooler(port);
  });

  afterAll(() => {
    for (const s of held) s.destroy();
    pooler?.child.kill("SIGKILL");
  });

  /** Descriptors the limit counts: those numbered below it (one inherited from the parent may be higher). */
  const openFds = (): number =>
    fs.readdirSync(`/proc/${pooler.child.pid}/fd`).filter((fd) => Number(fd) < FD_LIMIT).length;

  it("a login whose server cannot be dialed (EMFILE) waits, and is served once descriptors are free again", async () => {
    // idle connections take every descriptor but one: the next client's own, none for its server.
    // Most at once, the last few one by one, so that none is refused for want of a descriptor.
    const bulk = FD_LIMIT - 8;
    // Once the pooler's own descriptors have settled: on a loaded machine its start-up still held two
    // more here, closed later, and the connections counted against them left it short of `bulk`.
    let last = -1;
    await waitFor(async () => {
      await new Promise((r) => setTimeout(r, 300));
      const same = openFds() === last;
      last = openFds();
      return same;
    }, "the pooler's descriptors to settle");
    for (let n = bulk - openFds(); n > 0; n--) hold(held, port);
    // (a loaded machine: the whole suite at once took more than 5 s here)
    await waitFor(() => openFds() >= bulk, "the pooler to accept the idle connections", 15_000);
    while (openFds() < FD_LIMIT - 1) {
      const before = openFds();
      hold(held, port);
      await waitFor(() => openFds() > before, "the pooler to accept an idle connection");
    }
    expect(openFds()).toBe(FD_LIMIT - 1);
    const login = connect(`postgresql://postgres:postgres@127.0.0.1:${port}/app`);
    const failure = login.then(
      () => null,
      (err: Error) => err.message,
    );
    await waitFor(() => pooler.output().includes("EMFILE"), "the server's dial to fail");
    for (const s of held.splice(0)) s.destroy();
    // a shortage of our own says nothing of the server: no server_login_retry's 15 s of refusals
    expect(await failure).toBeNull();
    const c = await login;
    try {
      expect((await c.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });
});

describe("idle connections to the metrics port", () => {
  let pooler: PoolerProcess;
  let port: number;
  let metricsPort: number;
  const held: net.Socket[] = [];

  beforeAll(async () => {
    [port, metricsPort] = [await freePort(), await freePort()];
    pooler = await limitedPooler(port, { METRICS_PORT: String(metricsPort) });
  });

  afterAll(() => {
    for (const s of held) s.destroy();
    pooler?.child.kill("SIGKILL");
  });

  it("are capped and time out: more than the pooler has descriptors for still leave clients able to log in", async () => {
    let dropped = 0;
    for (let n = 0; n < FD_LIMIT; n++) hold(held, metricsPort).on("close", () => dropped++);
    // the extra ones are closed as soon as they are accepted
    await waitFor(
      () => dropped >= FD_LIMIT - METRICS_MAX_CONNECTIONS,
      "the metrics port to drop the connections above its cap",
      15_000,
    );
    const c = await connect(`postgresql://postgres:postgres@127.0.0.1:${port}/app`);
    try {
      expect((await c.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
    // and the ones it kept, silent, are closed after a while
    await waitFor(
      () => dropped === FD_LIMIT,
      "the idle metrics connections to be closed",
      IDLE_TIMEOUT_MS * 2,
    );
  }, 40_000);
});

describe("an error a listening socket reports (accept: EMFILE past libuv's spare descriptor, ENOBUFS)", () => {
  it("is logged, and the pooler goes on accepting, as PgBouncer", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "accept-error-"));
    const p = await startTestPooler({ METRICS_PORT: String(await freePort()), UNIX_SOCKET_DIR: dir });
    try {
      const { listener, metrics } = p.pooler as unknown as {
        listener: { servers: net.Server[] };
        metrics: { servers: net.Server[] };
      };
      const servers = [...listener.servers, ...metrics.servers];
      // TCP, the Unix socket and the metrics port
      expect(servers.length).toBeGreaterThanOrEqual(3);
      // what libuv hands Node's onconnection, which emits it on the server
      const acceptError = Object.assign(new Error("accept EMFILE"), { code: "EMFILE", syscall: "accept" });
      for (const server of servers) server.emit("error", acceptError);
      expect(p.logs.filter((l) => l.msg === "accept failed")).toHaveLength(servers.length);
      const c = await connect(p.url());
      expect((await c.query("SELECT 1 AS one")).rows[0].one).toBe(1);
      await c.end();
    } finally {
      await p.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
