// The console's process-controlling commands with PgBouncer's semantics (doc/usage.md) and its
// error messages (admin.c). Each returns the CommandComplete tag; a refusal throws AdminError.
import { ADMIN_DB } from "../client-login.ts";
import { ConfigError } from "../config/index.ts";
import type { Pool } from "../pool.ts";
import type { Pooler, ShutdownWait } from "../pooler.ts";
import { SqlState } from "../protocol/sqlstate.ts";

/** A console command that failed: an ErrorResponse, and the session goes on. */
export class AdminError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** How often PAUSE and WAIT_CLOSE look whether the servers they wait for are gone. */
const POLL_MS = 50;

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, POLL_MS));
}

function poolsOf(pooler: Pooler, db: string): Pool[] {
  return [...pooler.pools.values()].filter((p) => db === "" || p.db.name === db);
}

function refuse(message: string): never {
  throw new AdminError(SqlState.ObjectNotInPrerequisiteState, message);
}

/**
 * The database an argument names, registered from "*" if need be (PgBouncer's
 * find_or_register_database); the console's own database cannot be acted on.
 */
function databaseArg(pooler: Pooler, name: string, verb: string): string {
  if (name === ADMIN_DB) refuse(`cannot ${verb} admin db: ${name}`);
  const db = pooler.findDatabase(name);
  if (db === undefined) throw new AdminError(SqlState.InvalidCatalogName, `no such database: ${name}`);
  return db.name;
}

/** A database the pooler has now, not registered from "*" (PgBouncer's find_database). */
function requireKnownDatabase(pooler: Pooler, name: string): void {
  if (!pooler.databases().some((db) => db.name === name)) {
    throw new AdminError(SqlState.InvalidCatalogName, `no such database: ${name}`);
  }
}

function requireArg(arg: string): void {
  if (arg === "") throw new AdminError(SqlState.SyntaxError, "a database is required");
}

/** PAUSE [db]: waits until every server of the paused pools is released and closed. */
export async function pause(pooler: Pooler, arg: string): Promise<string> {
  if (pooler.pausedAll) refuse("already suspended/paused");
  const db = arg === "" ? "" : databaseArg(pooler, arg, "pause");
  if (db === "") pooler.pausedAll = true;
  else pooler.pausedDbs.add(db);
  pooler.applyPauses();
  const lifted = (): boolean => !(db === "" ? pooler.pausedAll : pooler.isPaused(db));
  await until(() => lifted() || poolsOf(pooler, db).every((p) => p.serverCount === 0));
  if (lifted()) throw new AdminError(SqlState.QueryCanceled, "PAUSE canceled by RESUME");
  return "PAUSE";
}

/**
 * A console session's CancelRequest (psql's Ctrl-C on a PAUSE that waits) lifts a PAUSE of the
 * whole pooler, as PgBouncer's admin_handle_cancel; the waiting PAUSE then fails.
 */
export function cancelPause(pooler: Pooler): void {
  if (pooler.shuttingDown || !pooler.pausedAll) return;
  pooler.log.info("cancel request on the console: RESUME");
  pooler.pausedAll = false;
  pooler.applyPauses();
}

/** RESUME [db]: after PAUSE or KILL. Without a database everything resumes. */
export function resume(pooler: Pooler, arg: string): string {
  if (pooler.shuttingDown) refuse("pooler is shutting down");
  if (arg === "") {
    if (!pooler.pausedAll && pooler.pausedDbs.size === 0) refuse("pooler is not paused/suspended");
    pooler.pausedAll = false;
    pooler.pausedDbs.clear();
  } else {
    if (!pooler.pausedDbs.has(arg)) {
      if (arg !== ADMIN_DB) requireKnownDatabase(pooler, arg);
      refuse(`database ${arg} is not paused`);
    }
    pooler.pausedDbs.delete(arg);
  }
  pooler.applyPauses();
  return "RESUME";
}

/** KILL [db]: drops every client and server of the database(s) now; they stay paused until RESUME. */
export function kill(pooler: Pooler, arg: string): string {
  if (pooler.pausedAll) refuse("already suspended/paused");
  const db = arg === "" ? "" : databaseArg(pooler, arg, "kill");
  const pools = new Set(poolsOf(pooler, db));
  for (const pool of pools) {
    pooler.pausedDbs.add(pool.db.name);
    pool.pause("database removed");
  }
  for (const client of pooler.clients) {
    if (client.pool !== null && pools.has(client.pool))
      client.refuse(SqlState.AdminShutdown, "database removed");
  }
  for (const pool of pools) pool.closeServers("database removed");
  if (db !== "") pooler.pausedDbs.add(db);
  return "KILL";
}

/** KILL_CLIENT id: the id of SHOW CLIENTS. */
export function killClient(pooler: Pooler, arg: string): string {
  if (!/^\d+$/.test(arg))
    throw new AdminError(SqlState.InvalidParameterValue, "invalid client pointer supplied");
  const id = Number(arg);
  const target = [...pooler.clients].find((c) => c.id === id && c.state !== "login" && c.state !== "closed");
  if (target === undefined) throw new AdminError(SqlState.UndefinedObject, "client not found");
  target.refuse(SqlState.AdminShutdown, "admin forced disconnect");
  return "KILL_CLIENT";
}

/** DISABLE db: new clients of the database are refused; connected ones go on. */
export function disable(pooler: Pooler, arg: string): string {
  requireArg(arg);
  pooler.disabledDbs.add(databaseArg(pooler, arg, "disable"));
  return "DISABLE";
}

export function enable(pooler: Pooler, arg: string): string {
  requireArg(arg);
  if (arg === ADMIN_DB) refuse(`cannot enable admin db: ${arg}`);
  requireKnownDatabase(pooler, arg);
  pooler.disabledDbs.delete(arg);
  return "ENABLE";
}

/** RECONNECT [db]: every server is replaced once released (close_needed). */
export function reconnect(pooler: Pooler, arg: string): string {
  const db = arg === "" ? "" : databaseArg(pooler, arg, "reconnect");
  for (const pool of poolsOf(pooler, db)) pool.reconnect();
  return "RECONNECT";
}

/** WAIT_CLOSE [db]: waits until no server is left with close_needed (after RECONNECT or RELOAD). */
export async function waitClose(pooler: Pooler, arg: string): Promise<string> {
  const db = arg === "" ? "" : databaseArg(pooler, arg, "wait in");
  await until(() => poolsOf(pooler, db).every((p) => p.allServers().every((s) => !s.closeNeeded)));
  return "WAIT_CLOSE";
}

export function reload(pooler: Pooler): string {
  try {
    pooler.reloadFromSource();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    pooler.log.error({ err: err.message }, "RELOAD failed; keeping the running configuration");
    throw new AdminError(SqlState.ConfigFileError, `RELOAD failed: ${err.message}`);
  }
  return "RELOAD";
}

const SHUTDOWN_MODES: ReadonlyMap<string, { waitFor: ShutdownWait; timeoutMs: number }> = new Map([
  ["", { waitFor: "servers", timeoutMs: 0 }],
  ["wait_for_servers", { waitFor: "servers", timeoutMs: Infinity }],
  ["wait_for_clients", { waitFor: "clients", timeoutMs: Infinity }],
]);

/** Whether `arg` is a SHUTDOWN mode (anything else is a syntax error). */
export function isShutdownMode(arg: string): boolean {
  return SHUTDOWN_MODES.has(arg.toLowerCase());
}

/**
 * SHUTDOWN [WAIT_FOR_SERVERS | WAIT_FOR_CLIENTS]. The reply goes out first: the shutdown starts
 * on the next turn of the event loop, after the console has written it.
 */
export function shutdown(pooler: Pooler, arg: string): string {
  const mode = SHUTDOWN_MODES.get(arg.toLowerCase())!;
  setImmediate(() => void pooler.shutdown(mode.timeoutMs, mode.waitFor));
  return "SHUTDOWN";
}
