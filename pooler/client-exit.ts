// A server whose client leaves while holding it (its socket closed, a refusal, KILL_CLIENT, a
// timeout): cleaned for the next client and given back to its pool, or closed.
import type { Pool } from "./pool.ts";
import type { ServerConnection } from "./server.ts";

/** What the leaving client may have left on its server. */
export interface LeftBehind {
  /** Transaction or statement pooling on its link. */
  readonly pooled: boolean;
  /** A message or an extended-protocol batch half sent. */
  readonly midRequest: boolean;
  /** Session state it was pinned by, or may have made since the last probe. */
  readonly sessionState: boolean;
}

/** The server goes, its place in the pool with it. */
export function dropServer(pool: Pool, server: ServerConnection, reason: string): void {
  server.close(reason);
  pool.release(server, false);
}

/**
 * The server is reused only if it is between messages: idle ones are reset, open transactions
 * rolled back first; a server that still owes replies or holds half a message is closed rather than
 * handed to someone else mid-pipeline. One busy with the pooler's own query for the client (a
 * session probe, a settings sync; the client was ended by a timeout or KILL_CLIENT meanwhile) is
 * cleaned once that has ended.
 */
export function returnServer(pool: Pool, server: ServerConnection, left: LeftBehind): void {
  if (server.state !== "active") return;
  if (server.owedToClient > 0 || left.midRequest)
    return dropServer(pool, server, "client disconnect while server was not ready");
  // Session state the client may have left (advisory locks, LISTEN, temp tables, …, or not
  // probed yet) must not reach the next client, whatever server_reset_query says; nor what the
  // pooler's own query for it was setting up as it left (a settings sync, whose outcome nobody
  // records now: the next client's sync would start from a stale picture of the server).
  const cleanup = server.txStatus === "I" ? [] : ["ROLLBACK"];
  if ((left.pooled && left.sessionState) || server.runsOwnQuery) {
    // DISCARD ALL would also drop what connect_query made there (its PREPARE, temporary tables),
    // which the next clients use, and which the sync cannot replay: a new server runs it again.
    if (server.baseline.held.size > 0)
      return dropServer(
        pool,
        server,
        "client left session state on a server holding connect_query's objects",
      );
    cleanup.push("DISCARD ALL");
  }
  // server_reset_query is session pooling's (or server_reset_query_always's), as in PgBouncer
  const reset = !left.pooled && !cleanup.includes("DISCARD ALL");
  if (cleanup.length === 0) pool.release(server, reset);
  else pool.cleanAndRelease(server, cleanup, reset);
}
