// Small helpers for driving real clients (node-postgres, psql, pgbench, raw sockets) in tests.
import { execFile } from "node:child_process";
import net from "node:net";
import { promisify } from "node:util";
import pg from "pg";
import { cancelRequest } from "../../pooler/protocol/messages.ts";

const run = promisify(execFile);

/** A connected pg.Client; the caller ends it (use `await using`-free style: try/finally). */
export async function connect(url: string, extra: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, ...extra });
  // An error after a FATAL from the pooler must not crash the test process.
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** Logs in with `url` and asks who it is (the role the server sees). */
export async function whoAmI(url: string): Promise<string> {
  const c = await connect(url);
  try {
    return (await c.query("SELECT current_user AS u")).rows[0].u;
  } finally {
    await c.end();
  }
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function errorOf(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected the operation to fail, but it succeeded");
}

/**
 * The error the pooler ended `c` with while `work` (its queries) ran: a FATAL that came while a query
 * waited fails that query; one that came between queries is the client's "error" event, and its
 * next query fails for want of a connection. Call it before the FATAL can come.
 */
export function fatalDuring(c: pg.Client, work: Promise<unknown>): Promise<Error & { code?: string }> {
  const told = new Promise<Error & { code?: string }>((resolve) => c.once("error", resolve));
  return errorOf(work).then((err) => (err.code ? err : told));
}

export async function psql(url: string, sql: string): Promise<{ stdout: string; stderr: string }> {
  return run("psql", [url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], {
    env: { ...process.env, PGCONNECT_TIMEOUT: "10" },
  });
}

export interface PgbenchResult {
  tps: number;
  failed: number;
  processed: number;
  output: string;
}

/** Runs pgbench and reads its summary; a non-zero exit still returns the output to assert on. */
export async function pgbench(url: string, args: string[]): Promise<PgbenchResult> {
  const u = new URL(url);
  const env = { ...process.env, PGPASSWORD: decodeURIComponent(u.password) };
  const base = ["-h", u.hostname, "-p", u.port, "-U", decodeURIComponent(u.username)];
  let output: string;
  try {
    const r = await run("pgbench", [...base, ...args, u.pathname.slice(1)], { env, maxBuffer: 16 << 20 });
    output = r.stdout + r.stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    output = (e.stdout ?? "") + (e.stderr ?? "");
  }
  const num = (re: RegExp): number => Number(re.exec(output)?.[1] ?? NaN);
  return {
    tps: num(/tps = ([\d.]+)/),
    failed: num(/number of failed transactions: (\d+)/),
    processed: num(/number of transactions actually processed: (\d+)/),
    output,
  };
}

/**
 * Opens a raw connection (TCP to a port on 127.0.0.1, from `localAddress` if given, or a Unix
 * socket's path) and collects everything the peer sends until it closes.
 */
export function rawExchange(
  to: number | string,
  payload: Buffer,
  waitMs = 3000,
  localAddress?: string,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const where = typeof to === "string" ? { path: to } : { host: "127.0.0.1", port: to, localAddress };
    const sock = net.connect(where, () => sock.write(payload));
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(Buffer.concat(chunks));
    }, waitMs);
    sock.on("data", (c) => chunks.push(c));
    sock.on("error", (err) => {
      clearTimeout(timer);
      if ((err as NodeJS.ErrnoException).code === "ECONNRESET") resolve(Buffer.concat(chunks));
      else reject(err);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** The cancel key node-postgres got at login (BackendKeyData), which it keeps but does not export. */
export function cancelKeyOf(c: pg.Client): { pid: number; secret: number } {
  const k = c as unknown as { processID: number; secretKey: number };
  return { pid: k.processID, secret: k.secretKey };
}

/**
 * Runs pg_sleep(10) on `c` and, once it runs, sends its cancel key to the pooler on `port` as a
 * client's CancelRequest; resolves to the query's error and how long the query took.
 */

export async function cancelledSleep(
  c: pg.Client,
  port: number,
): Promise<{ err: Error & { code?: string }; ms: number }> {
  const { pid, secret } = cancelKeyOf(c);
  const started = Date.now();
  const slow = errorOf(c.query("SELECT pg_sleep(10)"));
  await new Promise((r) => setTimeout(r, 300));
  await rawExchange(port, cancelRequest(pid, secret));
  return { err: await slow, ms: Date.now() - started };
}

/**
 * As libpq's PQcancel, `rounds` times: sends `c`'s own key to `port` and waits for the connection
 * to close, which says the cancel has been acted on; then runs a short query on `c` (in a
 * transaction, so that it keeps its server in any pool mode). Resolves to how many of those
 * queries a cancel still on its way canceled: 0 from PostgreSQL itself.
 */
export async function queriesHitAfterCancel(c: pg.Client, port: number, rounds = 30): Promise<number> {
  const { pid, secret } = cancelKeyOf(c);
  let hit = 0;
  for (let i = 0; i < rounds; i++) {
    await c.query("BEGIN");
    await rawExchange(port, cancelRequest(pid, secret));
    const err = await c.query("SELECT pg_sleep(0.05)").then(
      () => null,
      (e: Error & { code?: string }) => e,
    );
    await c.query("ROLLBACK");
    if (err?.code === "57014") hit++;
    else if (err) throw err;
  }
  return hit;
}

/**
 * Logins to databases tenant_<from> .. tenant_<to - 1>, 50 at once, through a pooler whose `*` entry
 * makes a pool for each; PostgreSQL, which has none of them, refuses each login after that.
 */
export async function makePools(port: number, from: number, to: number, password?: string): Promise<void> {
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < to) {
      const c = new pg.Client({
        host: "127.0.0.1",
        port,
        user: "postgres",
        password,
        database: `tenant_${next++}`,
      });
      await c.connect().then(
        () => c.end(),
        () => undefined,
      );
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
}
