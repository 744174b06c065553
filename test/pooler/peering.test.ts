// Peering (peer_id, [peers]): two poolers behind one load balancer, where a client's CancelRequest
// reaches the pooler its session is not on. Each key carries its pooler's peer_id; the other one
// forwards it there, at most three hops, and never more at once than the peer's pool_size.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CANCEL_TTL_MASK, peerOfCancelKey } from "../../pooler/client-registry.ts";
import { cancelRequest } from "../../pooler/protocol/messages.ts";
import { cancelKeyOf, connect, errorOf, queriesHitAfterCancel, rawExchange } from "../support/clients.ts";
import { freePort } from "../support/ports.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { tcpSocket } from "../support/tcp-sockets.ts";
import { waitFor } from "../support/wait.ts";

const dirs: string[] = [];
/** Where a listens besides TCP: a name of this run's own, the namespace is the machine's. */
const abstractDir = `@try-ts-pooler-peering-${process.pid}`;
let a: TestPooler;
let b: TestPooler;
/** Peer 4: accepts connections, keeps what it is sent, never closes. */
let stall: net.Server;
const stalled: { socket: net.Socket; bytes: Buffer[] }[] = [];

const stallPort = (): number => (stall.address() as net.AddressInfo).port;

/** An ini with `peers` as the [peers] section and `self` as peer_id. */
function iniFor(self: number, peers: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-peers-"));
  dirs.push(dir);
  const file = path.join(dir, "pgbouncer.ini");
  fs.writeFileSync(file, ["[peers]", ...peers, "[pgbouncer]", `peer_id = ${self}`].join("\n"));
  return file;
}

beforeAll(async () => {
  // half-open: a FIN from the forwarder would not close the connection here, and shows in ss
  stall = net.createServer({ allowHalfOpen: true }, (socket) => {
    const entry = { socket, bytes: [] as Buffer[] };
    stalled.push(entry);
    socket.on("data", (chunk) => entry.bytes.push(chunk));
    socket.on("error", () => undefined);
  });
  await new Promise<void>((r) => stall.listen(0, "127.0.0.1", () => r()));
  const ports = {
    a: await freePort(),
    b: await freePort(),
    stall: stallPort(),
  };
  const env = { ADMIN_USERS: "postgres", CANCEL_WAIT_TIMEOUT: "1" };
  // peer 3 is each pooler's partner: a misconfigured group that would pass a key 3 around forever;
  // peer 1 is reached at its Unix socket in the abstract namespace, as PgBouncer allows
  const peers = (other: number): string[] => [
    `1 = host=${abstractDir} port=${ports.a}`,
    `2 = host=127.0.0.1 port=${ports.b}`,
    `3 = host=127.0.0.1 port=${other}`,
    `4 = host=127.0.0.1 port=${ports.stall} pool_size=1`,
  ];
  a = await startTestPooler(
    { ...env, LISTEN_PORT: String(ports.a), UNIX_SOCKET_DIR: abstractDir },
    iniFor(1, peers(ports.b)),
  );
  b = await startTestPooler({ ...env, LISTEN_PORT: String(ports.b) }, iniFor(2, peers(ports.a)));
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  for (const s of stalled) s.socket.destroy();
  stall.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A key in peering's layout for `peer`, with the given TTL bits. */
function keyFor(peer: number, ttl = CANCEL_TTL_MASK): { pid: number; secret: number } {
  return { pid: 0x11000022 | ((peer & 0xff) << 16) | ((peer >> 8) << 8), secret: 0x5555550 | ttl };
}

/** Runs pg_sleep(10) on `c`, calls `cancel` once it runs, and resolves with its outcome and time. */
async function sleepAndCancel(
  c: pg.Client,
  cancel: () => Promise<unknown>,
): Promise<{ code: string | undefined; ms: number }> {
  const started = Date.now();
  // caught from the start: the cancel's connection closes only once PostgreSQL has acted on it
  const slow = errorOf(c.query("SELECT pg_sleep(10)"));
  await new Promise((r) => setTimeout(r, 300));
  await cancel();
  const err = await slow;
  return { code: err.code, ms: Date.now() - started };
}

function logged(p: TestPooler, msg: string): number {
  return p.logs.filter((l) => l.msg === msg).length;
}

async function show(p: TestPooler, what: string): Promise<Record<string, unknown>[]> {
  const admin = await connect(`postgresql://postgres:postgres@127.0.0.1:${p.port}/pgbouncer`);
  try {
    return (await admin.query(`SHOW ${what}`)).rows as Record<string, unknown>[];
  } finally {
    await admin.end();
  }
}

describe("peering", () => {
  it("gives clients keys that carry the pooler's peer_id", async () => {
    const [ca, cb] = await Promise.all([connect(a.url()), connect(b.url())]);
    try {
      for (const [c, id] of [
        [ca, 1],
        [cb, 2],
      ] as const) {
        const { pid, secret } = cancelKeyOf(c);
        expect(pid).toBeGreaterThan(0);
        expect(peerOfCancelKey(pid)).toBe(id);
        expect(secret & CANCEL_TTL_MASK).toBe(CANCEL_TTL_MASK);
      }
    } finally {
      await Promise.all([ca.end(), cb.end()]);
    }
  });

  it("cancels a query on one pooler through the other (forwarded to @dir/.s.PGSQL.<port>)", async () => {
    const c = await connect(a.url());
    try {
      const { pid, secret } = cancelKeyOf(c);
      const outcome = await sleepAndCancel(c, () => rawExchange(b.port, cancelRequest(pid, secret)));
      expect(outcome.code).toBe("57014");
      expect(outcome.ms).toBeLessThan(5000);
      expect((await c.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    } finally {
      await c.end();
    }
  });

  it("closes a forwarded cancel's connection only once its peer has closed: the next query is not hit", async () => {
    const c = await connect(a.url());
    try {
      expect(await queriesHitAfterCancel(c, b.port, 20)).toBe(0);
    } finally {
      await c.end();
    }
  });

  it("takes its own key back whatever TTL is left, and cancels nothing with a key of no one", async () => {
    const c = await connect(b.url());
    try {
      const { pid, secret } = cancelKeyOf(c);
      // a key for peer 9, which no one has: dropped, and the query runs on
      const before = logged(a, "could not find peer to forward cancel request to");
      const running = c.query("SELECT pg_sleep(1.5) AS slept");
      await new Promise((r) => setTimeout(r, 200));
      const stray = keyFor(9);
      await rawExchange(a.port, cancelRequest(stray.pid, stray.secret), 300);
      expect((await running).rows).toEqual([{ slept: "" }]);
      expect(logged(a, "could not find peer to forward cancel request to")).toBe(before + 1);
      // three hops used up, on the pooler the key is from: still that client's
      const outcome = await sleepAndCancel(c, () =>
        rawExchange(b.port, cancelRequest(pid, secret & ~CANCEL_TTL_MASK)),
      );
      expect(outcome.code).toBe("57014");
    } finally {
      await c.end();
    }
  });

  it("passes a key around a misconfigured group three times, then drops it", async () => {
    const dropped = "failed to forward cancel request because its TTL was exhausted";
    const before = logged(a, dropped) + logged(b, dropped);
    const key = keyFor(3);
    // a -> b (TTL 2) -> a (1) -> b (0): b drops it
    await rawExchange(a.port, cancelRequest(key.pid, key.secret), 100);
    await waitFor(() => logged(b, dropped) === 1, "the third hop to be dropped");
    await new Promise((r) => setTimeout(r, 300));
    expect(logged(a, dropped) + logged(b, dropped)).toBe(before + 1);
  });

  it("forwards no more at once than the peer's pool_size, and the rest in turn", async () => {
    const keys = [0x100, 0x200, 0x300].map((n) => ({ ...keyFor(4), secret: n | CANCEL_TTL_MASK }));
    // their clients stay: one that leaves takes its waiting request with it (next test)
    for (const k of keys) {
      void rawExchange(a.port, cancelRequest(k.pid, k.secret), 5000);
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitFor(() => stalled.length === 1 && stalled[0]!.bytes.length > 0, "the first forward");
    // with TCP keepalive, as PgBouncer tunes every socket it opens: once its request is
    // acknowledged (until then ss shows the retransmit timer), the kernel's timer is the keepalive one
    const forward = (): string => tcpSocket(stalled[0]!.socket.remotePort!, stallPort());
    await waitFor(() => /timer:\(keepalive,/.test(forward()), "the forward's keepalive timer", 2000);
    // and no FIN behind the request: the peer would take it for the client giving up
    expect(forward()).toMatch(/^ESTAB/);
    const pools = await show(a, "PEER_POOLS");
    expect(pools.find((r) => r.peer_id === 4)).toEqual({
      peer_id: 4,
      cl_active_cancel_req: 1,
      cl_waiting_cancel_req: 2,
      sv_active_cancel: 1,
      sv_login: 0,
    });
    // the peer closing (it has acted) frees the slot: the next goes
    for (const n of [2, 3]) {
      stalled[n - 2]!.socket.destroy();
      await waitFor(() => stalled.length === n && stalled[n - 1]!.bytes.length > 0, `forward ${n}`);
    }
    const sent = stalled.map((s) => Buffer.concat(s.bytes));
    // in order, and with the TTL counted down by this hop
    expect(sent).toEqual(keys.map((k) => cancelRequest(k.pid, k.secret - 1)));
    await waitFor(async () => {
      const row = (await show(a, "PEER_POOLS")).find((r) => r.peer_id === 4);
      return row?.cl_active_cancel_req === 0;
    }, "the last forward to time out");
  });

  it("forwards no waiting request whose client has left, as PgBouncer drops a waiting cancel request with its client", async () => {
    const first = stalled.length;
    const [kept, left, next] = [0x800, 0x900, 0xa00].map((n) => ({
      ...keyFor(4),
      secret: n | CANCEL_TTL_MASK,
    }));
    void rawExchange(a.port, cancelRequest(kept!.pid, kept!.secret), 5000);
    await waitFor(() => stalled.length > first && stalled[first]!.bytes.length > 0, "the first forward");
    // waiting for the first to be done: the second's client hangs up meanwhile
    await rawExchange(a.port, cancelRequest(left!.pid, left!.secret), 100);
    void rawExchange(a.port, cancelRequest(next!.pid, next!.secret), 5000);
    await waitFor(async () => {
      const row = (await show(a, "PEER_POOLS")).find((r) => r.peer_id === 4);
      return row?.cl_waiting_cancel_req === 1;
    }, "only the third waiting");
    stalled[first]!.socket.destroy();
    await waitFor(
      () => stalled.length > first + 1 && stalled[first + 1]!.bytes.length > 0,
      "the next forward",
    );
    expect(Buffer.concat(stalled[first + 1]!.bytes)).toEqual(cancelRequest(next!.pid, next!.secret - 1));
    stalled[first + 1]!.socket.destroy();
  });

  it("drops a request that waited cancel_wait_timeout for its turn: late, it would hit a later query", async () => {
    const dropped = "cancel requests waited cancel_wait_timeout for their peer, dropped";
    const first = stalled.length;
    const keys = [0x400, 0x500, 0x600, 0x700].map((n) => ({ ...keyFor(4), secret: n | CANCEL_TTL_MASK }));
    // at once; each cancel's connection stays open until its request is forwarded or dropped
    const closed = Promise.all(keys.map((k) => rawExchange(a.port, cancelRequest(k.pid, k.secret), 10_000)));
    await waitFor(() => stalled.length > first, "the first forward");
    // listed as PgBouncer lists its peer pools' cancel requests: no user, the peer pool's empty name
    const held = (await show(a, "CLIENTS")).filter((r) => r.user === "(nouser)");
    expect(held.map((r) => [r.database, r.state])).toEqual([
      ["", "active_cancel_req"],
      ...Array(3).fill(["", "waiting_cancel_req"]),
    ]);
    // the peer never closes: the first forward ends at cancel_wait_timeout (1 s), the others waited as long
    await closed;
    await new Promise((r) => setTimeout(r, 1500));
    const forwarded = stalled.slice(first).filter((s) => s.bytes.length > 0).length;
    expect(forwarded).toBeLessThanOrEqual(2);
    expect(logged(a, dropped)).toBeGreaterThan(0);
  });

  it("lists its peers, not itself, on the console", async () => {
    const peers = await show(a, "PEERS");
    expect(peers.map((r) => [r.peer_id, r.host, r.pool_size])).toEqual([
      [2, "127.0.0.1", 20],
      [3, "127.0.0.1", 20],
      [4, "127.0.0.1", 1],
    ]);
    expect((await show(b, "PEERS")).find((r) => r.peer_id === 1)).toMatchObject({ host: abstractDir });
    const lists = await show(a, "LISTS");
    expect(lists.find((r) => r.list === "peers")?.items).toBe(3);
    const config = (await show(a, "CONFIG")).find((r) => r.key === "peer_id");
    expect(config).toMatchObject({ value: "1", default: "0", changeable: "no" });
  });
});

describe("peering with server_tls_sslmode=require", () => {
  // A pooler whose servers want TLS still reaches its peers, which (as PgBouncer's default
  // client_tls_sslmode=disable) may not speak it: PgBouncer sends a CancelRequest as the first
  // bytes of the connection, never behind an SSLRequest. Only b's servers are used here.
  let ta: TestPooler;
  let tb: TestPooler;

  beforeAll(async () => {
    const ports = { a: await freePort(), b: await freePort() };
    const peers = [`1 = host=127.0.0.1 port=${ports.a}`, `2 = host=127.0.0.1 port=${ports.b}`];
    const env = { CANCEL_WAIT_TIMEOUT: "2" };
    ta = await startTestPooler(
      { ...env, LISTEN_PORT: String(ports.a), SERVER_TLS_SSLMODE: "require" },
      iniFor(1, peers),
    );
    tb = await startTestPooler({ ...env, LISTEN_PORT: String(ports.b) }, iniFor(2, peers));
  });

  afterAll(() => Promise.all([ta?.stop(), tb?.stop()]));

  it("forwards a cancel to a peer that does not speak TLS, as PgBouncer does", async () => {
    const c = await connect(tb.url());
    try {
      const { pid, secret } = cancelKeyOf(c);
      const started = Date.now();
      const slow = errorOf(c.query("SELECT pg_sleep(5)"));
      await new Promise((r) => setTimeout(r, 300));
      await rawExchange(ta.port, cancelRequest(pid, secret), 300);
      const err = await slow;
      expect(err.code).toBe("57014");
      expect(Date.now() - started).toBeLessThan(3000);
      expect(ta.logs.filter((l) => l.msg === "could not forward cancel request to peer")).toEqual([]);
    } finally {
      await c.end();
    }
  });
});
