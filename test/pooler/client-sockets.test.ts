// Plain clients' sockets are their bare libuv handles (pooler/client-socket.ts), not net.Sockets:
// what net.Socket used to take care of, pushed at its edges. A client resetting while the pooler
// writes to it, while it waits or logs in; a client ending its side behind a query; TLS whose first
// bytes come in pieces; the options set on the handle; the addresses SHOW CLIENTS prints.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { query, sslRequest, startupMessage, terminate } from "../../pooler/protocol/messages.ts";
import { makeCerts, type TestCerts } from "../support/certs.ts";
import { connect } from "../support/clients.ts";
import { hasPgBouncer, startPgBouncer, type PgBouncer } from "../support/pgbouncer.ts";
import { startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";
import { RawClient } from "../support/protocol.ts";
import { waitFor } from "../support/wait.ts";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A SHOW command's rows, from the console of the pooler or PgBouncer at `url`. */
async function show(url: string, what: string): Promise<Record<string, unknown>[]> {
  const admin = await connect(url);
  try {
    return (await admin.query<Record<string, unknown>>(`SHOW ${what}`)).rows;
  } finally {
    await admin.end();
  }
}

async function appPool(p: TestPooler): Promise<Record<string, unknown>> {
  return (await show(p.url("pgbouncer"), "POOLS")).find((r) => r.database === "app")!;
}

/** This process's open descriptors: the test pooler runs in it. */
const openFds = (): number => fs.readdirSync("/proc/self/fd").length;

/** A TCP connection to `port`, connected, its errors ignored (it is reset on purpose). */
async function tcp(port: number): Promise<net.Socket> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => undefined);
  await new Promise((r) => s.once("connect", r));
  return s;
}

/**
 * A Duplex for tls.connect over `raw`: its first write goes out in pieces of `sizes` bytes and the
 * rest, 30 ms apart; the first `skip` bytes read (an SSLRequest's answer) are not handed on.
 */
function relayed(raw: net.Socket, sizes: number[], skip = 0): Duplex {
  let first = true;
  const over = new Duplex({
    write(chunk: Buffer, _encoding, done) {
      if (!first) return raw.write(chunk, () => done());
      first = false;
      let at = 0;
      const next = (): void => {
        const size = sizes[at++];
        if (size === undefined) return void raw.write(chunk, () => done());
        raw.write(chunk.subarray(0, size));
        chunk = chunk.subarray(size);
        setTimeout(next, 30);
      };
      next();
    },
    read() {},
  });
  raw.on("data", (chunk: Buffer) => {
    const handed = chunk.subarray(skip);
    skip = Math.max(0, skip - chunk.length);
    if (handed.length > 0) over.push(handed);
  });
  return over;
}

/** PgBouncer's [databases] line for the test database. */
function bouncerDb(): string {
  const pg = new URL(inject("pgAppUrl"));
  return `host=${pg.hostname} port=${pg.port} dbname=app`;
}

/** Prints the TCP options of a process's sockets on a port (Node has no getsockopt). */
const SOCKOPTS = fileURLToPath(new URL("../support/sockopts.py", import.meta.url));

/** A result of about `mb` MB, more than any socket buffer holds. */
const bigResult = (mb: number): Buffer =>
  query(`SELECT repeat('x', 1000) FROM generate_series(1, ${mb * 1000})`);

describe("client sockets on their libuv handles", () => {
  let certs: TestCerts;
  let bouncer: PgBouncer | null = null;

  beforeAll(async () => {
    certs = makeCerts();
    if (!hasPgBouncer()) return;
    bouncer = await startPgBouncer(
      { app: bouncerDb() },
      { pool_mode: "transaction", admin_users: "postgres", listen_addr: "*" },
    );
  });

  afterAll(async () => {
    certs?.remove();
    await bouncer?.stop();
  });

  it("a client reset while a result is queued for it, in a transaction, waiting for a server or logging in leaves no client, busy server or descriptor", async () => {
    const p = await startTestPooler({ ADMIN_USERS: "postgres", DEFAULT_POOL_SIZE: "1" });
    try {
      const fdsBefore = openFds();
      // a reader that stopped: megabytes wait in the kernel and in the pooler's write queue
      const slow = (await RawClient.connect(p.url())).release();
      slow.pause();
      slow.write(bigResult(20));
      await waitFor(async () => (await appPool(p)).sv_active === 1, "the result to be on its way");
      await sleep(200);
      slow.resetAndDestroy();
      await waitFor(async () => (await appPool(p)).cl_active === 0, "the reset reader to be gone");
      // a server left mid-result cannot be reused: closed, not active
      expect(await appPool(p)).toMatchObject({ sv_active: 0, sv_idle: 0, cl_waiting: 0 });

      const inTx = await RawClient.connect(p.url());
      await inTx.exchange([query("BEGIN")]);
      // a client waiting for that server, its socket paused, and one that sent 200 kB meanwhile
      // (the pooler stops reading it at 64 kB: its reset is seen once it has the server)
      const waiting = (await RawClient.connect(p.url())).release();
      waiting.write(query("SELECT 1"));
      const flooding = (await RawClient.connect(p.url())).release();
      for (let i = 0; i < 200; i++) flooding.write(query(`SELECT '${"y".repeat(1000)}'`));
      await waitFor(async () => (await appPool(p)).cl_waiting === 2, "two clients to wait");
      waiting.resetAndDestroy();
      flooding.resetAndDestroy();
      await waitFor(async () => (await appPool(p)).cl_waiting === 1, "the paused reset client to be gone");
      inTx.release().resetAndDestroy();
      // rolled back and pooled again, and the flooding client's reset found once it had the server
      await waitFor(
        async () => JSON.stringify(await appPool(p)).includes('"cl_active":0,"cl_waiting":0'),
        "every client to be gone",
      );

      // resets during the login: mid startup packet, and with the password asked for
      for (const bytes of [5, Infinity]) {
        const s = await tcp(p.port);
        s.write(startupMessage({ user: "postgres", database: "app" }).subarray(0, bytes));
        await sleep(50);
        s.resetAndDestroy();
      }
      // and many more clients gone abruptly, each kind in turn
      for (let i = 0; i < 10; i++) {
        const c = (await RawClient.connect(p.url())).release();
        c.pause();
        c.write(bigResult(2));
        await sleep(10);
        c.resetAndDestroy();
        const ended = (await RawClient.connect(p.url())).release();
        ended.end();
        (await tcp(p.port)).resetAndDestroy();
      }
      await waitFor(async () => (await show(p.url("pgbouncer"), "CLIENTS")).length === 1, "no client left");
      // beside the servers the pool holds now (a server left mid-result is closed, one is opened again)
      await waitFor(
        async () => openFds() === fdsBefore + (await show(p.url("pgbouncer"), "SERVERS")).length,
        `descriptors back to ${fdsBefore} and the pool's servers`,
      );
      // each client closed once: one "closing" line each
      const closing = p.logs.filter((l) => l.msg === "closing").map((l) => l.client);
      expect(closing.length).toBe(new Set(closing).size);
      expect(await RawClient.connect(p.url()).then((c) => c.exchange([query("SELECT 1")]))).toHaveLength(4);
    } finally {
      await p.stop();
    }
  }, 60_000);

  it.skipIf(!hasPgBouncer())(
    "a client ending its side behind a query loses the rest of the result, as with PgBouncer 1.18; with a Terminate too",
    async () => {
      /** What came back to a client that sent `sql`, waited `waitMs` and ended its side: message types. */
      const halfClose = async (url: string, sql: Buffer, waitMs: number, withTerminate: boolean) => {
        const s = (await RawClient.connect(url)).release();
        const chunks: Buffer[] = [];
        s.on("data", (d: Buffer) => chunks.push(d));
        const closed = new Promise((r) => s.once("close", r));
        s.write(sql);
        await sleep(waitMs);
        if (withTerminate) s.end(terminate());
        else s.end();
        await closed;
        const all = Buffer.concat(chunks);
        const seen = new Set<string>();
        for (let at = 0; at + 5 <= all.length; at += 1 + all.readUInt32BE(at + 1))
          seen.add(String.fromCharCode(all[at]!));
        return [...seen].join("");
      };
      await withTestPooler({}, async (p) => {
        for (const withTerminate of [false, true]) {
          // (ended at once, behind the query, it is a race for PgBouncer too: its result may come or not)
          for (const sql of [query("SELECT 1"), bigResult(100)]) {
            const waitMs = 200;
            const ours = await halfClose(p.url(), sql, waitMs, withTerminate);
            const theirs = await halfClose(bouncer!.url("app"), sql, waitMs, withTerminate);
            expect({ ours, withTerminate, waitMs }).toEqual({ ours: theirs, withTerminate, waitMs });
          }
        }
      });
    },
    60_000,
  );
  it("direct TLS whose ClientHello comes in pieces, and a ClientHello sent behind an SSLRequest before its 'S' is read, both log in", () =>
    withTestPooler(
      {
        CLIENT_TLS_SSLMODE: "require",
        CLIENT_TLS_KEY_FILE: certs.serverKey,
        CLIENT_TLS_CERT_FILE: certs.serverCert,
      },
      async (p) => {
        /** The first reply to a startup packet over `secure` once its handshake is done: "R" asks for the password. */
        const loginOver = async (secure: tls.TLSSocket): Promise<string> => {
          await new Promise((resolve, reject) => secure.once("secureConnect", resolve).once("error", reject));
          secure.write(startupMessage({ user: "postgres", database: "app" }));
          const reply = await new Promise<Buffer>((resolve) => secure.once("data", resolve));
          secure.destroy();
          return String.fromCharCode(reply[0]!);
        };
        // the handle turns into a net.Socket on the first byte; the rest is read by the TLS socket
        for (const pieces of [[1], [3], [1, 1, 1, 1, 1]]) {
          const raw = await tcp(p.port);
          const over = relayed(raw, pieces);
          const secure = tls.connect({
            socket: over,
            rejectUnauthorized: false,
            ALPNProtocols: ["postgresql"],
          });
          expect(await loginOver(secure), `ClientHello in pieces of ${pieces.join(", ")}`).toBe("R");
          raw.destroy();
        }
        // the 'S' is read off the stream before TLS sees it; the ClientHello goes 20 ms after the request
        const raw = await tcp(p.port);
        raw.write(sslRequest());
        const over = relayed(raw, [], 1);
        await sleep(20);
        expect(await loginOver(tls.connect({ socket: over, rejectUnauthorized: false }))).toBe("R");
        raw.destroy();
      },
    ));
  it.skipIf(!hasPgBouncer())(
    "TCP_NODELAY and tcp_keepidle, tcp_keepintvl, tcp_keepcnt are set on a client's handle as PgBouncer 1.18 sets them",
    async () => {
      const keepalive = { tcp_keepidle: 30, tcp_keepintvl: 7, tcp_keepcnt: 4 };
      const theirs = await startPgBouncer({ app: bouncerDb() }, keepalive);
      const ours = await startTestPooler({ TCP_KEEPIDLE: "30", TCP_KEEPINTVL: "7", TCP_KEEPCNT: "4" });
      try {
        const clients = [await connect(ours.url()), await connect(theirs.url("app"))];
        const options = (pid: number, port: number): unknown =>
          JSON.parse(execFileSync("python3", [SOCKOPTS, String(pid), String(port)], { encoding: "utf8" }));
        const expected = { nodelay: 1, keepalive: 1, idle: 30, interval: 7, count: 4 };
        expect(options(theirs.pid, theirs.port)).toEqual([expected]);
        expect(options(process.pid, ours.port)).toEqual([expected]);
        await Promise.all(clients.map((c) => c.end()));
      } finally {
        await ours.stop();
        await theirs.stop();
      }
    },
  );

  it.skipIf(!hasPgBouncer())(
    "listen_addr * shows an IPv4 client as PgBouncer 1.18 does, 127.0.0.1, not as ::ffff:127.0.0.1 (SHOW CLIENTS, application_name_add_host)",
    () =>
      withTestPooler(
        { LISTEN_ADDR: "*", ADMIN_USERS: "postgres", APPLICATION_NAME_ADD_HOST: "1" },
        async (p) => {
          const addresses = async (url: string) =>
            (await show(url, "CLIENTS")).map((r) => `${String(r.addr)} ${String(r.local_addr)}`);
          expect(await addresses(p.url("pgbouncer"))).toEqual(await addresses(bouncer!.url("pgbouncer")));
          expect(await addresses(p.url("pgbouncer"))).toEqual(["127.0.0.1 127.0.0.1"]);
          const c = await connect(p.url(), { application_name: "app1" });
          try {
            const { rows } = await c.query<{ name: string }>(
              "SELECT current_setting('application_name') AS name",
            );
            expect(rows[0]!.name).toMatch(/^app1 - 127\.0\.0\.1:\d+$/);
          } finally {
            await c.end();
          }
        },
      ),
  );
});
