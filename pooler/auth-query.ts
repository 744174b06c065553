// auth_query: the secret of a user missing from the auth file, asked of PostgreSQL as auth_user,
// on a server of auth_user's pool for the database (auth_dbname's entry), as PgBouncer runs it: kept
// open and reused, so a storm of logins costs no backend per client, and listed by SHOW POOLS and
// SERVERS. auth_user logs in with whatever the pooler's servers can: a plain password or an md5
// hash from the auth file (the edoburu image writes md5 hashes), or the database entry's password.
import { timerDelay } from "./clock.ts";
import type { DatabaseDef, PoolerConfig, UserSecret } from "./config/types.ts";
import { classifySecret } from "./config/userlist.ts";
import type { Pool, PoolClient } from "./pool.ts";
import type { ServerConnection, ServerCredentials } from "./server.ts";

/** One lookup: `user`'s secret, asked on a server of `pool` (auth_user's), until `gone` aborts. */
export interface AuthLookup {
  pool: Pool;
  sql: string;
  user: string;
  /** query_wait_timeout (ms, 0 = none): how long the lookup may wait for a server. */
  waitLimit: number;
  gone: AbortSignal;
  /** Sends a CancelRequest for `server`'s backend, counted in its cancelsInFlight until PostgreSQL acted. */
  cancel: (server: ServerConnection) => void;
}

/** How auth_user logs in to `db`: a SCRAM secret cannot, only a client's own SCRAM exchange yields its keys. */
export function authUserCredentials(
  config: PoolerConfig,
  db: DatabaseDef,
  authUser: string,
): ServerCredentials {
  const fileSecret = config.authUsers.get(authUser);
  const password = fileSecret && fileSecret.kind !== "scram" ? fileSecret.secret : db.password;
  return password === undefined ? { user: authUser } : { user: authUser, password };
}

let lookupIds = 0;

/**
 * Runs auth_query for `user` on a server of auth_user's pool, waiting for one as a client does: the
 * pool's login retry rules apply (a restarting server is waited for; after a wrong password,
 * lookups are refused for server_login_retry, not one failed login at PostgreSQL per client), and
 * its host list and TLS. The pool opens its servers one at a time (Pool.oneLoginAtATime), so a
 * changed auth_user password costs a burst one failed login. Abandoned once `gone` aborts (the
 * client left, or client_login_timeout): dequeued, or its query canceled (PostgreSQL 13 would run
 * it to its end, a lock wait: for ever) and the server reused only once the cancel has landed and
 * the query ended (the janitor closes it past server_connect_timeout).
 */
export async function lookupByAuthQuery(lookup: AuthLookup): Promise<UserSecret | undefined> {
  const { pool, gone } = lookup;
  const server = await serverFor(lookup);
  const abandon = (): void => {
    if (server.state === "closed") return; // the pool has let it go
    if (server.runsOwnQuery) lookup.cancel(server);
    pool.cleanAndRelease(server, [], false);
  };
  gone.addEventListener("abort", abandon, { once: true });
  let rows;
  try {
    // a parameter, not text pasted into the SQL: the user name is the client's to choose
    rows = await server.queryInternal(lookup.sql, [lookup.user]);
  } catch (err) {
    if (gone.aborted) throw gone.reason;
    gone.removeEventListener("abort", abandon);
    // the server's error (the query is wrong, say): the server is fine; a lost one is gone already
    pool.release(server, false);
    throw err;
  }
  // abandoned as it answered: the server is on its way back already
  if (gone.aborted) throw gone.reason;
  gone.removeEventListener("abort", abandon);
  // its implicit transaction ended at Sync, unless the query itself opened one
  if (server.txStatus === "I") pool.release(server, false);
  else pool.cleanAndRelease(server, ["ROLLBACK"], false);
  if (rows[0] === undefined) return undefined;
  // A row with no password (NULL: none set, or rolvaliduntil past) is a user all the same, as in
  // PgBouncer: taken as an empty password, it matches none, and trust lets the user in.
  const secret = rows[0][1] ?? "";
  return { name: lookup.user, kind: classifySecret(secret), secret };
}

/** A server of the pool for the lookup, once one is free (in PgBouncer, the login waits in the pool). */
function serverFor({ pool, waitLimit, gone }: AuthLookup): Promise<ServerConnection> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      gone.removeEventListener("abort", onGone);
    };
    const waiter: PoolClient = {
      id: --lookupIds,
      // not one of the pool's clients (clientCount): a login waiting, as PgBouncer's
      loggingIn: true,
      waitStart: 0,
      assign(server) {
        waiter.waitStart = 0;
        done();
        resolve(server);
      },
      refuse(_code, message) {
        done();
        reject(new Error(message));
      },
      notice: () => undefined,
    };
    const giveUp = (err: unknown): void => {
      pool.dequeue(waiter);
      done();
      reject(err);
    };
    const onGone = (): void => giveUp(gone.reason);
    const timer =
      waitLimit > 0
        ? setTimeout(() => giveUp(new Error("query_wait_timeout")), timerDelay(waitLimit))
        : undefined;
    if (gone.aborted) return onGone();
    gone.addEventListener("abort", onGone, { once: true });
    pool.oneLoginAtATime = true;
    pool.enqueue(waiter);
  });
}
