// target_session_attrs: in a host list, only the servers in the state asked for take clients — the
// primary after a failover, or the standbys. The standby here is a PostgreSQL 13 of its own on
// 127.0.0.2, in recovery with no primary to follow, on the shared server's port number, so that one
// `port=` serves the list "127.0.0.1,127.0.0.2" (PostgreSQL 13 reports neither in_hot_standby nor
// default_transaction_read_only: the pooler asks).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { connect, errorOf } from "../support/clients.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.ts";

let standby: PrivatePostgres;
const dirs: string[] = [];

beforeAll(async () => {
  standby = await startPrivatePostgres({
    appDatabase: true,
    port: inject("pgPort"),
    settings: { listen_addresses: "127.0.0.2" },
    standby: true,
  });
}, 120_000);

afterAll(async () => {
  await standby?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A pooler whose database `app` is `entry` on the shared server's port. */
async function poolerFor(entry: string): Promise<TestPooler> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-tsa-"));
  dirs.push(dir);
  const ini = path.join(dir, "pgbouncer.ini");
  fs.writeFileSync(ini, `[databases]\napp = ${entry} port=${inject("pgPort")} dbname=app\n[pgbouncer]\n`);
  return startTestPooler({ DATABASE_URL: "", AUTH_FILE: userlist(dir), DEFAULT_POOL_SIZE: "4" }, ini);
}

function userlist(dir: string): string {
  const file = path.join(dir, "userlist.txt");
  fs.writeFileSync(file, '"postgres" "postgres"\n');
  return file;
}

/** Clients in a transaction at once (a server each): whether each server is in recovery. */
async function recoveryOfFourServers(p: TestPooler, n = 4): Promise<boolean[]> {
  const clients = await Promise.all(Array.from({ length: n }, () => connect(p.url())));
  try {
    await Promise.all(clients.map((c) => c.query("BEGIN")));
    const rows = await Promise.all(clients.map((c) => c.query("SELECT pg_is_in_recovery() AS r")));
    await Promise.all(clients.map((c) => c.query("COMMIT")));
    return rows.map((r) => r.rows[0].r as boolean);
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

async function withPooler(entry: string, fn: (p: TestPooler) => Promise<void>): Promise<void> {
  const p = await poolerFor(entry);
  try {
    await fn(p);
  } finally {
    await p.stop();
  }
}

const refused = "server refused, trying the next host";

describe("target_session_attrs", () => {
  it("without it, a host list gives servers of both", async () => {
    await withPooler("host=127.0.0.2,127.0.0.1", async (p) => {
      expect((await recoveryOfFourServers(p)).sort()).toEqual([false, false, true, true]);
    });
  });

  it.each(["read-write", "primary"])(
    "%s: only the primary, the standby listed first skipped",
    async (attrs) => {
      await withPooler(`host=127.0.0.2,127.0.0.1 target_session_attrs=${attrs}`, async (p) => {
        expect(await recoveryOfFourServers(p)).toEqual([false, false, false, false]);
        expect(p.logs.filter((l) => l.msg === refused).length).toBeGreaterThan(0);
      });
    },
  );

  it("keeps trying the other host while logins run side by side and the standby refuses twice in a row", async () => {
    // 16 logins at once, round-robin: the standby's refusals come back between the primary's logins
    await withPooler("host=127.0.0.2,127.0.0.1 target_session_attrs=read-write pool_size=16", async (p) => {
      expect(await recoveryOfFourServers(p, 16)).toEqual(Array<boolean>(16).fill(false));
      expect(p.logs.filter((l) => l.msg === "server login failed")).toEqual([]);
    });
  });

  it.each(["standby", "read-only", "prefer-standby"])("%s: only the standby", async (attrs) => {
    await withPooler(`host=127.0.0.1,127.0.0.2 target_session_attrs=${attrs}`, async (p) => {
      expect(await recoveryOfFourServers(p)).toEqual([true, true, true, true]);
    });
  });

  it("primary with load_balance_hosts=disable moves off the standby once and stays", async () => {
    await withPooler(
      "host=127.0.0.2,127.0.0.1 load_balance_hosts=disable target_session_attrs=primary",
      async (p) => {
        expect(await recoveryOfFourServers(p)).toEqual([false, false, false, false]);
        expect(p.logs.filter((l) => l.msg === refused).length).toBe(1);
      },
    );
  });

  it("prefer-standby takes a primary when no host is a standby", async () => {
    await withPooler("host=127.0.0.1,localhost target_session_attrs=prefer-standby", async (p) => {
      expect(await recoveryOfFourServers(p)).toEqual([false, false, false, false]);
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
      expect(await recoveryOfFourServers(p)).toEqual([false, false, false, false]);
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
