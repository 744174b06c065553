// TCP keepalive as PgBouncer sets it, on a link that goes dead without a FIN or a reset: client and
// server sockets are dropped after tcp_keepidle + tcp_keepcnt × tcp_keepintvl, and where only
// tcp_keepidle is set the system's interval and count apply, not libuv's 1 s and 10 probes.
import { readFileSync } from "node:fs";
import type net from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { connect } from "../support/clients.ts";
import { canCreateNetNamespaces, createNetNamespace, type NetNamespace } from "../support/netns.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { relay } from "../support/relay.ts";
import { waitFor } from "../support/wait.ts";

const NS_RELAY_PORT = 5432;
const sysctl = (name: string): number =>
  Number(readFileSync(`/proc/sys/net/ipv4/tcp_keepalive_${name}`, "utf8"));

/** What the pooler holds from the namespace: its clients there and its servers through it. */
async function fromNamespace(p: TestPooler, ns: NetNamespace): Promise<{ clients: number; servers: number }> {
  const admin = await connect(p.url("pgbouncer"));
  try {
    const count = async (sql: string) =>
      (await admin.query<{ addr: string }>(sql)).rows.filter((r) => r.addr === ns.peerAddress).length;
    return { clients: await count("SHOW CLIENTS"), servers: await count("SHOW SERVERS") };
  } finally {
    await admin.end();
  }
}

describe.skipIf(!canCreateNetNamespaces())("TCP keepalive on a link that goes dead", () => {
  let ns: NetNamespace;
  let toPostgres: net.Server;

  beforeAll(async () => {
    ns = await createNetNamespace();
    // PostgreSQL listens on loopback here: the namespace reaches it through a relay on the link
    const pg = new URL(inject("pgAppUrl"));
    toPostgres = await relay({ host: ns.hostAddress, port: 0 }, { host: pg.hostname, port: Number(pg.port) });
    const { port } = toPostgres.address() as net.AddressInfo;
    const nsRelay = ns.spawn(process.execPath, [
      fileURLToPath(new URL("../support/relay.ts", import.meta.url)),
      ns.peerAddress,
      String(NS_RELAY_PORT),
      ns.hostAddress,
      String(port),
    ]);
    await new Promise<void>((resolve, reject) => {
      nsRelay.stdout!.once("data", () => resolve());
      nsRelay.once("exit", (code) => reject(new Error(`the namespace's relay exited (${code})`)));
    });
  });

  afterAll(async () => {
    await ns?.remove();
    await new Promise((resolve) => (toPostgres ? toPostgres.close(resolve) : resolve(undefined)));
  });

  /** A pooler whose server is in the namespace, listening for clients on the link too. */
  function poolerAcrossTheLink(env: Record<string, string>): Promise<TestPooler> {
    const server = new URL(inject("pgAppUrl"));
    server.hostname = ns.peerAddress;
    server.port = String(NS_RELAY_PORT);
    return startTestPooler({
      DATABASE_URL: server.toString(),
      LISTEN_ADDR: `127.0.0.1,${ns.hostAddress}`,
      ADMIN_USERS: "postgres",
      ...env,
    });
  }

  /** psql in the namespace, logged in through `p` and left idle; its server stays in the pool. */
  async function idlePsql(p: TestPooler): Promise<void> {
    const psql = ns.spawn(
      "psql",
      ["-X", "-A", "-t", `host=${ns.hostAddress} port=${p.port} user=postgres dbname=app`],
      {
        ...process.env,
        PGPASSWORD: "postgres",
        PGCONNECT_TIMEOUT: "10",
      },
    );
    let out = "";
    psql.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    psql.stdin!.write("SELECT 'ready';\n");
    await waitFor(() => out.includes("ready"), "psql in the namespace to run a query", 10_000);
  }

  it("drops clients and servers after tcp_keepidle + tcp_keepcnt × tcp_keepintvl, and where only tcp_keepidle is set waits for the system's probes", async () => {
    // the half that shows the system's values apply needs them to outlast libuv's 1 s × 10
    const systemProbes = sysctl("intvl") * sysctl("probes");
    expect(systemProbes, "tcp_keepalive_intvl × tcp_keepalive_probes on this host").toBeGreaterThan(12);
    const tuned = await poolerAcrossTheLink({ TCP_KEEPIDLE: "1" });
    const poolers = [tuned];
    try {
      const idleOnly = await poolerAcrossTheLink({ TCP_KEEPIDLE: "1" });
      poolers.push(idleOnly);
      // online, as PgBouncer takes them: for the sockets opened from then on
      const admin = await connect(tuned.url("pgbouncer"));
      await admin.query("SET tcp_keepintvl = 1");
      await admin.query("SET tcp_keepcnt = 2");
      await admin.end();
      await Promise.all([idlePsql(tuned), idlePsql(idleOnly)]);
      expect(await fromNamespace(tuned, ns)).toEqual({ clients: 1, servers: 1 });
      expect(await fromNamespace(idleOnly, ns)).toEqual({ clients: 1, servers: 1 });

      await ns.cut();
      const cutAt = Date.now();
      // 1 s idle, then 2 probes 1 s apart: about 3 s after the last packet. libuv's own 10 probes
      // (what the pooler set before it read tcp_keepcnt and tcp_keepintvl) would take 11 s.
      await waitFor(
        async () =>
          JSON.stringify(await fromNamespace(tuned, ns)) === JSON.stringify({ clients: 0, servers: 0 }),
        "the tuned pooler to drop its client and server",
        8_000,
      );
      const gone = (Date.now() - cutAt) / 1000;
      console.log(
        `tcp_keepidle 1, tcp_keepintvl 1, tcp_keepcnt 2: both dropped ${gone.toFixed(1)} s after the cut`,
      );
      expect(tuned.logs).toContainEqual(
        expect.objectContaining({ msg: "closing", reason: "client socket error: read ETIMEDOUT" }),
      );

      // the system's interval (75 s on Linux) and count hold the other pooler's sockets well past 11 s
      await new Promise((r) => setTimeout(r, Math.max(0, cutAt + 12_500 - Date.now())));
      expect(await fromNamespace(idleOnly, ns)).toEqual({ clients: 1, servers: 1 });
    } finally {
      await ns.restore();
      await Promise.all(poolers.map((p) => p.stop()));
    }
  }, 40_000);
});
