// auth_query: the secret of a user missing from the auth file, asked of PostgreSQL as auth_user.
// It runs on a server connection of the pooler's own, so auth_user may log in with whatever the
// pooler's servers can: a plain password or an md5 hash from the auth file (the edoburu image
// writes md5 hashes), or the database entry's password, over TLS as server_tls_sslmode says.
import type net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { timerDelay } from "./clock.ts";
import type { ServerTls } from "./config/tls.ts";
import type { DatabaseDef, PoolerConfig, UserSecret } from "./config/types.ts";
import { classifySecret } from "./config/userlist.ts";
import { parseHostList } from "./host-list.ts";
import { keepaliveOf } from "./keepalive.ts";
import { isRestarting, LoginRetry } from "./login-retry.ts";
import { ServerConnection } from "./server.ts";
import { dialTarget } from "./unix-socket.ts";

/** How the pooler reaches its servers: server_tls_*, and its DNS cache for host names. */
export interface Dial {
  tls: ServerTls | null;
  lookup: net.LookupFunction;
}

/** One lookup: `user`'s secret, asked as `authUser` of `db`'s servers (auth_dbname's entry), until `gone` aborts. */
export interface AuthLookup {
  config: PoolerConfig;
  dial: Dial;
  db: DatabaseDef;
  authUser: string;
  user: string;
  gone: AbortSignal;
  logins: LookupLogins;
}

/** authUser's logins to one database, shared by its lookups as a pool's by its clients. */
export class LookupLogins {
  readonly retry = new LoginRetry();
  /** The login in flight, settled once it got in or failed: lookups arriving meanwhile wait for it. */
  pending: Promise<void> | null = null;
}

/**
 * Runs auth_query for `user` as `authUser`, on a connection opened for it and closed after; with a
 * host list, on the first host that lets auth_user in. A server that is restarting is tried again
 * under the pools' login retry rules, within query_wait_timeout: in PgBouncer the lookup waits for
 * a pooled server of auth_user's, as a client waits for one, where a refusal at once would fail a
 * login that a moment later succeeds. Abandoned once `gone` aborts (the client that waits for it
 * left, or was ended at client_login_timeout): its query canceled, its connection closed. After
 * a login that failed for good (a wrong password), lookups fail at once for server_login_retry, as
 * PgBouncer's pool of auth_user refuses: not one failed login at PostgreSQL per client. Lookups
 * log in one at a time, each once the one before got in (their queries run side by side), as
 * PgBouncer 1.18 opens auth_user's servers: a burst of them costs one failed login, also when
 * auth_user's password changes after a login got in.
 */
export async function lookupByAuthQuery(lookup: AuthLookup): Promise<UserSecret | undefined> {
  const { config, db, gone, logins } = lookup;
  const { retry } = logins;
  const waitLimit = db.queryWaitTimeout ?? config.queryWaitTimeout;
  const start = Date.now();
  for (;;) {
    if (logins.pending !== null) {
      await unlessGone(logins.pending, gone);
      continue;
    }
    if (!retry.clientsMayWait && Date.now() < retry.retryAfter) throw new Error(retry.refusal().message);
    // a restarting server is probed again at retryAfter (a failure another lookup reported too)
    const wait = Math.max(0, retry.retryAfter - Date.now());
    if (wait > 0) {
      if (waitLimit > 0 && Date.now() + wait - start > waitLimit)
        throw retry.error ?? new Error("server login failed");
      await sleep(timerDelay(wait), undefined, { signal: gone });
      continue;
    }
    let settle = (): void => undefined;
    const login = new Promise<void>((resolve) => (settle = resolve));
    logins.pending = login;
    // the lookups waiting look at the record again: refused, or one of them logs in next
    const settled = (): void => {
      if (logins.pending === login) logins.pending = null;
      settle();
    };
    const attemptStart = Date.now();
    try {
      return await lookupOnHosts(lookup, () => {
        retry.succeeded();
        settled();
      });
    } catch (err) {
      if (!(err instanceof LoginFailed) || gone.aborted) throw err;
      retry.failed(err, err.restarting, attemptStart, config.serverLoginRetry);
      if (!retry.clientsMayWait) throw err;
    } finally {
      settled();
    }
  }
}

/** `promise`'s outcome, unless `gone` aborts first (rejects as an aborted timer does). */
function unlessGone<T>(promise: Promise<T>, gone: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const abort = (): void => reject(gone.reason);
    if (gone.aborted) return abort();
    gone.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => gone.removeEventListener("abort", abort));
  });
}

/** `loggedIn` is called once auth_user is in, before the query. */
async function lookupOnHosts(lookup: AuthLookup, loggedIn: () => void): Promise<UserSecret | undefined> {
  const hosts = parseHostList(lookup.db.host);
  for (let i = 0; ; i++) {
    try {
      return await lookupOn(hosts[i]!, lookup, loggedIn);
    } catch (err) {
      if (i === hosts.length - 1 || !(err instanceof LoginFailed) || lookup.gone.aborted) throw err;
    }
  }
}

const ignore = (): void => undefined;

/** The login to the server failed (the lookup itself did not run); `restarting` as login-retry.ts judges it. */
class LoginFailed extends Error {
  constructor(
    message: string,
    readonly restarting: boolean,
  ) {
    super(message);
  }
}

async function lookupOn(
  host: string,
  { config, dial, db, authUser, user, gone }: AuthLookup,
  loggedIn: () => void,
): Promise<UserSecret | undefined> {
  const fileSecret = config.authUsers.get(authUser);
  const { server, ready } = ServerConnection.connect(
    {
      ...dialTarget(host, config.unixSocketDir, dial.tls),
      port: db.port,
      database: db.dbname ?? db.name,
      credentials: {
        user: authUser,
        // a SCRAM secret cannot log in: only a client's own SCRAM exchange yields its keys
        password: fileSecret && fileSecret.kind !== "scram" ? fileSecret.secret : db.password,
      },
      startupParams: {},
      connectTimeout: config.serverConnectTimeout,
      maxPacketSize: config.maxPacketSize,
      keepalive: keepaliveOf(config),
      lookup: dial.lookup,
    },
    () => undefined,
  );
  const abandon = (): void => {
    // PostgreSQL 13 would run the query to its end (a lock wait: for ever) for a socket no one reads
    if (server.runsOwnQuery) server.sendCancel(config.serverConnectTimeout, ignore, ignore);
    server.close("auth_query abandoned: its client is gone");
  };
  if (gone.aborted) abandon();
  else gone.addEventListener("abort", abandon, { once: true });
  try {
    await ready.catch((err: Error) => {
      throw new LoginFailed(err.message, isRestarting(err, server));
    });
    loggedIn();
    // a parameter, not text pasted into the SQL: the user name is the client's to choose
    const rows = await server.queryInternal(config.authQuery, [user]);
    if (rows[0] === undefined) return undefined;
    // A row with no password (NULL: none set, or rolvaliduntil past) is a user all the same, as in
    // PgBouncer: taken as an empty password, it matches none, and trust lets the user in.
    const secret = rows[0][1] ?? "";
    return { name: user, kind: classifySecret(secret), secret };
  } finally {
    gone.removeEventListener("abort", abandon);
    server.close("auth_query done");
  }
}
