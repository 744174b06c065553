// A slow reader must pause its writer: a client that stops reading a huge result makes the pooler
// stop reading from the server, so the pooler's memory stays bounded, and nothing is lost.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query, startupMessage } from "../../pooler/protocol/messages.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";

const ROWS = 200_000;
const ROW_TEXT = 1000; // ~200 MB of DataRows in all

/** Logs in (trust) over a raw socket and resolves once the pooler said ReadyForQuery. */
function rawLogin(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port }, () =>
      sock.write(startupMessage({ user: "postgres", database: "app" })),
    );
    let got = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      // ReadyForQuery 'I' ends the login
      if (got.includes(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]))) {
        sock.off("data", onData);
        resolve(sock);
      }
    };
    sock.on("data", onData);
    sock.on("error", reject);
  });
}

describe("backpressure", () => {
  let p: TestPooler;
  beforeAll(async () => {
    p = await startTestPooler({ AUTH_TYPE: "trust", DEFAULT_POOL_SIZE: "1" });
  });
  afterAll(() => p.stop());

  it("a client that stops reading pauses the server side; the result then arrives complete", async () => {
    const sock = await rawLogin(p.port);
    sock.pause();
    sock.write(query(`SELECT repeat('x', ${ROW_TEXT}) FROM generate_series(1, ${ROWS})`));
    await new Promise((r) => setTimeout(r, 1500));
    const pool = [...p.pooler.pools.values()][0]!;
    const server = [...pool.active][0]!;
    const client = [...p.pooler.clients].find((c) => c.server === server)!;
    // the pooler stopped reading the server, and holds only a bounded amount for the client
    expect(server.socket.isPaused()).toBe(true);
    expect(client.socket.writableLength).toBeLessThan(8 << 20);

    let bytes = 0;
    let tail = Buffer.alloc(0);
    const done = new Promise<void>((resolve) => {
      sock.on("data", (d: Buffer) => {
        bytes += d.length;
        tail = Buffer.concat([tail, d]).subarray(-6);
        if (tail.equals(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]))) resolve();
      });
    });
    sock.resume();
    await done;
    // every DataRow arrived: type(1) + len(4) + ncols(2) + collen(4) + text
    expect(bytes).toBeGreaterThan(ROWS * (11 + ROW_TEXT));
    sock.end();
  }, 60_000);
});
