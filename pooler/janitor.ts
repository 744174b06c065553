// Periodic maintenance, as PgBouncer's janitor: every timeout, server lifetime and idle limits,
// min_pool_size, and retrying queued clients (reserve pool, server_login_retry) run from one timer.
import type { ClientConnection } from "./client.ts";
import * as clock from "./clock.ts";
import type { Pool } from "./pool.ts";
import type { Pooler } from "./pooler.ts";
import { SqlState } from "./protocol/sqlstate.ts";

/** PgBouncer runs "full maintenance 3x per second". */
const TICK_MS = 333;

export class Janitor {
  private timer: NodeJS.Timeout | null = null;

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
  }

  private checkClient(client: ClientConnection, now: number): void {
    const c = this.pooler.config;
    const server = client.server;
    switch (client.state) {
      case "login":
        if (over(now, client.connectTime, c.clientLoginTimeout))
          client.refuse(SqlState.ProtocolViolation, "client_login_timeout");
        return;
      case "waiting":
        if (over(now, client.waitStart, c.queryWaitTimeout))
          client.refuse(SqlState.ProtocolViolation, "query_wait_timeout");
        return;
      case "active":
        // Idle is counted from the last traffic: a transaction from the server's last message (as
        // PgBouncer), a client holding a server from whichever side spoke last, so a long query's
        // reply ends either. (PgBouncer never applies client_idle_timeout to a client with a server;
        // ours does, or half a message would hold a server forever.)
        if (server === null) return;
        if (server.pendingReplies > 0) {
          if (over(now, client.queryStartedAt, c.queryTimeout))
            client.refuse(SqlState.QueryCanceled, "query timeout");
        } else if (server.txStatus !== "I") {
          if (over(now, server.lastActivity, c.idleTransactionTimeout))
            client.refuse(SqlState.IdleInTransactionTimeout, "idle transaction timeout");
        } else if (over(now, Math.max(client.lastActivity, server.lastActivity), c.clientIdleTimeout)) {
          client.refuse(SqlState.ProtocolViolation, "client_idle_timeout");
        }
        return;
      case "idle":
      case "admin":
        if (over(now, client.lastActivity, c.clientIdleTimeout))
          client.refuse(SqlState.ProtocolViolation, "client_idle_timeout");
        return;
      case "closed":
        return;
    }
  }

  private checkPool(pool: Pool, now: number): void {
    const c = this.pooler.config;
    // Lifetime closes are spread out, one per pool per tick, so a pool never reconnects all at once.
    let lifetimeClosed = false;
    for (const server of [...pool.idle]) {
      // As PgBouncer (since 1.19), not below min_pool_size: those would only be opened again.
      const idleTooLong = c.serverIdleTimeout > 0 && now - server.lastActivity > c.serverIdleTimeout;
      if (idleTooLong && pool.serverCount > pool.settings.minSize) {
        server.close("server idle timeout");
      } else if (
        !lifetimeClosed &&
        pool.settings.lifetime > 0 &&
        now - server.connectTime > pool.settings.lifetime
      ) {
        server.close("server lifetime over");
        lifetimeClosed = true;
      }
    }
    // A server that does not answer the pooler's own query (a hung backend, a lost network) would
    // hold its slot until TCP gives up. PgBouncer closes a server its client left mid-transaction
    // at once; ours rolls it back to keep it, within server_connect_timeout. The backend is told to
    // cancel too: a closed socket alone leaves a slow statement running past the pool's size.
    for (const server of pool.used) {
      if (!over(now, server.usedSince, pool.settings.connectTimeout)) continue;
      this.pooler.sendCancel(server);
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
    const missing = pool.settings.minSize - pool.serverCount;
    for (let i = 0; i < missing && pool.canLaunch(false); i++) pool.launch(false);
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
