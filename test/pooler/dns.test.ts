// The pooler's DNS cache through real lookups: a server host given by name is resolved once per
// dns_max_ttl, SHOW DNS_HOSTS and SHOW LISTS show it as PgBouncer does, and a name that does not
// resolve is remembered for dns_nxdomain_ttl.
import dns from "node:dns";
import net from "node:net";
import { describe, expect, inject, it, vi } from "vitest";
import { cancelledSleep, connect, errorOf } from "../support/clients.ts";
import { withTestPooler, type TestPooler } from "../support/pooler.ts";
import { relay } from "../support/relay.ts";

/** The test database, by host name rather than address. */
const byName = (host: string): string => {
  const url = new URL(inject("pgAppUrl"));
  url.hostname = host;
  return url.toString();
};

async function consoleRows<R>(p: TestPooler, sql: string): Promise<R[]> {
  const admin = await connect(p.url("pgbouncer"));
  try {
    return (await admin.query(sql)).rows as R[];
  } finally {
    await admin.end();
  }
}

const dnsHosts = (p: TestPooler) =>
  consoleRows<{ hostname: string; ttl: string; addrs: string }>(p, "SHOW DNS_HOSTS");

async function list(p: TestPooler, name: string): Promise<number> {
  const rows = await consoleRows<{ list: string; items: number }>(p, "SHOW LISTS");
  return rows.find((r) => r.list === name)!.items;
}

describe("DNS cache", () => {
  it("resolves a server's host name once per dns_max_ttl, for every server it opens", async () => {
    await withTestPooler({ DATABASE_URL: byName("localhost"), ADMIN_USERS: "postgres" }, async (p) => {
      const first = await connect(p.url());
      const second = await connect(p.url());
      try {
        await first.query("BEGIN");
        await first.query("SELECT 1");
        const [before] = await dnsHosts(p);
        expect(before).toMatchObject({
          hostname: "localhost",
          addrs: expect.stringContaining("127.0.0.1:0"),
        });
        expect(Number(before!.ttl)).toBeGreaterThanOrEqual(14);
        await new Promise((r) => setTimeout(r, 1_200));
        // `first` holds its server, so this needs a second one, opened with the cached addresses
        await second.query("SELECT 1");
        expect(await serversOf(p)).toBe(2);
        const [after] = await dnsHosts(p);
        expect(Number(after!.ttl)).toBeLessThanOrEqual(13);
        expect(await list(p, "dns_names")).toBe(1);
        expect(await list(p, "dns_pending")).toBe(0);
      } finally {
        await Promise.all([first.end(), second.end()]);
      }
    });
  });

  it("looks the name up for each server with dns_max_ttl = 0", async () => {
    await withTestPooler(
      { DATABASE_URL: byName("localhost"), DNS_MAX_TTL: "0", ADMIN_USERS: "postgres" },
      async (p) => {
        const c = await connect(p.url());
        try {
          await c.query("SELECT 1");
          expect(await dnsHosts(p)).toEqual([{ hostname: "localhost", ttl: "0", addrs: "127.0.0.1:0" }]);
        } finally {
          await c.end();
        }
      },
    );
  });

  it("refuses clients of a host that does not resolve, and remembers the failure for dns_nxdomain_ttl", async () => {
    await withTestPooler(
      { DATABASE_URL: byName("no-such-host.invalid"), ADMIN_USERS: "postgres", SERVER_LOGIN_RETRY: "0" },
      async (p) => {
        const err = await errorOf(connect(p.url()));
        expect(err.message).toMatch(/ENOTFOUND no-such-host\.invalid/);
        const [row] = await dnsHosts(p);
        expect(row).toMatchObject({ hostname: "no-such-host.invalid", addrs: "" });
        expect(Number(row!.ttl)).toBeGreaterThanOrEqual(13);
      },
    );
  });

  it("sends a cancel to the address the server was opened on, not the name's next one", async () => {
    // a name with two addresses, as DNS round robin over replicas: the second one takes the cancel
    // request and does nothing with it, as another PostgreSQL would for a key it never gave out
    const pg = new URL(inject("pgAppUrl"));
    const decoy = net.createServer((s) => s.on("data", () => s.end()));
    await new Promise<void>((r) => decoy.listen(Number(pg.port), "127.0.0.2", r));
    const spy = answering("replicas.test", () => ["127.0.0.1", "127.0.0.2"]);
    try {
      await withTestPooler({ DATABASE_URL: byName("replicas.test") }, async (p) => {
        const c = await connect(p.url());
        try {
          const { err, ms } = await cancelledSleep(c, p.port);
          expect(err.code).toBe("57014");
          expect(ms).toBeLessThan(5000);
        } finally {
          await c.end();
        }
      });
    } finally {
      spy.mockRestore();
      await new Promise((r) => decoy.close(r));
    }
  });

  it("replaces the servers on an address a new lookup no longer gives, as PgBouncer (DNS failover)", async () => {
    // the new primary's address
    const relay = await relayAt("127.0.0.2");
    let addresses = ["127.0.0.1"];
    const spy = answering("primary.test", () => addresses);
    try {
      await withTestPooler(
        { DATABASE_URL: byName("primary.test"), DNS_MAX_TTL: "1", ADMIN_USERS: "postgres" },
        async (p) => {
          const [first, second] = await Promise.all([connect(p.url()), connect(p.url())]);
          try {
            await first.query("BEGIN");
            const before = (await first.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
            addresses = ["127.0.0.2"];
            await new Promise((r) => setTimeout(r, 1_200));
            // `first` holds its server: this one needs another, and the name is looked up again
            await second.query("SELECT 1");
            await first.query("COMMIT");
            const after = (await first.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
            expect(after).not.toBe(before);
            const addrs = await consoleRows<{ addr: string }>(p, "SHOW SERVERS");
            expect(addrs.map((r) => r.addr)).not.toContain("127.0.0.1");
          } finally {
            await Promise.all([first.end(), second.end()]);
          }
        },
      );
    } finally {
      spy.mockRestore();
      await new Promise((r) => relay.close(r));
    }
  });
  it("also replaces a server still logging in on an address a new lookup no longer gives", async () => {
    const slow = await relayAt("127.0.0.3", 1_500);
    let addresses = ["127.0.0.1"];
    const spy = answering("moving.test", () => addresses);
    const held = (s: { addr: string }[]): string[] => s.map((r) => r.addr).sort();
    try {
      await withTestPooler(
        { DATABASE_URL: byName("moving.test"), DNS_MAX_TTL: "0", ADMIN_USERS: "postgres" },
        async (p) => {
          const [a, b, c] = await Promise.all([connect(p.url()), connect(p.url()), connect(p.url())]);
          try {
            await a.query("BEGIN");
            // a holds the one server: b's query needs another, which dials the slow address
            addresses = ["127.0.0.3"];
            const bQuery = b.query("SELECT 1");
            await new Promise((r) => setTimeout(r, 300));
            // while that one logs in, the name moves back: c's server is dialed after a lookup
            // that no longer gives 127.0.0.3
            addresses = ["127.0.0.1"];
            await Promise.all([bQuery, c.query("SELECT 1"), a.query("COMMIT")]);
            await new Promise((r) => setTimeout(r, 2_000));
            expect(held(await consoleRows<{ addr: string }>(p, "SHOW SERVERS"))).not.toContain("127.0.0.3");
          } finally {
            await Promise.all([a.end(), b.end(), c.end()]);
          }
        },
      );
    } finally {
      spy.mockRestore();
      await new Promise((r) => slow.close(r));
    }
  });
});

/**
 * A relay to the test PostgreSQL (which listens on 127.0.0.1 only) at another loopback address, as
 * another server behind the same name; `holdMs` holds PostgreSQL's first answer, so that a server
 * dialing it stays logging in that long.
 */
function relayAt(address: string, holdMs = 0): Promise<net.Server> {
  const port = Number(new URL(inject("pgAppUrl")).port);
  return relay({ host: address, port }, { host: "127.0.0.1", port }, holdMs);
}

/** The system resolver, but `name` resolves to `addresses()` (IPv4). */
function answering(name: string, addresses: () => string[]) {
  const lookup = dns.promises.lookup;
  return vi
    .spyOn(dns.promises, "lookup")
    .mockImplementation(((host: string, opts: dns.LookupAllOptions) =>
      host === name
        ? Promise.resolve(addresses().map((address) => ({ address, family: 4 })))
        : lookup(host, opts)) as typeof dns.promises.lookup);
}

async function serversOf(p: TestPooler): Promise<number> {
  const rows = await consoleRows<{ database: string }>(p, "SHOW SERVERS");
  return rows.filter((r) => r.database === "app").length;
}
