// connect_query (a [databases] parameter of PgBouncer's): SQL run on each new server connection
// after its login, before any client gets it. Its errors are logged and otherwise ignored, as in
// PgBouncer: the server is used all the same.
//
// What it leaves on the session is the server's baseline (session-state.ts ServerBaseline), which
// the pooler then keeps true for every client, where PgBouncer runs the query once and forgets it:
// - its settings (SET search_path …, set_config, SET ROLE) are what a client that did not set its
//   own sees; the settings sync at each link (params.ts) puts them back after a client's RESET, RESET
//   ALL or DISCARD ALL and after server_reset_query or the pooler's own DISCARD ALL, without running
//   connect_query again (it may do more than set things: an INSERT into a log, …);
// - the reported parameters it sets (SET TimeZone …) are what the pool's clients are told at login,
//   as the pool learns its parameters from its first server once connect_query has run there;
// - state that cannot be replayed (a temporary table, SQL PREPARE, LISTEN, an advisory lock) is the
//   server's own: listed by identity, so the session probe does not pin a client for it, and gone
//   once a DISCARD ALL ran there, as in PgBouncer.
import type { Logger } from "./log.ts";
import { ServerError, type Row, type ServerConnection } from "./server.ts";
import {
  classify,
  heldObjectsSql,
  probeSql,
  readProbe,
  type HeldState,
  type ServerBaseline,
} from "./session-state.ts";

/**
 * Runs `sql` on a server that has just logged in and records what it left (`server.baseline`).
 * Rejects only when the server is lost: an error of the query is logged, and a transaction it left
 * open rolled back. `reported`: the parameters ParameterStatus tracking keeps (params.ts), which
 * are the pool's business, not the baseline's.
 */
export async function runConnectQuery(
  server: ServerConnection,
  sql: string,
  reported: (name: string) => boolean,
  log: Logger,
  pool: string,
): Promise<void> {
  try {
    await server.queryInternal(sql);
  } catch (err) {
    // a FATAL (the backend terminated) loses the server: that is no error of the query's
    if (!(err instanceof ServerError) || err.fatal) throw err;
    log.warn({ pool, server: server.id, code: err.code, err: err.message }, "connect_query failed");
  }
  if (server.txStatus !== "I") {
    // a BEGIN without its COMMIT: no client could be handed a server inside a transaction
    log.warn({ pool, server: server.id }, "connect_query left a transaction open: rolled back");
    await server.queryInternal("ROLLBACK");
  }
  const effect = classify(sql);
  if (effect.unnamedSetting) {
    log.warn(
      { pool, server: server.id },
      "connect_query sets a setting whose name the pooler cannot read: it is not restored after a RESET or DISCARD ALL",
    );
  }
  const probed = readProbe(
    await server.queryInternal(probeSql(effect.hidden)),
    server.target.credentials.user,
  );
  const settings = new Map([...probed.settings].filter(([name]) => !reported(name)));
  const kinds = new Set(probed.held.filter((state) => state !== "pg_temp in search_path"));
  const held = kinds.size === 0 ? new Map() : heldByKind(await server.queryInternal(heldObjectsSql(kinds)));
  const baseline: ServerBaseline = { settings, held };
  server.baseline = baseline;
  server.settings = new Map(settings);
}

function heldByKind(rows: Row[]): Map<HeldState, string[]> {
  const held = new Map<HeldState, string[]>();
  for (const [kind, id] of rows) {
    const list = held.get(kind as HeldState) ?? [];
    list.push(id ?? "");
    held.set(kind as HeldState, list);
  }
  return held;
}
