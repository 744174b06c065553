// An idle pooler makes no garbage per client (issue 6). The janitor walks every client three times
// a second; when that walk made a closure per client, 10,000 idle clients made 1.1 MB of garbage a
// second, and V8's memory reducer, which runs only in a process that allocates little, never gave
// back what the logins had grown: 2.1 kB of RSS per idle client instead of 1.8.
//
// V8's sampling heap profiler, in this process (the pooler runs in it), counts what code in
// pooler/ allocates, garbage included, over the same idle time without clients and with them: the
// difference is what the clients cost. And what an idle client keeps in V8's heap, its socket
// first: a net.Socket was most of it.
import { spawn } from "node:child_process";
import { once } from "node:events";
import inspector from "node:inspector";
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import { describe, expect, it } from "vitest";
import { withTestPooler } from "../support/pooler.ts";
import { RawClient } from "../support/protocol.ts";

const CLIENTS = 400;
const IDLE_MS = 3000;
/** The janitor's ticks in IDLE_MS, rounded down (it runs every 333 ms). */
const TICKS = 9;
/** Bytes per idle client per janitor tick that count as allocating per client (a closure is 32 or more). */
const PER_CLIENT_TICK = 8;

/**
 * With its socket below net.Socket (client-socket.ts) an idle client held 0.91 kB of heap here; on a
 * net.Socket (Socket, its stream states, listeners, the cached peer address) 1.74-1.78 kB.
 */
const HEAP_PER_CLIENT = 1300;
const HELD = 1000;

const POOLER_DIR = path.resolve(fileURLToPath(import.meta.url), "../../../pooler") + path.sep;

interface ProfileNode {
  callFrame: { url: string };
  selfSize: number;
  children: ProfileNode[];
}

function post<T>(session: inspector.Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params, (err, result) => (err ? reject(err) : resolve(result as T))),
  );
}

/** Bytes allocated (sampled) under a frame of the pooler's own code. */
function poolerBytes(node: ProfileNode, inPooler = false): number {
  const here = inPooler || node.callFrame.url.includes(POOLER_DIR);
  let total = here ? node.selfSize : 0;
  for (const child of node.children) total += poolerBytes(child, here);
  return total;
}

/** What the pooler's code allocates in IDLE_MS (sampled every 128 bytes on average). */
async function allocatedWhileIdle(): Promise<number> {
  const session = new inspector.Session();
  session.connect();
  try {
    await post(session, "HeapProfiler.startSampling", {
      samplingInterval: 128,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const { profile } = await post<{ profile: { head: ProfileNode } }>(session, "HeapProfiler.stopSampling");
    return poolerBytes(profile.head);
  } finally {
    session.disconnect();
  }
}

/** Logged-in clients held open by a process of their own, so that their sockets are not in this heap. */
const HOLD_CLIENTS = `
const pg = require("pg");
const [url, n] = process.argv.slice(1);
(async () => {
  for (let i = 0; i < Number(n); i += 50)
    await Promise.all(Array.from({ length: 50 }, () => new pg.Client(url).connect()));
  process.stdout.write("in");
  process.stdin.resume().on("end", () => process.exit(0));
})();
`;

/** V8's heap in use after full collections. */
function liveHeap(): number {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** `n` logged-in clients held open by a child process until the returned function is called. */
async function holdClients(url: string, n: number): Promise<() => Promise<void>> {
  const holder = spawn(process.execPath, ["-e", HOLD_CLIENTS, url, String(n)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  await once(holder.stdout!, "data");
  return async () => {
    holder.stdin!.end();
    await once(holder, "exit");
  };
}

describe("an idle pooler", () => {
  it(`holds under ${HEAP_PER_CLIENT} B of V8 heap per logged-in client while ${HELD} wait`, async () => {
    await withTestPooler({ MAX_CLIENT_CONN: String(2 * HELD) }, async (p) => {
      // the first logins compile the code they run: not per client
      const warm = await holdClients(p.url(), HELD / 2);
      try {
        const before = liveHeap();
        const release = await holdClients(p.url(), HELD);
        const perClient = (liveHeap() - before) / HELD;
        await release();
        console.log(`${HELD} idle clients: ${perClient.toFixed(0)} B of V8 heap each`);
        expect(perClient).toBeLessThan(HEAP_PER_CLIENT);
      } finally {
        await warm();
      }
    });
  });

  it(`allocates nothing per client while ${CLIENTS} logged-in clients wait`, async () => {
    await withTestPooler({ MAX_CLIENT_CONN: String(CLIENTS + 10) }, async (p) => {
      const alone = await allocatedWhileIdle();
      const clients: RawClient[] = [];
      try {
        for (let i = 0; i < CLIENTS; i += 50)
          clients.push(...(await Promise.all(Array.from({ length: 50 }, () => RawClient.connect(p.url())))));
        // The logins' own work is done before counting.
        await new Promise((r) => setTimeout(r, 500));
        const withClients = await allocatedWhileIdle();
        const perClientTick = (withClients - alone) / CLIENTS / TICKS;
        console.log(
          `idle ${IDLE_MS} ms: the pooler's code allocated ${alone} B alone, ${withClients} B with ${CLIENTS} ` +
            `clients: ${perClientTick.toFixed(2)} B per client per janitor tick`,
        );
        expect(perClientTick).toBeLessThan(PER_CLIENT_TICK);
      } finally {
        for (const c of clients) c.destroy();
      }
    });
  });
});
