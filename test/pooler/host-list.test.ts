// host= lists, as PgBouncer: a [databases] entry's servers spread over its hosts (round-robin), or
// keep to one until it fails (load_balance_hosts=disable), and auth_query finds a host that answers.
// The second "host" is a relay on another loopback address to the same PostgreSQL, which counts
// the connections that came through it; 127.0.0.3 has nothing listening.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { connect } from "../support/clients.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { UserlistDir, createLoginRole, dropRole } from "../support/roles.ts";

const ROLE = "pooler_hostlist_user";
const PASSWORD = "hostlist-pw";
let relay: net.Server;
let relayed = 0;
const sockets = new Set<net.Socket>();
let userlists: UserlistDir;

beforeAll(async () => {
  const port = inject("pgPort");
  relay = net.createServer((s) => {
    relayed++;
    const up = net.connect({ host: "127.0.0.1", port });
    for (const x of [s, up]) {
      sockets.add(x);
      x.on("error", () => {
        s.destroy();
        up.destroy();
      });
    }
    s.pipe(up).pipe(s);
  });
  await new Promise<void>((r) => relay.listen(port, "127.0.0.2", () => r()));
  await createLoginRole(inject("pgAppUrl"), ROLE, PASSWORD, "md5");
  userlists = new UserlistDir();
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  relay.close();
  await dropRole(inject("pgAppUrl"), ROLE);
  userlists.remove();
});

/** A pooler whose database `app` is `entry` (host= list and all), with `env` on top. */
async function poolerFor(entry: string, env: Record<string, string> = {}): Promise<TestPooler> {
  const ini = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pooler-hosts-")), "pgbouncer.ini");
  fs.writeFileSync(ini, `[databases]\napp = ${entry} port=${inject("pgPort")} dbname=app\n[pgbouncer]\n`);
  // no DATABASE_URL: it would be an `app` entry of its own, winning over the file's
  return startTestPooler(
    {
      DATABASE_URL: "",
      AUTH_FILE: userlists.write([["postgres", "postgres"]]),
      DEFAULT_POOL_SIZE: "4",
      ...env,
    },
    ini,
  );
}

/** Four clients in a transaction at once: four servers. */
async function fourServers(p: TestPooler): Promise<void> {
  const clients = await Promise.all([1, 2, 3, 4].map(() => connect(p.url())));
  await Promise.all(clients.map((c) => c.query("BEGIN")));
  await Promise.all(clients.map((c) => c.query("COMMIT")));
  await Promise.all(clients.map((c) => c.end()));
}

/** Runs `fn` against poolerFor(entry, env), stopped afterwards whatever happens. */
async function withPoolerFor(
  entry: string,
  env: Record<string, string>,
  fn: (p: TestPooler) => Promise<void>,
): Promise<void> {
  const p = await poolerFor(entry, env);
  try {
    await fn(p);
  } finally {
    await p.stop();
  }
}

describe("host= lists", () => {
  it("spread a pool's servers over the hosts in turn (load_balance_hosts=round-robin, the default)", () =>
    withPoolerFor("host=127.0.0.1,127.0.0.2", {}, async (p) => {
      const before = relayed;
      await fourServers(p);
      expect(relayed - before).toBe(2);
    }));

  it("keep to one host until a connection to it fails (load_balance_hosts=disable)", () =>
    withPoolerFor(
      "host=127.0.0.3,127.0.0.2 load_balance_hosts=disable",
      { SERVER_LOGIN_RETRY: "0.1", ADMIN_USERS: "postgres" },
      async (p) => {
        const before = relayed;
        // the first login goes to 127.0.0.3 and fails; from then on every server comes through the relay
        await fourServers(p);
        expect(relayed - before).toBe(4);
        const admin = await connect(p.url("pgbouncer"));
        const rows = (await admin.query("SHOW DATABASES")).rows as { name: string; host: string }[];
        await admin.end();
        expect(rows.find((r) => r.name === "app")!.host).toBe("127.0.0.3,127.0.0.2");
      },
    ));

  it("auth_query looks a user up on the first host that answers", () =>
    withPoolerFor(
      "host=127.0.0.3,127.0.0.1",
      { AUTH_USER: "postgres", SERVER_LOGIN_RETRY: "0.1" },
      async (p) => {
        const c = await connect(p.urlAs(ROLE, PASSWORD));
        expect((await c.query("SELECT current_user AS u")).rows[0].u).toBe(ROLE);
        await c.end();
      },
    ));

  it("refuse an empty entry in the list at start", async () => {
    await expect(poolerFor("host=127.0.0.1,,127.0.0.2")).rejects.toThrow(
      /host: expected a host or a comma-separated list of hosts/,
    );
  });
});
