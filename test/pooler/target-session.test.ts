// target_session_attrs: in a host list, only the servers in the state asked for take clients — the
// primary after a failover, or the standbys. The standby here is a PostgreSQL 13 of its own on
// 127.0.0.2, in recovery with no primary to follow, on the shared server's port number, so that one
// `port=` serves the list "127.0.0.1,127.0.0.2" (PostgreSQL 13 reports neither in_hot_standby nor
// default_transaction_read_only: the pooler asks).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parameterStatus } from "../../pooler/protocol/messages.ts";
import { startFakePostgres } from "../support/fake-postgres.ts";
import { connect, errorOf } from "../support/clients.ts";
import type { PrivatePostgres } from "../support/private-postgres.ts";
import { recoveryOfServers, startStandby, withEntryPooler as withPooler } from "../support/standby.ts";

let standby: PrivatePostgres;

beforeAll(async () => {
  standby = await startStandby("127.0.0.2");
}, 120_000);

afterAll(() => standby?.stop());

const refused = "server refused, trying the next host";

describe("target_session_attrs", () => {
  it("without it, a host list gives servers of both", async () => {
    await withPooler("host=127.0.0.2,127.0.0.1", async (p) => {
      expect((await recoveryOfServers(p)).sort()).toEqual([false, false, true, true]);
    });
  });

  it.each(["read-write", "primary"])(
    "%s: only the primary, the standby listed first skipped",
    async (attrs) => {
      await withPooler(`host=127.0.0.2,127.0.0.1 target_session_attrs=${attrs}`, async (p) => {
        expect(await recoveryOfServers(p)).toEqual([false, false, false, false]);
        expect(p.logs.filter((l) => l.msg === refused).length).toBeGreaterThan(0);
      });
    },
  );

  it("keeps trying the other host while logins run side by side and the standby refuses twice in a row", async () => {
    // 16 logins at once, round-robin: the standby's refusals come back between the primary's logins
    await withPooler("host=127.0.0.2,127.0.0.1 target_session_attrs=read-write pool_size=16", async (p) => {
      expect(await recoveryOfServers(p, 16)).toEqual(Array<boolean>(16).fill(false));
      expect(p.logs.filter((l) => l.msg === "server login failed")).toEqual([]);
    });
  });

  it.each(["standby", "read-only", "prefer-standby"])("%s: only the standby", async (attrs) => {
    await withPooler(`host=127.0.0.1,127.0.0.2 target_session_attrs=${attrs}`, async (p) => {
      expect(await recoveryOfServers(p)).toEqual([true, true, true, true]);
    });
  });

  it("primary with load_balance_hosts=disable moves off the standby once and stays", async () => {
    await withPooler(
      "host=127.0.0.2,127.0.0.1 load_balance_hosts=disable target_session_attrs=primary",
      async (p) => {
        expect(await recoveryOfServers(p)).toEqual([false, false, false, false]);
        expect(p.logs.filter((l) => l.msg === refused).length).toBe(1);
      },
    );
  });

  it("prefer-standby takes a primary when no host is a standby", async () => {
    await withPooler("host=127.0.0.1,localhost target_session_attrs=prefer-standby", async (p) => {
      expect(await recoveryOfServers(p)).toEqual([false, false, false, false]);
    });
  });

  it("refuses the clients, naming why, when no host will do", async () => {
    await withPooler("host=127.0.0.1 target_session_attrs=standby", async (p) => {
      const err = await errorOf(connect(p.url()));
      expect(err.message).toMatch(
        /no host matches: server is a read-write primary, target_session_attrs=standby/,
      );
    });
  });

  it("runs connect_query only on servers in the recovery state asked for", async () => {
    // a standby refuses to create even a temporary table: had connect_query run there, it would fail
    const entry = "host=127.0.0.2,127.0.0.1 connect_query='CREATE TEMP TABLE cq_mark (x int)'";
    await withPooler(`${entry} target_session_attrs=primary`, async (p) => {
      expect(await recoveryOfServers(p)).toEqual([false, false, false, false]);
      expect(p.logs.filter((l) => l.msg === "connect_query failed")).toEqual([]);
      expect(p.logs.filter((l) => l.msg === refused).length).toBeGreaterThan(0);
    });
  });

  it("is checked after connect_query, which may make a primary read-only", async () => {
    const entry = "host=127.0.0.1 connect_query='SET default_transaction_read_only = on'";
    await withPooler(`${entry} target_session_attrs=read-only`, async (p) => {
      const c = await connect(p.url());
      try {
        expect((await c.query("SHOW transaction_read_only")).rows).toEqual([{ transaction_read_only: "on" }]);
      } finally {
        await c.end();
      }
    });
    await withPooler(`${entry} target_session_attrs=read-write`, async (p) => {
      const err = await errorOf(connect(p.url()));
      expect(err.message).toMatch(/no host matches: server is read-only, target_session_attrs=read-write/);
    });
  });
});

describe("target_session_attrs on PostgreSQL 14+", () => {
  it("once no host matches, waits server_login_retry before the next login", async () => {
    const fake = await startFakePostgres({
      params: { server_version: "14.0", in_hot_standby: "off", default_transaction_read_only: "off" },
    });
    try {
      await withPooler(
        "host=127.0.0.1 target_session_attrs=standby",
        async (p) => {
          expect((await errorOf(connect(p.url()))).message).toMatch(/no host matches/);
          // a second login right behind the refusal would come now
          await new Promise((r) => setTimeout(r, 200));
          expect(fake.logins()).toBe(1);
        },
        fake.port,
      );
    } finally {
      fake.close();
    }
  });

  it("closes a server as it comes free once it reports it no longer matches (a standby promoted)", async () => {
    // a standby at each login; a query naming "promote" gets in_hot_standby = off first, as a
    // promoted standby tells its sessions
    const fake = await startFakePostgres({
      params: { server_version: "14.0", in_hot_standby: "on", default_transaction_read_only: "off" },
      before: (sql) => (sql.includes("promote") ? [parameterStatus("in_hot_standby", "off")] : []),
    });
    try {
      await withPooler(
        "host=127.0.0.1 target_session_attrs=standby",
        async (p) => {
          const c = await connect(p.url());
          try {
            await c.query("SELECT 1");
            await c.query("SELECT 'promote'");
            // the server that reported the promotion is not handed out again: a new login
            await c.query("SELECT 2");
            expect(fake.logins()).toBe(2);
          } finally {
            await c.end();
          }
        },
        fake.port,
      );
    } finally {
      fake.close();
    }
  });
});
