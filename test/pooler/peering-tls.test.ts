// Peering next to server TLS: a pooler whose servers want TLS (server_tls_sslmode=require) still
// reaches its peers, which (as PgBouncer's default client_tls_sslmode=disable) may not speak TLS.
// PgBouncer sends a CancelRequest as the first bytes of the connection, never behind an SSLRequest.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cancelRequest } from "../../pooler/protocol/messages.ts";
import { connect, errorOf, rawExchange } from "../support/clients.ts";
import { freePort } from "../support/ports.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";

const dirs: string[] = [];
let a: TestPooler;
let b: TestPooler;

function iniFor(self: number, ports: { a: number; b: number }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-peers-tls-"));
  dirs.push(dir);
  const file = path.join(dir, "pgbouncer.ini");
  fs.writeFileSync(
    file,
    [
      "[peers]",
      `1 = host=127.0.0.1 port=${ports.a}`,
      `2 = host=127.0.0.1 port=${ports.b}`,
      "[pgbouncer]",
      `peer_id = ${self}`,
    ].join("\n"),
  );
  return file;
}

beforeAll(async () => {
  const ports = { a: await freePort(), b: await freePort() };
  const env = { CANCEL_WAIT_TIMEOUT: "2" };
  // a's servers would need TLS; its clients (and peers) get none, the default
  a = await startTestPooler(
    { ...env, LISTEN_PORT: String(ports.a), SERVER_TLS_SSLMODE: "require" },
    iniFor(1, ports),
  );
  b = await startTestPooler({ ...env, LISTEN_PORT: String(ports.b) }, iniFor(2, ports));
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function keyOf(c: pg.Client): { pid: number; secret: number } {
  const k = c as unknown as { processID: number; secretKey: number };
  return { pid: k.processID, secret: k.secretKey };
}

describe("peering with server_tls_sslmode=require", () => {
  it("forwards a cancel to a peer that does not speak TLS, as PgBouncer does", async () => {
    const c = await connect(b.url());
    try {
      const { pid, secret } = keyOf(c);
      const started = Date.now();
      const slow = c.query("SELECT pg_sleep(5)");
      await new Promise((r) => setTimeout(r, 300));
      await rawExchange(a.port, cancelRequest(pid, secret), 300);
      const err = await errorOf(slow);
      expect(err.code).toBe("57014");
      expect(Date.now() - started).toBeLessThan(3000);
      expect(a.logs.filter((l) => l.msg === "could not forward cancel request to peer")).toEqual([]);
    } finally {
      await c.end();
    }
  });
});
