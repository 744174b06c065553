// target_session_attrs while things change: a RELOAD that sets it, and the host that matches going
// down for a restart while the other one refuses. A PostgreSQL 13 hot standby of its own on
// 127.0.0.3 (target-session.test.ts has 127.0.0.2), on the shared server's port number.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { connect, errorOf } from "../support/clients.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.ts";
import { waitFor } from "../support/wait.ts";

let standby: PrivatePostgres;
const dirs: string[] = [];

beforeAll(async () => {
  standby = await startPrivatePostgres({
    appDatabase: true,
    port: inject("pgPort"),
    settings: { listen_addresses: "127.0.0.3" },
    standby: true,
  });
}, 120_000);

afterAll(async () => {
  await standby?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** The pooler and the ini file it reads, which a test may rewrite before a RELOAD. */
async function poolerFor(entry: string): Promise<{ p: TestPooler; rewrite: (entry: string) => void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-tsa-reload-"));
  dirs.push(dir);
  const ini = path.join(dir, "pgbouncer.ini");
  const auth = path.join(dir, "userlist.txt");
  fs.writeFileSync(auth, '"postgres" "postgres"\n');
  const rewrite = (e: string): void =>
    fs.writeFileSync(ini, `[databases]\napp = ${e} port=${inject("pgPort")} dbname=app\n[pgbouncer]\n`);
  rewrite(entry);
  const p = await startTestPooler(
    { DATABASE_URL: "", AUTH_FILE: auth, DEFAULT_POOL_SIZE: "4", ADMIN_USERS: "postgres" },
    ini,
  );
  return { p, rewrite };
}

/** Clients in a transaction at once (a server each): whether each server is in recovery. */
async function recoveryOfServers(p: TestPooler, n = 4): Promise<boolean[]> {
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

describe("target_session_attrs", () => {
  it("set by a RELOAD, replaces the servers that do not match", async () => {
    const { p, rewrite } = await poolerFor("host=127.0.0.3,127.0.0.1");
    let admin: pg.Client | undefined;
    try {
      expect((await recoveryOfServers(p)).sort()).toEqual([false, false, true, true]);
      rewrite("host=127.0.0.3,127.0.0.1 target_session_attrs=read-write");
      admin = await connect(p.url("pgbouncer"));
      await admin.query("RELOAD");
      expect(await recoveryOfServers(p)).toEqual([false, false, false, false]);
    } finally {
      await admin?.end();
      await p.stop();
    }
  });
  it("lets clients wait while the only host that matches restarts, the other one refusing", async () => {
    const { p } = await poolerFor("host=127.0.0.1,127.0.0.3 target_session_attrs=standby");
    try {
      expect(await recoveryOfServers(p, 1)).toEqual([true]);
      const restart = standby.restart("fast", 500);
      // the standby is down now: logins to it are refused, the primary refused for not being one
      await new Promise((r) => setTimeout(r, 200));
      expect(await recoveryOfServers(p, 2)).toEqual([true, true]);
      await restart;
      expect(p.logs.filter((l) => String(l.err).startsWith("no host matches"))).toEqual([]);
    } finally {
      await p.stop();
    }
  }, 30_000);

  // last: it promotes the standby for good
  it("replaces a host's servers once the host refuses a new one: a standby since promoted", async () => {
    const { p } = await poolerFor(
      "host=127.0.0.3,127.0.0.1 load_balance_hosts=disable target_session_attrs=standby",
    );
    try {
      expect(await recoveryOfServers(p, 2)).toEqual([true, true]);
      const direct = await connect(standby.url("app"));
      await direct.query("SELECT pg_promote(true)");
      await direct.end();
      // two transactions hold the idle servers, which passed the check before the promotion; a
      // third client needs a new server, which the promoted host refuses, as the primary
      const [c1, c2] = await Promise.all([connect(p.url()), connect(p.url())]);
      await Promise.all([c1.query("BEGIN"), c2.query("BEGIN")]);
      const third = connect(p.url()).then(async (c) => {
        try {
          return await c.query("SELECT pg_is_in_recovery() AS r");
        } finally {
          await c.end();
        }
      });
      await waitFor(
        () => p.logs.some((l) => String(l.err).startsWith("no host matches")),
        "both hosts refusing",
      );
      await Promise.all([c1.query("COMMIT"), c2.query("COMMIT")]);
      await Promise.all([c1.end(), c2.end()]);
      // the servers on the promoted host close as they come free, rather than serving the third
      expect((await errorOf(third)).message).toMatch(/no host matches/);
      // and the servers on the promoted host are gone, not handed to the next client
      const err = await errorOf(recoveryOfServers(p, 1));
      expect(err.message).toMatch(
        /no host matches: server is a read-write primary, target_session_attrs=standby/,
      );
    } finally {
      await p.stop();
    }
  }, 30_000);
});
