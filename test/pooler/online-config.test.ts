// Settings changed while the pooler runs, as PgBouncer 1.18 applies them: the console's SET, RELOAD,
// and the auth file PgBouncer reads again on its own when it changes.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../pooler/config/index.ts";
import { connect, errorOf } from "../support/clients.ts";
import { hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";
import { UserlistDir } from "../support/roles.ts";
import { waitFor } from "../support/wait.ts";

let userlists: UserlistDir;
let p: TestPooler;

beforeAll(async () => {
  userlists = new UserlistDir();
  p = await startTestPooler({
    AUTH_TYPE: "md5",
    AUTH_FILE: userlists.write([["postgres", "postgres"]]),
    ADMIN_USERS: "postgres",
  });
});

afterAll(async () => {
  await p.stop();
  userlists.remove();
});

/** Whether the console lets `postgres` in with `password` (its login checks the auth file alone). */
async function consoleLogin(password: string): Promise<boolean> {
  try {
    const c = await connect(p.urlAs("postgres", password, "pgbouncer"));
    await c.end();
    return true;
  } catch {
    return false;
  }
}

describe("verbose", () => {
  it("SET verbose lowers the log level at once, and setting it back raises it, as PgBouncer's", async () => {
    const admin = await connect(p.url("pgbouncer"));
    const debugLines = (): number => p.logs.filter((l) => l.level === 20).length;
    try {
      await admin.query("SET verbose = 1");
      const c = await connect(p.url());
      await c.query("SELECT 1");
      await c.end();
      await waitFor(() => debugLines() > 0, "a debug line after SET verbose = 1");

      await admin.query("SET verbose = 0");
      const before = debugLines();
      const again = await connect(p.url());
      await again.query("SELECT 1");
      await again.end();
      await admin.query("RECONNECT app");
      await admin.query("WAIT_CLOSE app");
      expect(debugLines()).toBe(before);
    } finally {
      await admin.end();
    }
  });
});

describe("max_packet_size", () => {
  it("SET applies at the next message, as PgBouncer's (it reads it at each header): to clients and servers already connected too", () =>
    withTestPooler({ DEFAULT_POOL_SIZE: "1", ADMIN_USERS: "postgres" }, async (tp) => {
      const a = await connect(tp.url());
      const b = await connect(tp.url());
      const admin = await connect(tp.url("pgbouncer"));
      const bigRow = "SELECT repeat('y', 20000) AS r";
      const bigQuery = `SELECT length('${"x".repeat(20000)}') AS n`;
      try {
        expect((await a.query(bigRow)).rows[0].r).toHaveLength(20000);
        expect((await b.query(bigQuery)).rows[0].n).toBe(20000);
        const [server] = [...tp.pooler.pools.values()][0]!.allServers();
        await admin.query("SET max_packet_size = 10000");
        // the server of their queries, kept in the pool: its DataRow is over the limit now
        expect((await errorOf(a.query(bigRow))).message).toMatch(
          /server conn crashed.*invalid message length 20010 for message type "D"/,
        );
        expect(server!.closeReason).toMatch(/bad server protocol/);
        expect((await errorOf(b.query(bigQuery))).message).toMatch(/invalid message length 20027/);
      } finally {
        for (const c of [a, b]) await c.end().catch(() => undefined);
        await admin.end();
      }
    }));
});

describe("auth_file", () => {
  it("is read again when it changes, without RELOAD, as PgBouncer's janitor does; SET auth_file reads the other file", async () => {
    const file = p.pooler.config.authFile!;
    const admin = await connect(p.url("pgbouncer"));
    try {
      fs.writeFileSync(file, '"postgres" "renewed"\n');
      await waitFor(() => consoleLogin("renewed"), "the rewritten auth file's password to let in");
      expect(await consoleLogin("postgres")).toBe(false);
      // the session that logged in with the old password goes on
      expect((await admin.query("SHOW VERSION")).rows).toHaveLength(1);

      const other = userlists.write([["postgres", "other-file"]]);
      await admin.query(`SET auth_file = '${other}'`);
      expect(await consoleLogin("other-file")).toBe(true);
      expect(await consoleLogin("renewed")).toBe(false);

      // a file that can no longer be read keeps the users last read, as PgBouncer
      fs.rmSync(other);
      await waitFor(
        () => p.logs.some((l) => String(l.err ?? "").includes(other)),
        "a warning naming the missing auth file",
      );
      expect(await consoleLogin("other-file")).toBe(true);

      await admin.query(`SET auth_file = '${file}'`);
      expect((await errorOf(connect(p.urlAs("postgres", "other-file", "pgbouncer")))).message).toContain(
        "password authentication failed",
      );
    } finally {
      await admin.end();
    }
  });
});

describe("a setting read at start only", () => {
  it.skipIf(!hasPgBouncer())(
    "SET is refused naming it, where PgBouncer 1.18 answers SET and keeps the running value",
    () =>
      withTestPooler({ ADMIN_USERS: "postgres" }, async (tp) => {
        const server = new URL(inject("pgAppUrl"));
        const bouncer = await startPgBouncer(
          { app: `host=${server.hostname} port=${server.port} dbname=app` },
          { admin_users: "postgres" },
        );
        const theirs = await connect(bouncer.url("pgbouncer"));
        const ours = await connect(tp.url("pgbouncer"));
        const listenPort = async (c: pg.Client): Promise<string> =>
          (await c.query("SHOW CONFIG")).rows.find((r) => r.key === "listen_port").value;
        try {
          const theirPort = await listenPort(theirs);
          expect((await theirs.query("SET listen_port = 7000")).command).toBe("SET");
          expect(await listenPort(theirs)).toBe(theirPort);

          const ourPort = await listenPort(ours);
          const refused = await errorOf(ours.query("SET listen_port = 7000"));
          expect([refused.code, refused.message]).toEqual([
            "22023",
            "listen_port: cannot be changed online, restart the pooler",
          ]);
          expect(await listenPort(ours)).toBe(ourPort);
        } finally {
          await Promise.all([theirs.end(), ours.end()]);
          await bouncer.stop();
        }
      }),
  );
});

/** `key`'s value in SHOW CONFIG, through the console session `c`. */
async function configValue(c: pg.Client, key: string): Promise<string | null> {
  return (await c.query("SHOW CONFIG")).rows.find((r) => r.key === key).value;
}

describe("a SET the whole configuration refuses", () => {
  it("is refused with RELOAD's message, the running configuration untouched: min_pool_size above default_pool_size, auth_type=cert without verified certificates", () =>
    withTestPooler({ ADMIN_USERS: "postgres", DEFAULT_POOL_SIZE: "5", MIN_POOL_SIZE: "2" }, async (tp) => {
      const admin = await connect(tp.url("pgbouncer"));
      const env = { DATABASE_URL: inject("pgAppUrl"), LISTEN_PORT: "0", ADMIN_USERS: "postgres" };
      /** The message RELOAD fails with when the files say what `extra` says. */
      const reloadRefusal = async (extra: Record<string, string>): Promise<string> => {
        tp.pooler.configLoader = (running) => loadConfig({ env: { ...env, ...extra }, running });
        return (await errorOf(admin.query("RELOAD"))).message.replace(/^RELOAD failed: /, "");
      };
      try {
        for (const [key, value, extra] of [
          ["min_pool_size", "6", { DEFAULT_POOL_SIZE: "5", MIN_POOL_SIZE: "6" }],
          ["default_pool_size", "1", { DEFAULT_POOL_SIZE: "1", MIN_POOL_SIZE: "2" }],
          ["auth_type", "cert", { DEFAULT_POOL_SIZE: "5", AUTH_TYPE: "cert" }],
        ] as const) {
          const before = await configValue(admin, key);
          const refused = await errorOf(admin.query(`SET ${key} = ${value}`));
          expect([refused.code, refused.message]).toEqual(["22023", await reloadRefusal(extra)]);
          expect(await configValue(admin, key)).toBe(before);
        }
        expect(tp.pooler.config.authType).toBe("md5");
        // the console's admins still log in, as every client does
        const again = await connect(tp.url("pgbouncer"));
        await again.end();
        expect((await admin.query("SET min_pool_size = 5")).command).toBe("SET");
      } finally {
        await admin.end();
      }
    }));
});

describe("SET auth_type = hba, SET auth_hba_file", () => {
  it.skipIf(!hasPgBouncer())(
    "read the file's rules at once, where PgBouncer 1.18 rejects every login until a RELOAD (which puts its files' values back)",
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-set-hba-"));
      fs.chmodSync(dir, 0o755);
      const hba = (name: string, method: string): string => {
        const file = path.join(dir, name);
        fs.writeFileSync(file, `host all all 127.0.0.1/32 ${method}\n`);
        return file;
      };
      const trust = hba("trust.conf", "trust");
      const md5 = hba("md5.conf", "md5");
      const server = new URL(inject("pgAppUrl"));
      const bouncer = await startPgBouncer(
        { app: `host=${server.hostname} port=${server.port} dbname=app` },
        { admin_users: "postgres", auth_hba_file: trust },
      );
      const tp = await startTestPooler({ ADMIN_USERS: "postgres", AUTH_HBA_FILE: trust });
      const theirs = await connect(bouncer.url("pgbouncer"));
      const ours = await connect(tp.url("pgbouncer"));
      const wrongPassword = (url: string): string => url.replace("postgres:postgres@", "postgres:wrong@");
      const login = (url: string): Promise<string> =>
        connect(url).then(
          (c) => c.end().then(() => "in"),
          (err: Error) => err.message,
        );
      try {
        await theirs.query("SET auth_type = hba");
        expect(await login(bouncer.url("app"))).toBe("login rejected");

        await ours.query("SET auth_type = hba");
        expect(await login(wrongPassword(tp.url()))).toBe("in");
        await ours.query(`SET auth_hba_file = '${md5}'`);
        expect(await login(wrongPassword(tp.url()))).toMatch(/password authentication failed/);
        expect(await login(tp.url())).toBe("in");

        const missing = path.join(dir, "missing.conf");
        const refused = await errorOf(ours.query(`SET auth_hba_file = '${missing}'`));
        expect([refused.code, refused.message]).toEqual(["22023", expect.stringContaining(missing)]);
        expect(await configValue(ours, "auth_hba_file")).toBe(md5);
        await ours.query("SET auth_type = md5");
        const unset = await errorOf(
          (async () => {
            await ours.query("SET auth_hba_file = ''");
            await ours.query("SET auth_type = hba");
          })(),
        );
        expect(unset.message).toBe(
          "auth_type: hba needs auth_hba_file (AUTH_HBA_FILE), PostgreSQL's pg_hba.conf format",
        );
        expect(await login(tp.url())).toBe("in");
      } finally {
        await Promise.all([theirs.end(), ours.end()]);
        await Promise.all([bouncer.stop(), tp.stop()]);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
