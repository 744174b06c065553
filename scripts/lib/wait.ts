// Readiness checks for `npm start`: ports that must be free before we start, and services that must
// answer before the next one starts.
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { describeExit, type Child, type ExitInfo } from "./processes.ts";

/** True if nothing listens on host:port (we could bind it ourselves). */
export function isPortFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** True once a PostgreSQL-protocol server at `url` logs us in and answers SELECT 1. */
export async function answersSelect1(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on("error", () => undefined); // a server closing an idle client must not crash us
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** True once an HTTP server at `url` answers at all (any status). */
export async function answersHttp(url: string): Promise<boolean> {
  try {
    await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(2_000) });
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls `check` until it is true. Fails after timeoutMs, or as soon as `child` (the process that
 * should become ready) exits: there is no point in waiting for a dead server.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  { child, timeoutMs = 30_000 }: { child: Child; timeoutMs?: number },
): Promise<void> {
  let exit: ExitInfo | undefined;
  void child.exited.then((info) => (exit = info));
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (exit) throw new Error(`${child.name} exited (${describeExit(exit)}) before ${what}`);
    if (Date.now() > deadline) throw new Error(`gave up waiting ${timeoutMs / 1000} s for ${what}`);
    await sleep(200);
  }
}
