// target_session_attrs while things change: a RELOAD that sets it, and the host that matches going
// down for a restart while the other one refuses. A PostgreSQL 13 hot standby of its own on
// 127.0.0.3 (target-session.test.ts has 127.0.0.2), on the shared server's port number.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, errorOf } from "../support/clients.ts";
import type { PrivatePostgres } from "../support/private-postgres.ts";
import { poolerForEntry, recoveryOfServers, startStandby } from "../support/standby.ts";
import { waitFor } from "../support/wait.ts";

let standby: PrivatePostgres;

beforeAll(async () => {
  standby = await startStandby("127.0.0.3");
}, 120_000);

afterAll(() => standby?.stop());

describe("target_session_attrs", () => {
  it("set by a RELOAD, replaces the servers that do not match", async () => {
    const { p, rewrite, stop } = await poolerForEntry("host=127.0.0.3,127.0.0.1");
    let admin: pg.Client | undefined;
    try {
      expect((await recoveryOfServers(p)).sort()).toEqual([false, false, true, true]);
      rewrite("host=127.0.0.3,127.0.0.1 target_session_attrs=read-write");
      admin = await connect(p.url("pgbouncer"));
      await admin.query("RELOAD");
      expect(await recoveryOfServers(p)).toEqual([false, false, false, false]);
    } finally {
      await admin?.end();
      await stop();
    }
  });
  it("lets clients wait while the only host that matches restarts, the other one refusing", async () => {
    const { p, stop } = await poolerForEntry("host=127.0.0.1,127.0.0.3 target_session_attrs=standby");
    try {
      expect(await recoveryOfServers(p, 1)).toEqual([true]);
      const restart = standby.restart("fast", 500);
      // the standby is down now: logins to it are refused, the primary refused for not being one
      await new Promise((r) => setTimeout(r, 200));
      expect(await recoveryOfServers(p, 2)).toEqual([true, true]);
      await restart;
      expect(p.logs.filter((l) => String(l.err).startsWith("no host matches"))).toEqual([]);
    } finally {
      await stop();
    }
  }, 30_000);

  // last: it promotes the standby for good
  it("replaces a host's servers once the host refuses a new one: a standby since promoted", async () => {
    const { p, stop } = await poolerForEntry(
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
      // its outcome taken at once: it may be refused before the others commit
      const third = errorOf(
        connect(p.url()).then(async (c) => {
          try {
            return await c.query("SELECT pg_is_in_recovery() AS r");
          } finally {
            await c.end();
          }
        }),
      );
      await waitFor(
        () => p.logs.some((l) => String(l.err).startsWith("no host matches")),
        "both hosts refusing",
      );
      await Promise.all([c1.query("COMMIT"), c2.query("COMMIT")]);
      await Promise.all([c1.end(), c2.end()]);
      // the servers on the promoted host close as they come free, rather than serving the third
      expect((await third).message).toMatch(/no host matches/);
      // and the servers on the promoted host are gone, not handed to the next client
      const err = await errorOf(recoveryOfServers(p, 1));
      expect(err.message).toMatch(
        /no host matches: server is a read-write primary, target_session_attrs=standby/,
      );
    } finally {
      await stop();
    }
  }, 30_000);
});
