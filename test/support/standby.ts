// For target_session_attrs tests: a PostgreSQL 13 hot standby of a test file's own, on another
// loopback address but the shared server's port number, so that one `port=` serves a host list
// such as "127.0.0.1,127.0.0.2"; and poolers whose database `app` is such a list.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { inject } from "vitest";
import { connect } from "./clients.ts";
import { startTestPooler, type TestPooler } from "./pooler.ts";
import { startPrivatePostgres, type PrivatePostgres } from "./private-postgres.ts";

/** In recovery with no primary to follow: it serves read-only sessions until promoted. */
export function startStandby(address: string): Promise<PrivatePostgres> {
  return startPrivatePostgres({
    appDatabase: true,
    port: inject("pgPort"),
    settings: { listen_addresses: address },
    standby: true,
  });
}

export interface EntryPooler {
  p: TestPooler;
  /** Writes another `app` entry into the ini file, for a RELOAD to read. */
  rewrite(entry: string): void;
  /** Stops the pooler and removes its files. */
  stop(): Promise<void>;
}

/** A pooler (pool size 4, `postgres` its admin) whose database `app` is `entry` on `port`. */
export async function poolerForEntry(entry: string, port = inject("pgPort")): Promise<EntryPooler> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-hosts-"));
  const ini = path.join(dir, "pgbouncer.ini");
  const auth = path.join(dir, "userlist.txt");
  fs.writeFileSync(auth, '"postgres" "postgres"\n');
  const rewrite = (e: string): void =>
    fs.writeFileSync(ini, `[databases]\napp = ${e} port=${port} dbname=app\n[pgbouncer]\n`);
  rewrite(entry);
  // no DATABASE_URL: it would be an `app` entry of its own, winning over the file's
  const env = { DATABASE_URL: "", AUTH_FILE: auth, DEFAULT_POOL_SIZE: "4", ADMIN_USERS: "postgres" };
  const p = await startTestPooler(env, ini);
  return {
    p,
    rewrite,
    stop: async () => {
      await p.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` against poolerForEntry(entry), stopped afterwards whatever happens. */
export async function withEntryPooler(
  entry: string,
  fn: (p: TestPooler) => Promise<void>,
  port?: number,
): Promise<void> {
  const pooler = await poolerForEntry(entry, port);
  try {
    await fn(pooler.p);
  } finally {
    await pooler.stop();
  }
}

/** Clients in a transaction at once (a server each): whether each server is in recovery. */
export async function recoveryOfServers(p: TestPooler, n = 4): Promise<boolean[]> {
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
