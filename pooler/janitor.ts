// Periodic maintenance, as PgBouncer's janitor: every timeout, server lifetime and idle limits,
// min_pool_size, and retrying queued clients (reserve pool, server_login_retry) run from one timer.
import type { ClientConnection } from "./client.ts";
import * as clock from "./clock.ts";
import type { Pool, PoolClient, PoolSettings } from "./pool.ts";
import type { Pooler } from "./pooler.ts";
import { SqlState } from "./protocol/sqlstate.ts";

type ClientTimeouts = Pick<
  PoolSettings,
  "queryTimeout" | "queryWaitTimeout" | "idleTransactionTimeout" | "transactionTimeout" | "clientIdleTimeout"
>;

/** PgBouncer runs "full maintenance 3x per second". */
const TICK_MS = 333;

export class Janitor {
  private timer: NodeJS.Timeout | null = null;
  /** Clients query_wait_notify has told (weakly held: nothing to forget when they go). */
  private readonly toldQueued = new WeakSet<PoolClient>();

  constructor(private readonly pooler: Pooler) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  tick(): void {
    const now = clock.now();
    // The registry's walk survives the deletion of the client it is on (a refused client leaves it),
    // so 10,000 clients need no copy three times a second.
    this.pooler.clients.forEach((client) => this.checkClient(client, now));
    for (const pool of this.pooler.pools.values()) this.checkPool(pool, now);
    this.pooler.pruneAutoDatabases(now);
    this.pooler.prunePools(now);
    this.pooler.checkAuthFile();
  }

  private checkClient(client: ClientConnection, now: number): void {
    const c = this.pooler.config;
    // the pool's user's own timeouts where [users] sets them
    const limits: ClientTimeouts = client.pool?.settings ?? c;
    const server = client.server;
    switch (client.state) {
      case "login":
        // as PgBouncer's: its cancel_wait_timeout bounds it, and closed sooner it would say the
        // cancel was acted on while it may still be on its way to the next query
        if (client.holdsCancel) return;
        if (over(now, client.connectTime, c.clientLoginTimeout))
          client.refuse(SqlState.ProtocolViolation, "client_login_timeout");
        // queued for a server to take its startup settings: a wait for a server as any (PgBouncer's CL_WAITING_LOGIN)
        else this.checkWait(client, now, limits);
        return;
      case "waiting":
        this.checkWait(client, now, limits);
        return;
      case "active": {
        // Idle is counted from the last traffic: a transaction from the server's last message (as
        // PgBouncer), a client holding a server from whichever side spoke last, so a long query's
        // reply ends either. (PgBouncer never applies client_idle_timeout to a client with a server;
        // ours does, or half a message would hold a server forever.)
        if (server === null) return;
        const queryStart = client.queryStartedAt;
        if (queryStart > 0) {
          if (over(now, queryStart, limits.queryTimeout))
            return this.endForTimeout(client, SqlState.QueryCanceled, "query timeout");
        } else if (server.txStatus !== "I") {
          // the server closed with it, as by PgBouncer (and PostgreSQL's idle_in_transaction_session_timeout)
          if (over(now, server.lastActivity, limits.idleTransactionTimeout))
            return client.refuse(SqlState.IdleInTransactionTimeout, "idle transaction timeout", true);
        } else if (over(now, Math.max(client.lastActivity, server.lastActivity), limits.clientIdleTimeout)) {
          return client.refuse(SqlState.ProtocolViolation, "client_idle_timeout");
        }
        // a transaction, or a statement outside one, from its first message to the server
        if (
          (server.txStatus !== "I" || queryStart > 0) &&
          over(now, server.xactStart, limits.transactionTimeout)
        ) {
          this.endForTimeout(client, SqlState.TransactionTimeout, "transaction timeout");
        }
        return;
      }
      case "idle":
      case "admin":
        if (over(now, client.lastActivity, limits.clientIdleTimeout))
          client.refuse(SqlState.ProtocolViolation, "client_idle_timeout");
        return;
      case "closed":
        return;
    }
  }

  /**
   * A client waiting for a server. Queued in its pool, it is ended by query_timeout as well, as by
   * PgBouncer: a query not yet sent to a server runs too long all the same. Waiting on a server it
   * already has (its session probe, its settings' SET), only query_wait_timeout bounds the pooler's query;
   * without it, server_connect_timeout bounds the probe, as it does the pooler's other own queries (a
   * lock held on a catalog would hold the client for ever).
   */
  private checkWait(client: ClientConnection, now: number, limits: ClientTimeouts): void {
    if (client.server === null && over(now, client.waitStart, limits.queryTimeout))
      client.refuse(SqlState.ProtocolViolation, "query_timeout");
    else if (over(now, client.waitStart, limits.queryWaitTimeout))
      client.refuse(SqlState.ProtocolViolation, "query_wait_timeout");
    else if (
      client.probing &&
      limits.queryWaitTimeout === 0 &&
      over(now, client.waitStart, client.pool!.settings.connectTimeout)
    )
      client.refuse(
        SqlState.ConnectionFailure,
        "could not inspect the session state: no answer within server_connect_timeout",
      );
  }

  /** query_wait_notify: a logged-in client queued that long is told why it waits, once, as by PgBouncer. */
  private notifyQueued(pool: Pool, afterMs: number): void {
    for (const client of pool.queuedBefore(performance.now() - afterMs)) {
      if (client.loggingIn || this.toldQueued.has(client)) continue;
      this.toldQueued.add(client);
      client.notice("No server connection available in postgres backend, client being queued");
    }
  }

  /**
   * server_fast_close: a server RECONNECT or RELOAD marked, kept between transactions by its client
   * (session pooling, or a pinned client), is closed at the end of the transaction, client and all,
   * instead of when the client leaves. A transaction in progress is never cut.
   */
  private fastClose(pool: Pool): void {
    for (const server of [...pool.active]) {
      const client = server.client;
      if (!server.closeNeeded || client === null || server.txStatus !== "I" || !client.betweenRequests)
        continue;
      client.refuse(SqlState.AdminShutdown, "database configuration changed");
    }
  }

  /**
   * A timeout ends the client; a statement still running is canceled too. Closing the connection
   * alone leaves it running on PostgreSQL, which notices only when it next writes to the client.
   */
  private endForTimeout(client: ClientConnection, code: string, message: string): void {
    // the server is closed with the client then (a request under way): the cancel hits no one else
    if (client.server !== null && client.pool !== null && client.queryStartedAt > 0)
      this.pooler.sendCancel(client.pool, client.server);
    client.refuse(code, message);
  }

  private checkPool(pool: Pool, now: number): void {
    const c = this.pooler.config;
    if (c.queryWaitNotify > 0 && !pool.paused) this.notifyQueued(pool, c.queryWaitNotify * 1000);
    if (c.serverFastClose) this.fastClose(pool);
    for (const server of [...pool.idle]) {
      // Not below min_pool_size, as PgBouncer (1.18 measured side by side): those would only be opened again.
      const idleTooLong = c.serverIdleTimeout > 0 && now - server.lastActivity > c.serverIdleTimeout;
      if (idleTooLong && pool.serverCount > pool.settings.minSize) server.close("server idle timeout");
      else if (pool.lifeOver(server, now)) pool.closeForLifetime(server);
    }
    // A server that does not answer the pooler's own query (a hung backend, a lost network) would
    // hold its slot until TCP gives up. PgBouncer closes a server its client left mid-transaction
    // at once; ours rolls it back to keep it, within server_connect_timeout. The backend is told to
    // cancel too: a closed socket alone leaves a slow statement running past the pool's size.
    for (const server of pool.used) {
      if (!over(now, server.usedSince, pool.settings.connectTimeout)) continue;
      this.pooler.sendCancel(pool, server);
      server.close(`no answer to the pooler's own query within server_connect_timeout`);
    }
    // SET default_pool_size (or RELOAD) made the pool smaller: the oldest idle servers above the
    // size and reserve close, as PgBouncer's check_pool_size closes them
    const { size, reserveSize } = pool.settings;
    for (let extra = pool.serverCount - size - reserveSize; size > 0 && extra > 0; extra--) {
      const oldest = pool.idle[0];
      if (oldest === undefined) break;
      oldest.close("too many servers in the pool");
    }
    // As PgBouncer, only for a pool in use (a client logged in or waiting) or a database with a
    // forced user: a pool whose clients all left keeps the servers it has, but opens none to
    // replace those lost (a PostgreSQL restart, server_lifetime), nor retries a failing login for no one.
    // One server a tick, as PgBouncer: a burst of min_pool_size logins at once would hit PostgreSQL
    // (and every pool's at once after it restarts).
    const inUse = pool.clientCount > 0 || pool.wantsServer || Boolean(pool.db.user);
    if (inUse && pool.serverCount < pool.settings.minSize && pool.canLaunch(false)) pool.launch(false);
    if (pool.wantsServer) pool.dispatch();
  }
}

/**
 * A time that is set (non-zero) and more than `limit` ms before `now`; a limit of 0 is off. A
 * function, not a closure per client: the janitor walks every client three times a second, and
 * an idle pooler that makes garbage keeps V8 from returning its memory.
 */
function over(now: number, since: number, limit: number): boolean {
  return limit > 0 && since > 0 && now - since > limit;
}
