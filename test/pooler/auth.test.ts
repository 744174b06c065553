// Authentication on both sides: clients against the userlist (md5, scram-sha-256, plain, trust),
// auth_query for users not in the file, and the pooler logging in to PostgreSQL with md5 or SCRAM.
import fs from "node:fs";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { md5Response, md5Secret } from "../../pooler/protocol/auth/md5.ts";
import {
  SASL_MECHANISM,
  ScramClientSession,
  formatScramSecret,
  scramSecretFromPassword,
} from "../../pooler/protocol/auth/scram.ts";
import {
  Auth,
  authRequest,
  parseErrorFields,
  passwordMessage,
  saslInitialResponse,
  saslResponse,
  startupMessage,
} from "../../pooler/protocol/messages.ts";
import { connect, errorOf, psql, rawExchange, whoAmI } from "../support/clients.ts";
import { startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";
import { startFakePostgres } from "../support/fake-postgres.ts";
import { startPrivatePostgres } from "../support/private-postgres.ts";
import { hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { errorOfReply, RawClient, startupOfBytes, withHeader } from "../support/protocol.ts";
import { UserlistDir, createLoginRole, dropRole, slowScramSecret } from "../support/roles.ts";
import { openings, relay } from "../support/relay.ts";
import { WireProbe } from "../support/wire-probe.ts";

const SCRAM_ROLE = "pooler_scram_user";
const MD5_ROLE = "pooler_md5_user";
const PASSWORD = "s3cret-pw";
const EMPTY_PASSWORD_USER = "pooler_empty_pw_user";
const EMPTY_MD5_USER = "pooler_empty_md5_user";

let userlists: UserlistDir;
/** The role's secret as PostgreSQL stores it: SCRAM pass-through needs exactly this one. */
let storedScramSecret = "";

beforeAll(async () => {
  storedScramSecret = await createLoginRole(inject("pgAppUrl"), SCRAM_ROLE, PASSWORD, "scram-sha-256");
  await createLoginRole(inject("pgAppUrl"), MD5_ROLE, PASSWORD, "md5");
  userlists = new UserlistDir();
});

afterAll(async () => {
  await dropRole(inject("pgAppUrl"), SCRAM_ROLE);
  await dropRole(inject("pgAppUrl"), MD5_ROLE);
  userlists.remove();
});

function userlist(lines: [string, string][]): string {
  return userlists.write(lines);
}

describe.each([
  ["md5", "plain secret", () => PASSWORD],
  ["md5", "md5 secret", () => md5Secret(SCRAM_ROLE, PASSWORD)],
  ["scram-sha-256", "plain secret", () => PASSWORD],
  ["scram-sha-256", "SCRAM secret (copied from pg_authid)", () => storedScramSecret],
  ["plain", "plain secret", () => PASSWORD],
])("AUTH_TYPE=%s with a %s in the userlist", (authType, _kind, secret) => {
  let p: TestPooler;
  beforeAll(async () => {
    const file = userlist([
      [SCRAM_ROLE, secret()],
      [MD5_ROLE, PASSWORD],
      // the edoburu image writes such lines (ADMIN_PASSWORDS under AUTH_TYPE=plain)
      [EMPTY_PASSWORD_USER, ""],
      [EMPTY_MD5_USER, md5Secret(EMPTY_MD5_USER, "")],
    ]);
    p = await startTestPooler({
      AUTH_TYPE: authType,
      AUTH_FILE: file,
      ADMIN_USERS: `${EMPTY_PASSWORD_USER},${EMPTY_MD5_USER}`,
    });
  });
  afterAll(() => p.stop());

  it("lets the right password in and logs in to PostgreSQL (SCRAM or md5 as the role needs)", async () => {
    // the SCRAM role makes PostgreSQL ask the pooler for SCRAM, the md5 role for md5
    const canReachScramServer = !(authType === "md5" && _kind === "md5 secret");
    if (canReachScramServer) expect(await whoAmI(p.urlAs(SCRAM_ROLE, PASSWORD))).toBe(SCRAM_ROLE);
    expect(await whoAmI(p.urlAs(MD5_ROLE, PASSWORD))).toBe(MD5_ROLE);
  });

  it("refuses a wrong password with 28P01 and an unknown user the same way", async () => {
    const wrong = await errorOf(connect(p.urlAs(MD5_ROLE, "nope")));
    expect(wrong.code).toBe("28P01");
    const unknown = await errorOf(connect(p.urlAs("nobody_here", "nope")));
    expect(unknown.code).toBe("28P01");
    expect(unknown.message).toBe('password authentication failed for user "nobody_here"');
  });

  it("never lets an empty password in, not even for a userlist entry whose password is empty", async () => {
    // as PostgreSQL and PgBouncer 1.18 (plain, md5): no libpq client sends one, a raw client can.
    // Into the console, where no server login could be what fails.
    for (const user of [EMPTY_PASSWORD_USER, EMPTY_MD5_USER]) {
      await expect(RawClient.connect(p.urlAs(user, "", "pgbouncer"))).rejects.toThrow(
        /login failed: password authentication failed/,
      );
    }
  });
});

describe("SCRAM to the server needs the password or the client's SCRAM keys", () => {
  it("a SCRAM secret with another salt than the server's cannot be passed through", async () => {
    await withTestPooler(
      {
        AUTH_TYPE: "scram-sha-256",
        AUTH_FILE: userlist([[SCRAM_ROLE, formatScramSecret(await scramSecretFromPassword(PASSWORD))]]),
      },
      async (p) => {
        const err = await errorOf(connect(p.urlAs(SCRAM_ROLE, PASSWORD)));
        expect(err.code).toBe("28P01");
        expect(err.message).toMatch(/server login failed/);
      },
    );
  });

  it("an md5-only userlist entry cannot log in to a SCRAM role: the client is told why", async () => {
    await withTestPooler(
      {
        AUTH_TYPE: "md5",
        AUTH_FILE: userlist([[SCRAM_ROLE, md5Secret(SCRAM_ROLE, PASSWORD)]]),
      },
      async (p) => {
        const err = await errorOf(connect(p.urlAs(SCRAM_ROLE, PASSWORD)));
        expect(err.message).toMatch(/SCRAM/);
      },
    );
  });
});

describe("a malformed SASLInitialResponse", () => {
  it("whose length field overstates its data is refused (08P01) and the connection closed", () =>
    withTestPooler(
      { AUTH_TYPE: "scram-sha-256", AUTH_FILE: userlist([[SCRAM_ROLE, PASSWORD]]) },
      async (p) => {
        const probe = await WireProbe.open(p.port);
        try {
          probe.send(startupMessage({ user: SCRAM_ROLE, database: "app" }));
          await probe.waitUntil((m) => m.length > 0, 5000);
          const msg = saslInitialResponse(SASL_MECHANISM, "n,,n=,r=abcdefgh");
          msg.writeInt32BE(1000, 5 + SASL_MECHANISM.length + 1); // the data's length
          probe.send(msg);
          const [, reply] = await probe.waitUntil((m) => m.length > 1, 5000);
          expect(reply?.type).toBe("E");
          expect(errorOfReply(reply!).get("C")).toBe("08P01");
          expect(await probe.waitClosed(3000)).toBe(true);
        } finally {
          probe.destroy();
        }
      },
    ));
});

it("a cleartext password that is not UTF-8 matches no secret: its bad bytes do not read as U+FFFD", () =>
  // PostgreSQL and PgBouncer compare the bytes: "s3cret-pw\xe9" is not "s3cret-pw\ufffd"
  withTestPooler(
    { AUTH_TYPE: "plain", AUTH_FILE: userlist([[SCRAM_ROLE, `${PASSWORD}\ufffd`]]) },
    async (p) => {
      const probe = await WireProbe.open(p.port);
      try {
        probe.send(startupMessage({ user: SCRAM_ROLE, database: "app" }));
        await probe.waitUntil((m) => m.length > 0, 5000);
        probe.send(withHeader({ type: "p", body: Buffer.from(`${PASSWORD}\xe9\0`, "latin1") }));
        const [, reply] = await probe.waitUntil((m) => m.length > 1, 5000);
        expect(reply && [...errorOfReply(reply)].filter(([k]) => k === "C" || k === "M")).toEqual([
          ["C", "28P01"],
          ["M", `password authentication failed for user "${SCRAM_ROLE}"`],
        ]);
      } finally {
        probe.destroy();
      }
    },
  ));

it("a user name that is not UTF-8 is no auth-file user: its bad bytes do not read as U+FFFD", () =>
  // PostgreSQL and PgBouncer compare the bytes: "postgres\xe9" is neither "postgres\ufffd" nor "postgres\xe8"
  withTestPooler({ AUTH_TYPE: "trust", AUTH_FILE: userlist([["postgres\ufffd", "pw"]]) }, async (p) => {
    const reply = await rawExchange(p.port, startupOfBytes({ user: "postgres\xe9", database: "app" }));
    expect(reply[0]).toBe(0x45); // ErrorResponse
    const error = parseErrorFields(reply.subarray(0, 1 + reply.readInt32BE(1)));
    // PgBouncer 1.18's words for a user it does not know
    expect([error.get("C"), error.get("M")]).toEqual(["28000", '"trust" authentication failed']);
  }));

it("a database name that is not UTF-8 is no database: its bad bytes do not read as U+FFFD", async () => {
  // Decoded, lossy\xe9 (and lossy\xe8) read as lossy\ufffd: "*" made that up and the client was let
  // into PostgreSQL's database of that name. PgBouncer passes the bytes on, and PostgreSQL, which
  // compares bytes, knows no such database: 3D000 either way.
  const lossy = "pooler_lossy_\ufffd";
  const admin = await connect(inject("pgAdminUrl"));
  await admin.query(`CREATE DATABASE "${lossy}"`);
  const server = new URL(inject("pgAppUrl"));
  server.pathname = "";
  try {
    await withTestPooler({ AUTH_TYPE: "trust", DATABASE_URL: server.toString() }, async (p) => {
      const reply = await rawExchange(
        p.port,
        startupOfBytes({ user: "postgres", database: "pooler_lossy_\xe9" }),
      );
      expect(reply[0]).toBe(0x45); // ErrorResponse, not AuthenticationOk
      const error = parseErrorFields(reply.subarray(0, 1 + reply.readInt32BE(1)));
      expect(error.get("C")).toBe("3D000");
    });
  } finally {
    await admin.query(`DROP DATABASE "${lossy}" WITH (FORCE)`);
    await admin.end();
  }
});

describe("a server that does not prove it holds the password is refused (SCRAM's server signature)", () => {
  it.each([
    [
      "a forged signature",
      authRequest(Auth.SASLFinal, Buffer.from(`v=${Buffer.alloc(32).toString("base64")}`)),
    ],
    ["AuthenticationOk without any AuthenticationSASLFinal", Buffer.alloc(0)],
  ])("%s", async (_label, scramEnd) => {
    const fake = await startFakePostgres({ params: { server_version: "13.0" }, scramEnd });
    try {
      await withTestPooler(
        { DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${fake.port}/app` },
        async (p) => {
          const err = await errorOf(connect(p.url()));
          expect(err.message).toMatch(/^server login failed: .*server/);
          expect(fake.logins()).toBe(1); // the exchange did reach its end
        },
      );
    } finally {
      fake.close();
    }
  });
});

describe("auth_query", () => {
  it("looks up users missing from the file through AUTH_USER", async () => {
    await withTestPooler(
      {
        AUTH_TYPE: "scram-sha-256",
        AUTH_FILE: userlist([["postgres", "postgres"]]),
        AUTH_USER: "postgres",
      },
      async (p) => {
        expect(await whoAmI(p.urlAs(SCRAM_ROLE, PASSWORD))).toBe(SCRAM_ROLE);
        const err = await errorOf(connect(p.urlAs(SCRAM_ROLE, "wrong")));
        expect(err.code).toBe("28P01");
      },
    );
  });

  it("uses a database entry's own auth_user and auth_dbname, the [databases] entry the lookup runs in (pgbouncer.ini)", async () => {
    const server = new URL(inject("pgAppUrl"));
    const ini = path.join(path.dirname(userlist([])), "auth-user.ini");
    const at = `host=${server.hostname} port=${server.port}`;
    fs.writeFileSync(
      ini,
      [
        "[databases]",
        // as PgBouncer (1.19, which added auth_dbname): an entry's name, its dbname the one asked
        `lookups = ${at} dbname=postgres`,
        `viaini = ${at} dbname=app auth_user=postgres auth_dbname=lookups`,
        // a PostgreSQL database that is no entry
        `lookup_elsewhere = ${at} dbname=app auth_user=postgres auth_dbname=postgres`,
        "[pgbouncer]",
      ].join("\n"),
    );
    const p = await startTestPooler(
      { AUTH_TYPE: "scram-sha-256", AUTH_FILE: userlist([["postgres", "postgres"]]) },
      ini,
    );
    try {
      expect(await whoAmI(p.urlAs(SCRAM_ROLE, PASSWORD, "viaini"))).toBe(SCRAM_ROLE);
      expect((await errorOf(connect(p.urlAs(SCRAM_ROLE, "wrong", "viaini")))).code).toBe("28P01");
      // auth_dbname is where the lookup runs: a name that is no entry fails it
      expect((await errorOf(connect(p.urlAs(SCRAM_ROLE, PASSWORD, "lookup_elsewhere")))).message).toBe(
        "authentication lookup failed",
      );
      const why = p.logs.filter((l) => l.msg === "auth_query failed").map((l) => l.err);
      expect(why).toEqual(['auth_dbname "postgres" is not a [databases] entry']);
    } finally {
      await p.stop();
    }
  });

  it("logs auth_user in with the md5 hash the auth file holds, and binds the user name as a parameter", async () => {
    // a superuser: the default auth_query reads pg_authid
    const authRole = "pooler_md5_auth_user";
    await createLoginRole(inject("pgAppUrl"), authRole, PASSWORD, "md5");
    const admin = await connect(inject("pgAppUrl"));
    await admin.query(`ALTER ROLE ${authRole} SUPERUSER`);
    await admin.end();
    const p = await startTestPooler({
      AUTH_TYPE: "md5",
      AUTH_FILE: userlist([[authRole, md5Secret(authRole, PASSWORD)]]),
      AUTH_USER: authRole,
    });
    try {
      expect(await whoAmI(p.urlAs(MD5_ROLE, PASSWORD))).toBe(MD5_ROLE);
      expect((await errorOf(connect(p.urlAs(MD5_ROLE, "wrong")))).code).toBe("28P01");
      // pasted into the SQL, the quote would break the lookup (08006) instead of finding no one
      expect((await errorOf(connect(p.urlAs("no'such", PASSWORD)))).code).toBe("28P01");
    } finally {
      await p.stop();
      await dropRole(inject("pgAppUrl"), authRole);
    }
  });

  /**
   * Runs `fn` on a pooler whose "burst" entry looks users up as `authUser` (postgres), with
   * `authPassword` from the auth file, in the "lookups" entry: through a relay whose `opened` lists
   * the lookups' logins, holding PostgreSQL's first answer `holdMs`.
   */
  async function withRelayedLookups(
    authPassword: string,
    fn: (p: TestPooler, opened: string[], proxy: net.Server) => Promise<void>,
    {
      holdMs = 0,
      env = {},
      authUser = "postgres",
    }: { holdMs?: number; env?: Record<string, string>; authUser?: string } = {},
  ): Promise<void> {
    const to = new URL(inject("pgAppUrl"));
    const at = { host: "127.0.0.1", port: 0 };
    const proxy = await relay(at, { host: to.hostname, port: Number(to.port) }, holdMs);
    const { port } = proxy.address() as net.AddressInfo;
    const ini = path.join(path.dirname(userlist([])), "relayed-lookups.ini");
    fs.writeFileSync(
      ini,
      [
        "[databases]",
        `lookups = host=127.0.0.1 port=${port} dbname=app`,
        `burst = host=${to.hostname} port=${to.port} dbname=app auth_user=${authUser} auth_dbname=lookups`,
        "[pgbouncer]",
      ].join("\n"),
    );
    const p = await startTestPooler({ AUTH_FILE: userlist([[authUser, authPassword]]), ...env }, ini);
    try {
      await fn(p, openings(proxy), proxy);
    } finally {
      await p.stop();
      proxy.close();
    }
  }

  const connectionsOf = (proxy: net.Server): Promise<number> =>
    new Promise((resolve, reject) => proxy.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  const burst = (p: TestPooler, password: string): Promise<PromiseSettledResult<string>[]> =>
    Promise.allSettled(Array.from({ length: 8 }, () => whoAmI(p.urlAs(MD5_ROLE, password, "burst"))));

  it("an auth_user whose password is wrong fails one login a server_login_retry, not one per client", () =>
    // PgBouncer 1.18, side by side (a relay counting logins): 4 clients at once, 1 login as
    // auth_user; its first client waited, the others heard "server login has been failing, try
    // again later (server_login_retry)". Ours refuses them all, each a failed lookup.
    withRelayedLookups("wrong", async (p, opened) => {
      const failed = await burst(p, PASSWORD);
      failed.push(...(await burst(p, PASSWORD)));
      for (const r of failed) {
        const err = (r as PromiseRejectedResult).reason as Error & { code?: string };
        expect([err.code, err.message]).toEqual(["08006", "authentication lookup failed"]);
      }
      expect(opened).toHaveLength(1); // logins at PostgreSQL
    }));

  const lookupPool = async (p: TestPooler): Promise<Record<string, unknown> | undefined> => {
    const admin = await connect(p.url("pgbouncer"));
    try {
      return (await admin.query("SHOW POOLS")).rows.find((r) => r.database === "lookups");
    } finally {
      await admin.end();
    }
  };

  it("lookups reuse auth_user's servers, kept open in its pool of the database, as PgBouncer's", () =>
    // PgBouncer 1.18 side by side (pgbench -C -S, 10 clients, 10 s): 12 backends forked, its pool of
    // (database, auth_user) in SHOW POOLS, sv_idle 14 after a burst of 200. Ours opened a connection
    // for every lookup and closed it after: 9 logins for these 9 clients, none left open.
    withRelayedLookups(
      "postgres",
      async (p, opened, proxy) => {
        expect(await whoAmI(p.urlAs(MD5_ROLE, PASSWORD, "burst"))).toBe(MD5_ROLE);
        expect(opened).toHaveLength(1);
        const logins = await burst(p, PASSWORD);
        expect(logins.map((r) => (r as PromiseFulfilledResult<string>).value)).toEqual(
          Array(8).fill(MD5_ROLE),
        );
        expect(opened.length).toBeLessThan(9);
        // none closed: each one's lookups done, idle in the pool
        expect(await connectionsOf(proxy)).toBe(opened.length);
        expect(await lookupPool(p)).toMatchObject({ user: "postgres", sv_idle: opened.length, sv_login: 0 });
      },
      { env: { ADMIN_USERS: "postgres" } },
    ));

  it("auth_user's idle servers close at server_idle_timeout, as other servers", () =>
    withRelayedLookups(
      "postgres",
      async (p, opened, proxy) => {
        expect(await whoAmI(p.urlAs(MD5_ROLE, PASSWORD, "burst"))).toBe(MD5_ROLE);
        expect(await connectionsOf(proxy)).toBe(1);
        await vi.waitFor(async () => expect(await connectionsOf(proxy)).toBe(0), { timeout: 5000 });
        expect(opened).toHaveLength(1);
        // the next lookup logs in again
        expect(await whoAmI(p.urlAs(MD5_ROLE, PASSWORD, "burst"))).toBe(MD5_ROLE);
        expect(opened).toHaveLength(2);
      },
      { env: { SERVER_IDLE_TIMEOUT: "1" } },
    ));

  it("auth_user's password changed while a lookup runs: the lookups behind it cost one failed login and get in on its server", async () => {
    // PgBouncer 1.18 side by side (a 0.5 s auth_query, ALTER ROLE while the first runs, 8 clients):
    // 1 failed login as auth_user (the one server it opened beside the busy one), and the 8 clients
    // in, one after the other on the server still logged in. Ours did so too once its lookups ran
    // on auth_user's pool; before, each on a connection of its own, the 8 were refused after one
    // failed login. (A RELOADed auth file with auth_user's line changed: 1 failed login either way.)
    const authRole = "pooler_changed_auth_user";
    const marker = `aq_changed_${process.pid}`;
    await createLoginRole(inject("pgAppUrl"), authRole, "auth-pw", "md5");
    const admin = await connect(inject("pgAppUrl"));
    try {
      await admin.query(`ALTER ROLE ${authRole} SUPERUSER`); // the auth_query reads pg_shadow
      const env = {
        AUTH_QUERY: `SELECT usename, passwd FROM pg_shadow WHERE usename=$1 AND pg_sleep(0.5) IS NOT NULL AND '${marker}' <> ''`,
      };
      await withRelayedLookups(
        "auth-pw",
        async (p, opened) => {
          const first = whoAmI(p.urlAs(MD5_ROLE, PASSWORD, "burst"));
          const running = `SELECT FROM pg_stat_activity WHERE query LIKE '%${marker}%' AND pid <> pg_backend_pid()`;
          await vi.waitFor(async () => expect((await admin.query(running)).rowCount).toBe(1));
          await admin.query(`ALTER ROLE ${authRole} PASSWORD 'changed-pw'`);
          const logins = await burst(p, PASSWORD);
          expect(logins.map((r) => (r as PromiseFulfilledResult<string>).value)).toEqual(
            Array(8).fill(MD5_ROLE),
          );
          expect(await first).toBe(MD5_ROLE);
          expect(opened).toHaveLength(2); // logins at PostgreSQL: the first's, and one that failed
        },
        { authUser: authRole, env },
      );
    } finally {
      await admin.end();
      await dropRole(inject("pgAppUrl"), authRole);
    }
  });

  it("lookups waiting for another's login are still ended at client_login_timeout", () =>
    withRelayedLookups(
      "postgres",
      async (p, opened) => {
        const started = Date.now();
        for (const r of await burst(p, PASSWORD)) {
          expect(((r as PromiseRejectedResult).reason as Error).message).toBe("client_login_timeout");
        }
        expect(Date.now() - started).toBeLessThan(2000);
        expect(opened).toHaveLength(1);
      },
      { holdMs: 3000, env: { CLIENT_LOGIN_TIMEOUT: "0.5" } },
    ));

  it("asks at every login: a changed password takes effect at once", async () => {
    const role = "pooler_auth_query_user";
    const admin = await connect(inject("pgAppUrl"));
    const p = await startTestPooler({
      AUTH_TYPE: "scram-sha-256",
      AUTH_FILE: userlist([["postgres", "postgres"]]),
      AUTH_USER: "postgres",
    });
    try {
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.query("SET password_encryption = 'scram-sha-256'");
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'first-pw'`);
      expect(await whoAmI(p.urlAs(role, "first-pw"))).toBe(role);
      await admin.query(`ALTER ROLE ${role} PASSWORD 'second-pw'`);
      expect((await errorOf(connect(p.urlAs(role, "first-pw")))).code).toBe("28P01");
      expect(await whoAmI(p.urlAs(role, "second-pw"))).toBe(role);
    } finally {
      await p.stop();
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });
});

describe("a password changed in PostgreSQL, then in the pooler", () => {
  // The pool's servers log in with what the last client's login proved: a pool that kept the
  // password it was created with failed every new server after the change, until it was dropped.
  it.each([
    ["the auth file, rewritten and RELOADed", false],
    ["auth_query (an md5 role)", true],
  ])(
    "through %s: existing servers keep working, new ones log in with the new password",
    async (_how, viaQuery) => {
      const role = "pooler_changed_pw_user";
      await createLoginRole(inject("pgAppUrl"), role, "first-pw", "md5");
      const file = userlist([
        ["postgres", "postgres"],
        ...(viaQuery ? [] : [[role, "first-pw"] as [string, string]]),
      ]);
      const p = await startTestPooler({
        AUTH_TYPE: "md5",
        AUTH_FILE: file,
        ADMIN_USERS: "postgres",
        QUERY_WAIT_TIMEOUT: "3",
        ...(viaQuery ? { AUTH_USER: "postgres" } : {}),
      });
      const holder = await connect(p.urlAs(role, "first-pw"));
      try {
        await holder.query("BEGIN");
        const admin = await connect(inject("pgAppUrl"));
        await admin.query(`ALTER ROLE ${role} PASSWORD 'second-pw'`);
        await admin.end();
        if (!viaQuery) {
          fs.writeFileSync(file, `"postgres" "postgres"\n"${role}" "second-pw"\n`);
          const console = await connect(p.url("pgbouncer"));
          await console.query("RELOAD");
          await console.end();
        }
        // the holder keeps the pool's only server: this one needs a new one
        expect(await whoAmI(p.urlAs(role, "second-pw"))).toBe(role);
        await holder.query("COMMIT");
      } finally {
        await holder.end();
        await p.stop();
        await dropRole(inject("pgAppUrl"), role);
      }
    },
  );
});

describe("AUTH_TYPE=trust", () => {
  it("lets psql in without a password", async () => {
    const p = await startTestPooler({ AUTH_TYPE: "trust" });
    try {
      const { stdout } = await psql(`postgresql://postgres@127.0.0.1:${p.port}/app`, "SELECT current_user");
      expect(stdout.trim()).toBe("postgres");
    } finally {
      await p.stop();
    }
  });

  it("still wants the user in the auth file or found by auth_query, as PgBouncer", async () => {
    const notFound = async (p: TestPooler, user: string): Promise<void> => {
      const err = await errorOf(connect(p.urlAs(user, "")));
      // PgBouncer 1.18's words, said before any server login
      expect([err.code, err.message]).toEqual(["28000", '"trust" authentication failed']);
    };
    const file = userlist([["postgres", "postgres"]]);
    await withTestPooler({ AUTH_TYPE: "trust", AUTH_FILE: file }, (p) => notFound(p, MD5_ROLE));
    await withTestPooler({ AUTH_TYPE: "trust", AUTH_FILE: file, AUTH_USER: "postgres" }, async (p) => {
      expect(await whoAmI(p.urlAs(MD5_ROLE, ""))).toBe(MD5_ROLE); // its md5 hash logs the pooler in
      await notFound(p, "nobody_here");
    });
  });
});

it("AUTH_TYPE=trust lets in a user auth_query finds with no password (NULL), as PgBouncer", async () => {
  // a server that trusts the pooler, whose roles need no password: the usual setup for trust
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-trusting-"));
  fs.chmodSync(dir, 0o755);
  const hba = path.join(dir, "pg_hba.conf");
  fs.writeFileSync(hba, "local all all trust\nhost all all 127.0.0.1/32 trust\n", { mode: 0o644 });
  const pg = await startPrivatePostgres({ settings: { hba_file: hba } });
  const role = "pooler_no_password_user";
  const admin = await connect(pg.url());
  await admin.query(`CREATE ROLE ${role} LOGIN`);
  await admin.end();
  const file = userlist([["postgres", "postgres"]]);
  try {
    const p = await startTestPooler({
      DATABASE_URL: pg.url(),
      AUTH_TYPE: "trust",
      AUTH_FILE: file,
      AUTH_USER: "postgres",
    });
    try {
      expect(await whoAmI(p.urlAs(role, "", "postgres"))).toBe(role);
      // still no one else: the lookup found no row
      expect((await errorOf(connect(p.urlAs("nobody_here", "", "postgres")))).message).toBe(
        '"trust" authentication failed',
      );
    } finally {
      await p.stop();
    }
    if (hasPgBouncer()) {
      const conn = `host=127.0.0.1 port=${pg.port} dbname=postgres`;
      const b = await startPgBouncer({ postgres: conn }, { auth_type: "trust", auth_user: "postgres" });
      try {
        expect(await whoAmI(`postgresql://${role}@127.0.0.1:${b.port}/postgres`)).toBe(role);
      } finally {
        await b.stop();
      }
    }
  } finally {
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * One failed login on the wire (authenticated or not): what the pooler (ours or PgBouncer) sent at each step (SCRAM's server-first without its
 * random nonce and salt), the salt, the final ErrorResponse (none when the login succeeded), and how long the pooler took to answer
 * in all (the client's own work between its messages left out).
 */
async function failedLogin(
  p: { port: number },
  user: string,
  password: string,
  database = "app",
): Promise<{ steps: string[]; salt: string; error: Map<string, string>; answerMs: number }> {
  const probe = await WireProbe.open(p.port);
  const steps: string[] = [];
  let salt = "";
  let scram: ScramClientSession | null = null;
  let sentAt = performance.now();
  let answerMs = 0;
  try {
    probe.send(startupMessage({ user, database }));
    for (let seen = 0; ; seen++) {
      const msgs = await probe.waitUntil((m) => m.length > seen, 5000);
      const m = msgs[seen];
      if (m === undefined) throw new Error(`no answer after ${steps.join(" ")}`);
      answerMs += performance.now() - sentAt;
      if (m.type === "E") return { steps, salt, error: errorOfReply(m), answerMs };
      const code = m.body.readInt32BE(0);
      sentAt = performance.now();
      if (code === Auth.CleartextPassword) {
        steps.push("cleartext");
        probe.send(passwordMessage(password));
      } else if (code === Auth.MD5Password) {
        steps.push("md5");
        probe.send(passwordMessage(md5Response(user, password, m.body.subarray(4, 8))));
      } else if (code === Auth.SASL) {
        steps.push(`SASL ${m.body.toString("utf8", 4)}`);
        scram = new ScramClientSession(password);
        probe.send(saslInitialResponse(SASL_MECHANISM, scram.clientFirst()));
      } else if (code === Auth.SASLContinue) {
        const serverFirst = m.body.toString("utf8", 4);
        salt = /,s=([^,]*)/.exec(serverFirst)![1]!;
        steps.push(`server-first ${serverFirst.replace(/^r=[^,]*/, "r=…").replace(salt, "…")}`);
        const final = await scram!.handleServerFirst(serverFirst);
        sentAt = performance.now();
        probe.send(saslResponse(final));
      } else if (code === Auth.SASLFinal) {
        steps.push("server-final");
      } else if (code === Auth.Ok) {
        return { steps, salt, error: new Map(), answerMs };
      } else {
        throw new Error(`unexpected message ${m.type} ${code}`);
      }
    }
  } finally {
    probe.destroy();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

describe.each([
  ["md5", () => ({ AUTH_TYPE: "md5", AUTH_FILE: userlist([[MD5_ROLE, PASSWORD]]) }), MD5_ROLE],
  [
    "scram-sha-256",
    () => ({ AUTH_TYPE: "scram-sha-256", AUTH_FILE: userlist([[SCRAM_ROLE, storedScramSecret]]) }),
    SCRAM_ROLE,
  ],
  [
    "scram-sha-256 with auth_query",
    () => ({
      AUTH_TYPE: "scram-sha-256",
      AUTH_FILE: userlist([["postgres", "postgres"]]),
      AUTH_USER: "postgres",
    }),
    SCRAM_ROLE,
  ],
])("no user enumeration, AUTH_TYPE=%s", (label, env, knownUser) => {
  it("an unknown user and a wrong password look the same on the wire and take about as long", async () => {
    await withTestPooler(env(), async (p) => {
      const wrong = await failedLogin(p, knownUser, "not-the-password");
      const unknown = await failedLogin(p, "nobody_here", "not-the-password");
      expect(unknown.steps).toEqual(wrong.steps);
      expect(wrong.error.get("C")).toBe("28P01");
      const named = (e: Map<string, string>, user: string): string[] =>
        [...e].map(([k, v]) => `${k}=${v.replace(user, "<user>")}`);
      expect(named(unknown.error, "nobody_here")).toEqual(named(wrong.error, knownUser));
      if (label.startsWith("scram")) {
        // PostgreSQL's scram_mock_salt: a 16-byte salt, the same at every attempt for that name
        expect(Buffer.from(unknown.salt, "base64")).toHaveLength(16);
        expect((await failedLogin(p, "nobody_here", "x")).salt).toBe(unknown.salt);
        expect((await failedLogin(p, "nobody_else", "x")).salt).not.toBe(unknown.salt);
      }
      const wrongMs: number[] = [];
      const unknownMs: number[] = [];
      for (let i = 0; i < 30; i++) {
        wrongMs.push((await failedLogin(p, knownUser, "not-the-password")).answerMs);
        unknownMs.push((await failedLogin(p, `nobody_${i}`, "not-the-password")).answerMs);
      }
      const ratio = median(unknownMs) / median(wrongMs);
      console.log(
        `auth ${label}: median time the pooler took to answer: wrong password ${median(wrongMs).toFixed(2)} ms, ` +
          `unknown user ${median(unknownMs).toFixed(2)} ms (ratio ${ratio.toFixed(2)}, 30 each)`,
      );
      expect(ratio).toBeGreaterThan(0.5);
      expect(ratio).toBeLessThan(2);
    });
  });
});

describe.each([
  ["md5", () => ({ AUTH_TYPE: "md5", AUTH_FILE: userlist([[MD5_ROLE, PASSWORD]]) }), MD5_ROLE],
  [
    "scram-sha-256",
    () => ({ AUTH_TYPE: "scram-sha-256", AUTH_FILE: userlist([[SCRAM_ROLE, storedScramSecret]]) }),
    SCRAM_ROLE,
  ],
  ["plain", () => ({ AUTH_TYPE: "plain", AUTH_FILE: userlist([[MD5_ROLE, PASSWORD]]) }), MD5_ROLE],
])("no database enumeration, AUTH_TYPE=%s", (label, env, knownUser) => {
  it("an unknown database is told only to who gave the right password, as PgBouncer and PostgreSQL", async () => {
    await withTestPooler(env(), async (p) => {
      const summary = (r: Awaited<ReturnType<typeof failedLogin>>): string[] => [
        ...r.steps,
        `${r.error.get("C")} ${r.error.get("M")}`,
      ];
      for (const [user, password] of [
        [knownUser, "not-the-password"],
        ["nobody_here", "not-the-password"],
      ] as const) {
        expect(summary(await failedLogin(p, user, password, "no_such_db"))).toEqual(
          summary(await failedLogin(p, user, password)),
        );
      }
      const right = await failedLogin(p, knownUser, PASSWORD, "no_such_db");
      // after the whole exchange, SCRAM's server-final included
      expect(right.steps.at(-1)).toBe(label === "scram-sha-256" ? "server-final" : right.steps[0]);
      expect([right.error.get("C"), right.error.get("M")]).toEqual(["3D000", "no such database: no_such_db"]);
    });
  });
});

it("with auth_user, a user only auth_query knows cannot log in to an unknown database: there is none to ask", async () => {
  // as PgBouncer 1.18: such a user gets an exchange that fails, a user of the file hears the truth
  const file = userlist([["postgres", "postgres"]]);
  await withTestPooler({ AUTH_TYPE: "md5", AUTH_FILE: file, AUTH_USER: "postgres" }, async (p) => {
    expect(await whoAmI(p.urlAs(MD5_ROLE, PASSWORD))).toBe(MD5_ROLE);
    const refused = await failedLogin(p, MD5_ROLE, PASSWORD, "no_such_db");
    expect([...refused.steps, refused.error.get("C")]).toEqual(["md5", "28P01"]);
    const fileUser = await failedLogin(p, "postgres", "postgres", "no_such_db");
    expect(fileUser.error.get("C")).toBe("3D000");
  });
});

describe.each([
  ["md5", ["md5"]],
  ["scram-sha-256", ["SASL", "server-first", "server-final"]],
  ["plain", ["cleartext"]],
  ["trust", []],
  ["any", []],
])("console login, AUTH_TYPE=%s: PgBouncer 1.18's order", (authType, exchange) => {
  const users = { console_admin: "admin-pw", console_stats: "stats-pw", console_outsider: "outsider-pw" };
  const settings = { admin_users: "console_admin", stats_users: "console_stats" };
  const failed = authType === "trust" || authType === "any" ? [] : exchange.slice(0, 2);
  const [refused, inside] =
    authType === "any"
      ? [["in"], ["in"]]
      : [
          [...failed, "failed"],
          [...exchange, "in"],
        ];
  // Measured with PgBouncer 1.18. A user of the auth file in neither list is refused before any
  // password, one it does not know gets the exchange and fails it: neither tells who may use the console.
  const expected: [string, string, string[]][] = [
    ["nobody_here", "x", refused],
    ["console_outsider", "wrong", authType === "any" ? ["in"] : ["not allowed"]],
    ["console_outsider", users.console_outsider, authType === "any" ? ["in"] : ["not allowed"]],
    ["console_admin", "wrong", authType === "trust" ? ["in"] : refused],
    ["console_admin", users.console_admin, inside],
    ["console_stats", "wrong", authType === "trust" ? ["in"] : refused],
    ["console_stats", users.console_stats, inside],
  ];
  async function outcomes(p: { port: number }): Promise<string[][]> {
    const seen: string[][] = [];
    for (const [user, password] of expected) {
      const { steps, error } = await failedLogin(p, user, password, "pgbouncer");
      const outcome = error.size === 0 ? "in" : error.get("M") === "not allowed" ? "not allowed" : "failed";
      seen.push([...steps.map((s) => s.split(" ")[0]!), outcome]);
    }
    return seen;
  }

  it("ours", async () => {
    const env = {
      AUTH_TYPE: authType,
      AUTH_FILE: userlist(Object.entries(users)),
      ADMIN_USERS: settings.admin_users,
      STATS_USERS: settings.stats_users,
    };
    await withTestPooler(env, async (p) => {
      expect(await outcomes(p)).toEqual(expected.map(([, , outcome]) => outcome));
      // our SQLSTATEs: PgBouncer's own 08P01 for "not allowed", PostgreSQL's for a failed password
      if (authType === "any") return;
      expect((await failedLogin(p, "console_outsider", "x", "pgbouncer")).error.get("C")).toBe("08P01");
      const wrong = await failedLogin(p, "nobody_here", "x", "pgbouncer");
      expect(wrong.error.get("C")).toBe(authType === "trust" ? "28000" : "28P01");
    });
  });

  it.skipIf(!hasPgBouncer())("PgBouncer 1.18", async () => {
    const b = await startPgBouncer(
      { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
      { ...settings, auth_type: authType },
      users,
    );
    try {
      expect(await outcomes(b)).toEqual(expected.map(([, , outcome]) => outcome));
    } finally {
      await b.stop();
    }
  });
});

describe("PBKDF2 runs off the event loop: a SCRAM secret with many iterations stalls no one", () => {
  const SLOW_ROLE = "pooler_slow_scram";
  // About 1.5 s of PBKDF2 (less when the machine is busy while it is measured): the stall it would
  // cause on the event loop is far above any noise.
  let secret = "";

  beforeAll(async () => {
    secret = await slowScramSecret(PASSWORD, 1500);
    await createLoginRole(inject("pgAppUrl"), SLOW_ROLE, PASSWORD, "md5");
  });
  afterAll(() => dropRole(inject("pgAppUrl"), SLOW_ROLE));

  /**
   * Logs in as SLOW_ROLE through `p` while another client runs SELECT 1 in a loop through the same
   * pooler; returns how long the login took and the longest wait between two of those answers.
   */
  async function loginBesideBusyClient(p: TestPooler): Promise<{ loginMs: number; longestGapMs: number }> {
    const busy = await connect(p.url());
    try {
      let done = false;
      let longestGapMs = 0;
      const loop = (async () => {
        let last = performance.now();
        for (let n = 0; !done || n < 3; n++) {
          await busy.query("SELECT 1");
          longestGapMs = Math.max(longestGapMs, performance.now() - last);
          last = performance.now();
        }
      })();
      const t0 = performance.now();
      const login = whoAmI(p.urlAs(SLOW_ROLE, PASSWORD)).finally(() => (done = true));
      expect(await login).toBe(SLOW_ROLE);
      const loginMs = performance.now() - t0;
      await loop;
      return { loginMs, longestGapMs };
    } finally {
      await busy.end();
    }
  }

  function report(label: string, r: { loginMs: number; longestGapMs: number }): void {
    console.log(
      `${label}: ${secret.split(/[$:]/)[1]} iterations, login took ${r.loginMs.toFixed(0)} ms; ` +
        `longest wait between another client's SELECT 1 answers ${r.longestGapMs.toFixed(1)} ms`,
    );
    // The login did wait for the derivation, so a stall would have shown...
    expect(r.loginMs).toBeGreaterThan(300);
    // ...and the other client was answered all along.
    expect(r.longestGapMs).toBeLessThan(r.loginMs / 4);
  }

  it("logging in to a server that asks for them (the pooler holds the plain password)", async () => {
    const admin = await connect(inject("pgAppUrl"));
    try {
      await admin.query(`ALTER ROLE ${SLOW_ROLE} PASSWORD '${secret}'`);
    } finally {
      await admin.end();
    }
    const file = userlist([
      ["postgres", "postgres"],
      [SLOW_ROLE, PASSWORD],
    ]);
    await withTestPooler({ AUTH_TYPE: "md5", AUTH_FILE: file }, async (p) =>
      report("server asks for SCRAM", await loginBesideBusyClient(p)),
    );
  });

  it("checking a client's plain-text password against such a secret in the userlist", async () => {
    const file = userlist([
      ["postgres", "postgres"],
      [SLOW_ROLE, secret],
    ]);
    await withTestPooler({ AUTH_TYPE: "plain", AUTH_FILE: file }, async (p) =>
      report("AUTH_TYPE=plain against a SCRAM secret", await loginBesideBusyClient(p)),
    );
  });
});

describe("SCRAM_ITERATIONS", () => {
  it("sets the iteration count of the secrets made up for a plain-text password and for unknown users", () =>
    withTestPooler(
      { AUTH_TYPE: "scram-sha-256", AUTH_FILE: userlist([[SCRAM_ROLE, PASSWORD]]), SCRAM_ITERATIONS: "5000" },
      async (p) => {
        const iterations = async (user: string): Promise<string | undefined> => {
          const { steps } = await failedLogin(p, user, "not-the-password");
          return steps.map((s) => /,i=(\d+)/.exec(s)?.[1]).find((i) => i !== undefined);
        };
        expect(await iterations(SCRAM_ROLE)).toBe("5000");
        expect(await iterations("nobody_here")).toBe("5000");
        // and the right password still gets in, the server logged in to as before
        expect(await whoAmI(p.urlAs(SCRAM_ROLE, PASSWORD))).toBe(SCRAM_ROLE);
      },
    ));
});
