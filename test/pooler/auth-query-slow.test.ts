// An auth_query that does not answer (a lock it waits for, a slow catalog): the client that waits
// for it is ended at client_login_timeout, or leaves; PostgreSQL must not go on running the lookup
// for it (PostgreSQL 13 notices a closed socket only when it next writes), one backend per login
// attempt, for as long as the query takes.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startupMessage } from "../../pooler/protocol/messages.ts";
import { connect, errorOf } from "../support/clients.ts";
import { hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { withTestPooler } from "../support/pooler.ts";
import { UserlistDir, createLoginRole, dropRole } from "../support/roles.ts";
import { waitFor } from "../support/wait.ts";
import { WireProbe } from "../support/wire-probe.ts";

let userlists: UserlistDir;
let direct: pg.Client;
beforeAll(async () => {
  userlists = new UserlistDir();
  direct = await connect(inject("pgAdminUrl"));
  await createLoginRole(inject("pgAdminUrl"), ROLE, "pw", "md5");
});
afterAll(async () => {
  await direct.end();
  await dropRole(inject("pgAdminUrl"), ROLE);
  userlists.remove();
});

/** A role the auth file does not have: it exists, else pg_sleep is never reached. */
const ROLE = "pooler_aq_slow_user";
const MARKER = `aq_sleep_${process.pid}`;
const AUTH_QUERY = `SELECT usename, passwd FROM pg_shadow WHERE usename=$1 AND pg_sleep(60) IS NOT NULL AND '${MARKER}' <> ''`;
/** The backends that ran the lookup: idle once it ended, as a pooled server of auth_user's. */
const BACKENDS = `SELECT pid FROM pg_stat_activity WHERE query LIKE '%${MARKER}%' AND pid <> pg_backend_pid()`;
const RUNNING = `${BACKENDS} AND state = 'active'`;

const lookups = async (): Promise<number> => (await direct.query(RUNNING)).rowCount ?? 0;

/**
 * Starts a lookup for ROLE, and once its client is gone (`leave`), how many backends still run it
 * after up to 3 s; none are left behind for the next test.
 */
async function lookupsLeftBehind(port: number, leave: "timeout" | "client leaves"): Promise<number> {
  try {
    if (leave === "timeout") {
      const pending = errorOf(connect(`postgresql://${ROLE}:pw@127.0.0.1:${port}/app`));
      await waitFor(async () => (await lookups()) === 1, "the auth_query to run");
      expect((await pending).message).toBe("client_login_timeout");
    } else {
      const probe = await WireProbe.open(port);
      probe.send(startupMessage({ user: ROLE, database: "app" }));
      await waitFor(async () => (await lookups()) === 1, "the auth_query to run");
      probe.destroy();
    }
    await waitFor(async () => (await lookups()) === 0, "the abandoned auth_query to end", 3000).catch(
      () => undefined,
    );
    return await lookups();
  } finally {
    await direct.query(`SELECT pg_terminate_backend(pid) FROM (${RUNNING}) b`);
    await waitFor(async () => (await lookups()) === 0, "the lookups to be terminated");
  }
}

describe.each(["timeout", "client leaves"] as const)("an auth_query that does not answer: %s", (leave) => {
  it("ours ends the lookup on PostgreSQL once its client is gone", () =>
    withTestPooler(
      {
        AUTH_FILE: userlists.write([["postgres", "postgres"]]),
        AUTH_USER: "postgres",
        AUTH_QUERY,
        CLIENT_LOGIN_TIMEOUT: "1",
      },
      async (p) => expect(await lookupsLeftBehind(p.port, leave)).toBe(0),
    ));

  // measured: PgBouncer 1.18 runs the lookup on a server of auth_user's pool and sends no cancel,
  // so PostgreSQL 13 runs the query on for its client's sake; ours does better here
  it.skipIf(!hasPgBouncer())("PgBouncer 1.18 leaves the lookup running", async () => {
    const b = await startPgBouncer(
      { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
      { auth_user: "postgres", auth_query: AUTH_QUERY, client_login_timeout: 1 },
    );
    try {
      expect(await lookupsLeftBehind(b.port, leave)).toBe(1);
    } finally {
      await b.stop();
    }
  });
});

it("a lookup abandoned mid-query leaves its server clean: the next lookup reuses it once the cancel landed", () =>
  // Released at once, the server would still run the canceled query: the next lookup on it failed
  // ("internal query already running"); before lookups were pooled, each had a server of its own.
  withTestPooler(
    { AUTH_FILE: userlists.write([["postgres", "postgres"]]), AUTH_USER: "postgres", AUTH_QUERY },
    async (p) => {
      const probe = await WireProbe.open(p.port);
      probe.send(startupMessage({ user: ROLE, database: "app" }));
      await waitFor(async () => (await lookups()) === 1, "the auth_query to run");
      const [ran] = (await direct.query(BACKENDS)).rows as { pid: number }[];
      probe.destroy();
      // a user PostgreSQL does not know: its lookup finds no row without sleeping
      const err = await errorOf(connect(`postgresql://no_such_user:pw@127.0.0.1:${p.port}/app`));
      expect([err.code, err.message]).toEqual([
        "28P01",
        'password authentication failed for user "no_such_user"',
      ]);
      expect((await direct.query(BACKENDS)).rows).toEqual([ran]);
      expect(await lookups()).toBe(0);
    },
  ));
