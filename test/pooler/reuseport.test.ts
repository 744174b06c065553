// so_reuseport: two poolers listen on one TCP port and the kernel spreads the clients between them,
// PgBouncer's way of using more than one core. Each keeps its own Unix socket, where its console is
// reached and where its peer forwards the cancel requests that the kernel handed to the wrong one.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cancelRequest } from "../../pooler/protocol/messages.ts";
import { cancelKeyOf, connect, errorOf, rawExchange } from "../support/clients.ts";
import { freePort } from "../support/ports.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { waitFor } from "../support/wait.ts";

const CLIENTS = 16;
const dirs: string[] = [];
let port: number;
const poolers: TestPooler[] = [];

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Pooler `self` of two, listening on the shared port and on its own socket directory. */
async function startPeer(self: number, socketDirs: string[]): Promise<TestPooler> {
  const ini = path.join(tempDir("pooler-reuseport-ini-"), "pgbouncer.ini");
  const peers = socketDirs.map((dir, i) => `${i + 1} = host=${dir} port=${port}`);
  fs.writeFileSync(ini, ["[peers]", ...peers, "[pgbouncer]", `peer_id = ${self}`].join("\n"));
  return startTestPooler(
    {
      LISTEN_PORT: String(port),
      SO_REUSEPORT: "1",
      UNIX_SOCKET_DIR: socketDirs[self - 1]!,
      ADMIN_USERS: "postgres",
    },
    ini,
  );
}

/** The `app` clients a pooler holds, asked on its own console through its Unix socket. */
async function appClients(socketDir: string): Promise<number> {
  const admin = await connect(
    `postgresql://postgres:postgres@/pgbouncer?host=${encodeURIComponent(socketDir)}&port=${port}`,
  );
  try {
    const { rows } = await admin.query<{ database: string }>("SHOW CLIENTS");
    return rows.filter((r) => r.database === "app").length;
  } finally {
    await admin.end();
  }
}

beforeAll(async () => {
  port = await freePort();
  const socketDirs = [tempDir("pooler-reuseport-a-"), tempDir("pooler-reuseport-b-")];
  for (const self of [1, 2]) poolers.push(await startPeer(self, socketDirs));
});

afterAll(async () => {
  await Promise.all(poolers.map((p) => p.stop()));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe("so_reuseport", () => {
  it("shows in SHOW CONFIG as set, read only at start", async () => {
    const admin = await connect(poolers[0]!.url("pgbouncer"));
    try {
      const { rows } = await admin.query<{ key: string; value: string; changeable: string }>("SHOW CONFIG");
      expect(rows.find((r) => r.key === "so_reuseport")).toMatchObject({ value: "1", changeable: "no" });
      expect(await errorOf(admin.query("SET so_reuseport = 0"))).toMatchObject({
        message: expect.stringContaining("cannot be changed online"),
      });
    } finally {
      await admin.end();
    }
  });

  it("lets the kernel spread clients of one port over both poolers, and cancels reach the right one", async () => {
    const clients: pg.Client[] = [];
    try {
      for (let i = 0; i < CLIENTS; i++) clients.push(await connect(poolers[0]!.url()));
      const held = [await appClients(dirs[0]!), await appClients(dirs[1]!)];
      // the kernel picks by a hash of each connection's addresses: all 16 on one side is a 2^-15 chance
      expect(held[0]! + held[1]!).toBe(CLIENTS);
      expect(Math.min(...held)).toBeGreaterThan(0);

      // every cancel goes to the shared port too, so about half land on the pooler the client is
      // not on and get there through [peers]
      const sleeps = clients.map((c) => errorOf(c.query("SELECT pg_sleep(30)")));
      await new Promise((r) => setTimeout(r, 500));
      const started = Date.now();
      await Promise.all(
        clients.map((c) => {
          const { pid, secret } = cancelKeyOf(c);
          return rawExchange(port, cancelRequest(pid, secret));
        }),
      );
      const errors = await Promise.all(sleeps);
      expect(errors.map((e) => e.code)).toEqual(clients.map(() => "57014"));
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  // last: it shuts the first pooler down
  it("rolls over with no client refused: the old pooler's SHUTDOWN WAIT_FOR_CLIENTS hands new ones to the other", async () => {
    const [old, next] = dirs as [string, string];
    const stayed: pg.Client[] = [];
    const joined: pg.Client[] = [];
    try {
      for (let i = 0; i < CLIENTS; i++) stayed.push(await connect(poolers[0]!.url()));
      for (const c of stayed) await c.query("BEGIN");
      const onOld = await appClients(old);
      expect(onOld).toBeGreaterThan(0);
      const admin = await connect(
        `postgresql://postgres:postgres@/pgbouncer?host=${encodeURIComponent(old)}&port=${port}`,
      );
      await admin.query("SHUTDOWN WAIT_FOR_CLIENTS");
      await admin.end();
      // the old pooler no longer listens, on either socket; its clients keep their sessions
      const listening = (dir: string): Promise<boolean> =>
        appClients(dir).then(
          () => true,
          () => false,
        );
      await waitFor(async () => !(await listening(old)), "the old pooler to stop listening");
      for (let i = 0; i < CLIENTS; i++) joined.push(await connect(poolers[0]!.url()));
      expect(await appClients(next)).toBe(CLIENTS - onOld + CLIENTS);
      for (const c of stayed) await c.query("COMMIT");
      await Promise.all(stayed.splice(0).map((c) => c.end()));
      // ... and it exits once the last one has left
      await poolers[0]!.pooler.stopped;
      for (const c of joined) expect((await c.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    } finally {
      await Promise.all([...stayed, ...joined].map((c) => c.end()));
    }
  });

  it("cannot share a port with a pooler that did not set it", async () => {
    const other = await freePort();
    const plain = await startTestPooler({ LISTEN_PORT: String(other), UNIX_SOCKET_DIR: "" });
    try {
      const err = await errorOf(
        startTestPooler({ LISTEN_PORT: String(other), SO_REUSEPORT: "1", UNIX_SOCKET_DIR: "" }),
      );
      expect(err.message).toMatch(/EADDRINUSE|address already in use/i);
    } finally {
      await plain.stop();
    }
  });
});
