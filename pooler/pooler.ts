// The running pooler: its configuration, pools, clients and cancel keys; what client connections
// and pools ask of the whole (limits across pools, auth lookups, cancel routing, reload, shutdown).
import net from "node:net";
import pg from "pg";
import type { AdminConsole } from "./admin/console.ts";
import { ClientConnection, type ClientHost } from "./client.ts";
import type { DatabaseDef, PoolerConfig, UserSecret } from "./config/types.ts";
import { classifySecret } from "./config/index.ts";
import { Janitor } from "./janitor.ts";
import { listen, type Listener } from "./listener.ts";
import type { Logger } from "./log.ts";
import { Pool, type PoolRegistry, type PoolSettings } from "./pool.ts";
import { cancelRequest } from "./protocol/messages.ts";
import { SqlState } from "./protocol/sqlstate.ts";
import type { ServerCredentials } from "./server.ts";

export class Pooler implements ClientHost, PoolRegistry {
  readonly pools = new Map<string, Pool>();
  readonly clients = new Set<ClientConnection>();
  private readonly cancelKeys = new Map<string, ClientConnection>();
  /** Databases made up for names matched by the "*" entry (PgBouncer's autodb). */
  private readonly autoDatabases = new Map<string, DatabaseDef>();
  /** Secrets learnt through auth_query, until the next RELOAD. */
  private readonly queriedSecrets = new Map<string, UserSecret>();
  private listener: Listener | null = null;
  private readonly janitor: Janitor;
  shuttingDown = false;
  readonly startTime = Date.now();
  admin: AdminConsole | null = null;

  constructor(
    public config: PoolerConfig,
    readonly log: Logger,
  ) {
    this.janitor = new Janitor(this);
  }

  static async start(config: PoolerConfig, log: Logger): Promise<Pooler> {
    const pooler = new Pooler(config, log);
    pooler.listener = await listen(pooler, pooler.clients, config.listenAddr, config.listenPort);
    pooler.janitor.start();
    log.info({ addr: config.listenAddr, port: pooler.port }, "listening");
    return pooler;
  }

  get port(): number {
    return (this.listener!.server.address() as net.AddressInfo).port;
  }

  // ---- ClientHost ----

  findDatabase(name: string): DatabaseDef | undefined {
    const exact = this.config.databases.get(name);
    if (exact) return exact;
    const fallback = this.config.databases.get("*");
    if (!fallback) return undefined;
    let auto = this.autoDatabases.get(name);
    if (!auto) {
      auto = { ...fallback, name, dbname: name };
      this.autoDatabases.set(name, auto);
    }
    return auto;
  }

  async lookupSecret(user: string, db: DatabaseDef): Promise<UserSecret | undefined> {
    const known = this.config.authUsers.get(user) ?? this.queriedSecrets.get(user);
    if (known || this.config.authUser === undefined) return known;
    const secret = await this.authQuery(user, db);
    if (secret) this.queriedSecrets.set(user, secret);
    return secret;
  }

  /**
   * auth_query, run as auth_user on the client's database (or auth_dbname). A side path taken once
   * per unknown user, so it uses the `pg` driver rather than the pooler's own connections.
   */
  private async authQuery(user: string, db: DatabaseDef): Promise<UserSecret | undefined> {
    const authUser = this.config.authUser!;
    const authSecret = this.config.authUsers.get(authUser);
    const client = new pg.Client({
      host: db.host,
      port: db.port,
      database: this.config.authDbname ?? db.dbname ?? db.name,
      user: authUser,
      password: authSecret?.kind === "plain" ? authSecret.secret : db.password,
      connectionTimeoutMillis: this.config.serverConnectTimeout,
    });
    await client.connect();
    try {
      const { rows } = await client.query<string[]>({ text: this.config.authQuery, values: [user], rowMode: "array" });
      const secret = rows[0]?.[1];
      return secret ? { name: user, kind: classifySecret(secret), secret } : undefined;
    } finally {
      await client.end();
    }
  }

  poolFor(db: DatabaseDef, user: string, credentials: ServerCredentials): Pool {
    const serverUser = credentials.user;
    const key = `${db.name}\u0000${serverUser}`;
    let pool = this.pools.get(key);
    if (pool) {
      pool.updateCredentials(credentials);
      return pool;
    }
    pool = new Pool(db, serverUser, credentials, this.poolSettings(db, serverUser), this, this.log);
    this.pools.set(key, pool);
    this.log.debug({ pool: pool.name, client_user: user }, "new pool");
    return pool;
  }

  poolSettings(db: DatabaseDef, user: string): PoolSettings {
    const c = this.config;
    const u = c.users.get(user);
    return {
      mode: u?.poolMode ?? db.poolMode ?? c.poolMode,
      size: u?.poolSize ?? db.poolSize ?? c.defaultPoolSize,
      minSize: db.minPoolSize ?? c.minPoolSize,
      reserveSize: db.reservePool ?? c.reservePoolSize,
      reserveTimeout: c.reservePoolTimeout,
      maxDbConnections: db.maxDbConnections ?? c.maxDbConnections,
      maxUserConnections: u?.maxUserConnections ?? c.maxUserConnections,
      roundRobin: c.serverRoundRobin,
      resetQuery: c.serverResetQuery,
      resetQueryAlways: c.serverResetQueryAlways,
      lifetime: c.serverLifetime,
      loginRetry: c.serverLoginRetry,
      connectTimeout: c.serverConnectTimeout,
      maxPacketSize: c.maxPacketSize,
    };
  }

  registerCancelKey(client: ClientConnection): void {
    do client.newCancelKey();
    while (this.cancelKeys.has(cancelKey(client.cancelPid, client.cancelSecret)));
    this.cancelKeys.set(cancelKey(client.cancelPid, client.cancelSecret), client);
  }

  /** A CancelRequest: forwarded, on a new connection, to the server the client is using now. */
  cancel(pid: number, secret: number): void {
    const server = this.cancelKeys.get(cancelKey(pid, secret))?.server;
    if (!server || server.state === "closed") return;
    const { host, port } = server.target;
    const sock = net.connect({ host, port }, () => sock.end(cancelRequest(server.backendPid, server.backendSecret)));
    sock.on("error", (err) => this.log.warn({ err: err.message }, "could not forward cancel request"));
  }

  clientClosed(client: ClientConnection): void {
    this.clients.delete(client);
    if (client.cancelPid) this.cancelKeys.delete(cancelKey(client.cancelPid, client.cancelSecret));
  }

  adminMessage(client: ClientConnection, type: number, msg: Buffer): void {
    if (this.admin) this.admin.message(client, type, msg);
    else client.refuse(SqlState.FeatureNotSupported, "the admin console is not available");
  }

  isAdminUser(user: string): "admin" | "stats" | null {
    if (this.config.adminUsers.includes(user)) return "admin";
    if (this.config.statsUsers.includes(user)) return "stats";
    return null;
  }

  // ---- PoolRegistry ----

  serverCount(db: string, user: string): { db: number; user: number } {
    let dbCount = 0;
    let userCount = 0;
    for (const pool of this.pools.values()) {
      if (pool.db.name === db) dbCount += pool.serverCount;
      if (pool.user === user) userCount += pool.serverCount;
    }
    return { db: dbCount, user: userCount };
  }

  serverSlotFreed(db: string, user: string): void {
    for (const pool of this.pools.values()) {
      if ((pool.db.name === db || pool.user === user) && pool.waiting.length > 0) pool.dispatch();
    }
  }

  // ---- control ----

  /** SIGHUP / RELOAD: new settings apply to every pool; servers of changed databases are replaced. */
  reload(config: PoolerConfig): void {
    const old = this.config;
    this.config = config;
    this.autoDatabases.clear();
    this.queriedSecrets.clear();
    for (const pool of this.pools.values()) {
      const db = this.findDatabase(pool.db.name);
      const before = old.databases.get(pool.db.name) ?? old.databases.get("*");
      if (!db || db.host !== before?.host || db.port !== before?.port || db.dbname !== before?.dbname) {
        pool.reconnect();
      }
      if (db) pool.settings = this.poolSettings(db, pool.user);
    }
    this.log.info("configuration reloaded");
  }

  /**
   * Graceful shutdown (PgBouncer 1.23+): stop accepting, close clients as soon as they are between
   * transactions, and after `timeoutMs` close whatever is left.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.log.info({ timeout_ms: timeoutMs }, "shutting down: waiting for transactions to finish");
    const stopped = this.listener?.stop();
    const deadline = Date.now() + timeoutMs;
    while (this.closeIdleClients() > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const client of [...this.clients]) client.refuse(SqlState.AdminShutdown, "pooler is shutting down");
    for (const pool of this.pools.values()) for (const s of pool.allServers()) s.close("pooler shutdown");
    this.janitor.stop();
    await stopped;
    this.log.info("shut down");
  }

  /** Closes clients that hold no server; returns how many still do. */
  private closeIdleClients(): number {
    let busy = 0;
    for (const client of [...this.clients]) {
      if (client.server === null) client.refuse(SqlState.AdminShutdown, "pooler is shutting down");
      else busy++;
    }
    return busy;
  }
}

function cancelKey(pid: number, secret: number): string {
  return `${pid}:${secret}`;
}
