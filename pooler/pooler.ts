// The running pooler: its configuration, pools, clients and cancel keys; what client connections
// and pools ask of the whole (limits across pools, auth lookups, cancel routing, reload, shutdown).
import { SqlConsole, type AdminConsole } from "./admin/console.ts";
import { AuthFileWatch } from "./auth-file-watch.ts";
import { authUserCredentials, lookupByAuthQuery } from "./auth-query.ts";
import type { CancelConnection, HeldCancel } from "./cancel-request.ts";
import type { ClientConnection, ClientHost } from "./client.ts";
import { ADMIN_DB } from "./client-login.ts";
import { ClientCounts, type ClientLimit } from "./client-limits.ts";
import type { DatabaseDef, PoolerConfig, UserSecret } from "./config/types.ts";
import {
  applySetting,
  buildTls,
  checkConfig,
  ConfigError,
  isTlsSetting,
  loadConfig,
  MAX_DBNAME,
  tlsSettingsChanged,
  type ApplyResult,
  type ClientTls,
  type LoadedConfig,
  type TlsSetup,
} from "./config/index.ts";
import { Janitor } from "./janitor.ts";
import { keepaliveOf } from "./keepalive.ts";
import { listen, type Listener } from "./listener.ts";
import { logLevel, type Logger } from "./log.ts";
import { MetricsServer } from "./metrics.ts";
import { Pool, forcedCredentials, type PoolRegistry, type PoolSettings } from "./pool.ts";
import { ClientRegistry } from "./client-registry.ts";
import { DnsCache } from "./dns-cache.ts";
import { PeerForwarder, type PeerHost } from "./peers.ts";
import { SqlState } from "./protocol/sqlstate.ts";
import type { ServerConnection, ServerCredentials } from "./server.ts";
import { StatsPeriod, type PoolStats } from "./stats.ts";
import { socketErrorText } from "./unix-socket.ts";

/**
 * How long a forwarded cancel may take when cancel_wait_timeout and server_connect_timeout are 0:
 * a server with a cancel on its way goes to no client until it is done.
 */
const CANCEL_TIMEOUT_MS = 15_000;

/** PgBouncer 1.18's warning for a forced user= a RELOAD drops (loader.c). */
const FORCED_USER_KEPT = "losing forced user not supported, keeping old setting";

/** SHUTDOWN WAIT_FOR_SERVERS (and signals) or WAIT_FOR_CLIENTS. */
export type ShutdownWait = "servers" | "clients";

export class Pooler implements ClientHost, PoolRegistry, PeerHost {
  readonly pools = new Map<string, Pool>();
  readonly clients: ClientRegistry;
  /** Cancel requests for other poolers of the group (peer_id, [peers]). */
  readonly peers: PeerForwarder;
  /** Clients per database and per login user, for max_db_client_connections and the like. */
  readonly clientCounts = new ClientCounts();
  /** Server and peer host names, looked up once per dns_max_ttl. */
  readonly dns = new DnsCache(
    () => ({ maxTtl: this.config.dnsMaxTtl, nxdomainTtl: this.config.dnsNxdomainTtl }),
    (host, gone) => {
      for (const pool of this.pools.values()) pool.addressesGone(host, gone);
    },
  );
  /** Databases made up for names matched by the "*" entry (PgBouncer's autodb). */
  private readonly autoDatabases = new Map<string, DatabaseDef>();
  /** Every database findDatabase made up from "*", before a RELOAD as after. */
  private readonly madeUp = new WeakSet<DatabaseDef>();
  /** Entries RELOAD gave back the forced user= their file no longer names (keepForcedUsers). */
  private readonly keptForcedUsers = new WeakSet<DatabaseDef>();
  /** Auto-databases made while "*" forced a user it no longer does: the old ones, by name (keepForcedUsers). */
  private autoForcedUsers = new Map<string, DatabaseDef>();
  /** Since when each auto-database has had no clients and no servers (ms). */
  private readonly autoDatabaseUnusedSince = new Map<string, number>();
  /** Since when each pool has been unused, for pool_idle_timeout. */
  private readonly poolUnusedSince = new Map<Pool, number>();
  /** Pools whose waiting clients found a shared server limit full and no idle server to evict. */
  private readonly heldBack = new Set<Pool>();
  private listener: Listener | null = null;
  private readonly janitor: Janitor;
  private readonly authFile: AuthFileWatch;
  shuttingDown = false;
  /** When a shutdown closes whatever is left. */
  private shutdownDeadline = Infinity;
  /** The shutdown waits for transactions, not for clients to leave (WAIT_FOR_CLIENTS). */
  waitsForServers = false;
  readonly startTime = Date.now();
  admin: AdminConsole | null = null;
  private metrics: MetricsServer | null = null;
  readonly statsPeriod = new StatsPeriod(this);
  /** Console PAUSE without a database: every pool holds its clients. */
  pausedAll = false;
  /** Databases paused (PAUSE db, KILL) or refusing new clients (DISABLE): PgBouncer's per-database flags. */
  private readonly reloadListeners: ((config: PoolerConfig) => void)[] = [];
  readonly pausedDbs = new Set<string>();
  readonly disabledDbs = new Set<string>();
  /** Reads the configuration again for RELOAD and SIGHUP, given the running one (tests replace it). */
  configLoader: (running: PoolerConfig) => LoadedConfig = (running) => {
    const { iniPath } = running.source;
    return loadConfig({ env: process.env, running, ...(iniPath ? { iniPath } : {}) });
  };
  /** Settles when shutdown is complete (SHUTDOWN from the console included). */
  readonly stopped: Promise<void>;
  private readonly markStopped: () => void;

  /** TLS contexts of both sides, built from the files named by the settings (again on reload / SET). */
  private tls: TlsSetup;

  /** `tls`: the contexts already built from `config`'s files (main.ts reads them before `user` switches). */
  constructor(
    public config: PoolerConfig,
    readonly log: Logger,
    tls: TlsSetup = buildTls(config),
  ) {
    this.tls = tls;
    this.clients = new ClientRegistry(config.peerId);
    this.peers = new PeerForwarder(this);
    this.janitor = new Janitor(this);
    this.authFile = new AuthFileWatch(config);
    let resolve!: () => void;
    this.stopped = new Promise<void>((r) => (resolve = r));
    this.markStopped = resolve;
  }

  static async start(config: PoolerConfig, log: Logger, tls?: TlsSetup): Promise<Pooler> {
    const pooler = new Pooler(config, log, tls);
    if (config.metricsPort > 0) {
      pooler.metrics = await MetricsServer.start(pooler, config.listenAddr, config.metricsPort);
    }
    try {
      pooler.listener = await listen(pooler, pooler.clients);
    } catch (err) {
      await pooler.metrics?.close();
      throw err;
    }
    pooler.janitor.start();
    pooler.statsPeriod.start();
    pooler.admin = new SqlConsole(pooler);
    log.info(
      {
        addr: config.listenAddr,
        port: pooler.port,
        unix_socket: pooler.listener.socketPath ?? undefined,
        metrics_port: pooler.metrics?.port,
      },
      "listening",
    );
    return pooler;
  }

  get port(): number {
    return this.listener!.port;
  }

  // ---- ClientHost ----

  findDatabase(name: string): DatabaseDef | undefined {
    const exact = this.config.databases.get(name);
    if (exact) return exact;
    const fallback = this.config.databases.get("*");
    // As PgBouncer ("too long db name"): any name a client sends makes one up, before it
    // authenticates, and each stays for autodb_idle_timeout; PostgreSQL reads no more of it anyway.
    if (!fallback || Buffer.byteLength(name) >= MAX_DBNAME) return undefined;
    let auto = this.autoDatabases.get(name);
    if (!auto) {
      const kept = this.autoForcedUsers.get(name);
      auto = { ...fallback, name, dbname: name };
      if (kept) {
        auto = { ...auto, user: kept.user, password: kept.password };
        this.keptForcedUsers.add(auto);
      }
      this.autoDatabases.set(name, auto);
      this.madeUp.add(auto);
    }
    return auto;
  }

  /**
   * The database in force for one found before a RELOAD, undefined when it is gone. A removed
   * [databases] entry is gone even when "*" would make its name up, as in PgBouncer: its clients
   * would reach PostgreSQL's database of that name instead of the entry's.
   */
  currentDatabase(found: DatabaseDef): DatabaseDef | undefined {
    const kept = this.madeUp.has(found) || this.config.databases.has(found.name);
    return kept ? this.findDatabase(found.name) : undefined;
  }

  /**
   * PgBouncer's autodb_idle_timeout: a database made up from "*" that has had no clients and no
   * servers for that long is forgotten, with its pools and their stats. Any name a client sends,
   * before it authenticates, makes one up, so without this the pooler would keep them all forever.
   */
  pruneAutoDatabases(now: number): void {
    const timeout = this.config.autodbIdleTimeout;
    if (timeout <= 0 || this.autoDatabases.size === 0) return;
    const used = new Set<string>();
    for (const pool of this.pools.values()) if (!pool.unused) used.add(pool.db.name);
    for (const name of this.autoDatabases.keys()) {
      const since = this.autoDatabaseUnusedSince.get(name);
      if (used.has(name)) this.autoDatabaseUnusedSince.delete(name);
      else if (since === undefined) this.autoDatabaseUnusedSince.set(name, now);
      else if (now - since > timeout) this.forgetAutoDatabase(name);
    }
  }

  /**
   * pool_idle_timeout: pools with no clients, no servers and no one waiting that long are freed, so
   * that (database, user) pairs that come and go (auth_query users, say) do not pile up.
   */
  prunePools(now: number): void {
    const timeout = this.config.poolIdleTimeout;
    if (timeout <= 0) return this.poolUnusedSince.clear();
    for (const [key, pool] of this.pools) {
      if (!pool.unused) {
        this.poolUnusedSince.delete(pool);
        continue;
      }
      const since = this.poolUnusedSince.get(pool);
      if (since === undefined) this.poolUnusedSince.set(pool, now);
      else if (now - since > timeout) this.forgetPool(key, pool, "pool freed after pool_idle_timeout unused");
    }
  }

  private forgetAutoDatabase(name: string): void {
    for (const [key, pool] of this.pools) if (pool.db.name === name) this.forgetPool(key, pool);
    this.autoDatabases.delete(name);
    this.autoForcedUsers.delete(name);
    this.autoDatabaseUnusedSince.delete(name);
    // its DISABLE goes with it, as PgBouncer 1.18 frees the database: made up again, it serves. (A
    // PAUSEd one PgBouncer keeps, so its next client waits for a RESUME there too: the flag stays.)
    this.disabledDbs.delete(name);
    this.log.info({ db: name }, "auto-database forgotten after autodb_idle_timeout unused");
  }

  /**
   * The auth file's entry, else auth_query's answer — asked at every login, not cached, so that a
   * changed or expired password (auth_query honours rolvaliduntil) takes effect at once. The
   * database entry's own auth_user comes first. The auth_query lookup ends when `gone` aborts.
   */
  async lookupSecret(user: string, db: DatabaseDef, gone: AbortSignal): Promise<UserSecret | undefined> {
    const known = this.config.authUsers.get(user);
    const authUser = db.authUser ?? this.config.authUser;
    if (known || authUser === undefined) return known;
    // as PgBouncer, auth_dbname names the [databases] entry whose server answers, not a database on db's
    const authDbname = db.authDbname ?? this.config.authDbname;
    const authDb = authDbname === undefined ? db : this.config.databases.get(authDbname);
    if (authDb === undefined) throw new Error(`auth_dbname "${authDbname}" is not a [databases] entry`);
    const pool = this.poolFor(authDb, authUser, authUserCredentials(this.config, authDb, authUser));
    return lookupByAuthQuery({
      pool,
      sql: this.config.authQuery,
      user,
      waitLimit: pool.settings.queryWaitTimeout,
      gone,
      cancel: (server) => {
        server.cancelsInFlight++;
        this.sendCancel(pool, server, () => pool.cancelFinished(server));
      },
    });
  }

  poolFor(db: DatabaseDef, user: string, credentials: ServerCredentials): Pool {
    const serverUser = credentials.user;
    const key = poolKey(db.name, db.user === serverUser ? null : serverUser);
    let pool = this.pools.get(key);
    if (pool) {
      pool.updateCredentials(credentials);
      return pool;
    }
    pool = new Pool(db, serverUser, credentials, this.poolSettings(db, serverUser), this, this.log);
    if (this.isPaused(db.name)) pool.pause();
    this.metrics?.observe(pool);
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
      maxDbConnections: this.dbServerLimit(db),
      maxUserConnections: u?.maxUserConnections ?? c.maxUserConnections,
      roundRobin: c.serverRoundRobin,
      resetQuery: c.serverResetQuery,
      resetQueryAlways: c.serverResetQueryAlways,
      checkQuery: c.serverCheckQuery,
      checkDelay: c.serverCheckDelay,
      lifetime: this.serverLifetime(db),
      loginRetry: c.serverLoginRetry,
      connectTimeout: c.serverConnectTimeout,
      queryTimeout: ownOrGlobal(u?.queryTimeout, c.queryTimeout),
      queryWaitTimeout: db.queryWaitTimeout ?? ownOrGlobal(u?.queryWaitTimeout, c.queryWaitTimeout),
      idleTransactionTimeout: ownOrGlobal(u?.idleTransactionTimeout, c.idleTransactionTimeout),
      transactionTimeout: ownOrGlobal(u?.transactionTimeout, c.transactionTimeout),
      clientIdleTimeout: ownOrGlobal(u?.clientIdleTimeout, c.clientIdleTimeout),
      maxPacketSize: c.maxPacketSize,
      keepalive: keepaliveOf(c),
      maxPreparedStatements: c.maxPreparedStatements,
      pinSessionState: c.pinSessionState,
      trackExtraParameters: c.trackExtraParameters,
      serverTls: this.tls.server,
      unixSocketDir: c.unixSocketDir,
      lookup: this.dns.lookup,
      logConnections: c.logConnections,
      logDisconnections: c.logDisconnections,
    };
  }

  get clientTls(): ClientTls | null {
    return this.tls.client;
  }

  get cancelTimeoutMs(): number {
    return this.config.cancelWaitTimeout || this.config.serverConnectTimeout || CANCEL_TIMEOUT_MS;
  }

  /**
   * A CancelRequest: forwarded, on a new connection, to the server the client is using now, and
   * only then (a client without a server has nothing running). Until PostgreSQL has taken it, that
   * server is not handed to another client: the cancel would land on that client's query (as
   * PgBouncer since 1.18). Another peer's key goes to that peer; a console session's goes to the
   * console.
   */
  cancel(pid: number, secret: number, done: () => void): HeldCancel | null {
    if (this.peers.isForeign(pid)) return this.peers.forward(pid, secret, done);
    const client = this.clients.byCancelKey(pid, secret);
    if (client?.state === "admin") {
      this.admin?.cancel();
      done();
      return null;
    }
    const server = client?.server ?? null;
    const pool = client?.pool ?? null;
    if (!client || !server || !pool || server.state === "closed") {
      done();
      return null;
    }
    // PostgreSQL acts on a cancel only while a query of the client's runs: the pooler's own are not
    if (client.runsOwnQuery) {
      if (!client.sentMeanwhile) {
        done();
        return null;
      }
      const held: HeldCancel = { pool, connection: null, waiting: true };
      client.cancelOnceSent(() => {
        held.connection = this.cancel(pid, secret, done)?.connection ?? null;
        held.waiting = false;
      }, done);
      return held;
    }
    client.cancelsSent++;
    server.cancelsInFlight++;
    const connection = this.sendCancel(pool, server, () => {
      pool.cancelFinished(server);
      done();
    });
    return { pool, connection, waiting: false };
  }

  /**
   * A CancelRequest for `server`'s backend, its connection one of `pool`'s until PostgreSQL has
   * closed it, whether or not a client still waits on it; `done` then.
   */
  sendCancel(pool: Pool, server: ServerConnection, done: () => void = () => undefined): CancelConnection {
    const connection = server.sendCancel(
      this.cancelTimeoutMs,
      (err) => this.log.warn({ err: socketErrorText(err) }, "could not forward cancel request"),
      () => {
        pool.cancels.delete(connection);
        done();
      },
    );
    pool.cancels.add(connection);
    return connection;
  }

  clientClosed(client: ClientConnection): void {
    const held = client.heldCancel;
    if (held !== null) this.peers.withdraw(held);
    this.clients.delete(client);
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

  isDisabled(database: string): boolean {
    return this.disabledDbs.has(database);
  }

  admitClient(database: string, user: string, db: DatabaseDef | undefined): ClientLimit | null {
    const c = this.config;
    // as PgBouncer: admin_users are counted on the console but never held back by these limits
    if (database === ADMIN_DB && c.adminUsers.includes(user)) {
      return this.clientCounts.admit(database, user, { db: 0, user: 0 });
    }
    return this.clientCounts.admit(database, user, {
      db: this.dbClientLimit(db),
      user: this.userClientLimit(user),
    });
  }

  /** max_db_connections for `db`, 0 = none. */
  dbServerLimit(db: DatabaseDef): number {
    return ownOrGlobal(db.maxDbConnections, this.config.maxDbConnections);
  }

  /** server_lifetime for `db` (ms): an entry's 0 is the global one, as in PgBouncer, not "use once". */
  serverLifetime(db: DatabaseDef): number {
    return ownOrGlobal(db.serverLifetime, this.config.serverLifetime);
  }

  /** max_db_client_connections for `db` (none: the console), 0 = none. */
  dbClientLimit(db: DatabaseDef | undefined): number {
    return ownOrGlobal(db?.maxDbClientConnections, this.config.maxDbClientConnections);
  }

  userClientLimit(user: string): number {
    return ownOrGlobal(
      this.config.users.get(user)?.maxUserClientConnections,
      this.config.maxUserClientConnections,
    );
  }

  clientLeft(database: string, user: string): void {
    this.clientCounts.leave(database, user);
  }

  // ---- what the console and /metrics read and change ----

  /** Every database clients can name: configured, made up from "*", or still used by a pool. */
  databases(): DatabaseDef[] {
    const all = new Map<string, DatabaseDef>();
    const named = [...this.config.databases.values(), ...this.autoDatabases.values()];
    for (const db of [...named, ...[...this.pools.values()].map((p) => p.db)]) {
      if (!all.has(db.name)) all.set(db.name, db);
    }
    all.delete("*");
    return [...all.values()];
  }

  *poolStats(): Iterable<PoolStats> {
    for (const pool of this.pools.values()) yield pool.stats;
  }

  isPaused(database: string): boolean {
    return this.pausedAll || this.pausedDbs.has(database);
  }

  /** Brings every pool in line with the pause flags (after PAUSE, RESUME, KILL). */
  applyPauses(): void {
    for (const pool of this.pools.values()) {
      const paused = this.isPaused(pool.db.name);
      if (paused && !pool.paused) pool.pause();
      else if (!paused && pool.paused) pool.resume();
    }
  }

  /**
   * Console SET: one setting changed online (throws ConfigError); pools take the new values. The
   * configuration it would make must pass RELOAD's checks, so that no SET locks clients out (an
   * auth_type=cert without verified certificates, an hba one without its rules) until a RELOAD.
   */
  set(key: string, value: string): ApplyResult {
    // tried on a copy: a refused setting, or a TLS one whose files do not load, leaves the running one untouched
    const next = { ...this.config };
    const result = applySetting(next, key, value, { online: true });
    const readHba = key === "auth_type" || key === "auth_hba_file";
    for (const w of checkConfig(next, { readHba })) this.log.warn(w);
    // As PgBouncer 1.18, only a TLS setting's SET reads the files again (to the value in force too, a
    // way to take up a renewed certificate): a key handed over once through a pipe is not waited for.
    if (isTlsSetting(key)) this.tls = this.tlsFor(next);
    const tlsChanged = tlsSettingsChanged(next, this.config);
    Object.assign(this.config, next);
    this.settingsChanged(tlsChanged);
    this.checkAuthFile();
    return result;
  }

  /** The auth file read again if it changed (janitor, SET auth_file); unreadable, the users stay. */
  checkAuthFile(): void {
    try {
      const users = this.authFile.changed(this.config);
      if (users === undefined) return;
      this.config.authUsers = users;
      this.log.info({ auth_file: this.config.authFile }, "auth file read again");
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.log.warn({ err: err.message }, "auth file not read again: its users last read stay");
    }
  }

  /** Console RELOAD: reads the configuration again; a ConfigError leaves the running one in place. */
  reloadFromSource(): void {
    const { config, warnings, tls } = this.configLoader(this.config);
    for (const w of warnings) this.log.warn(w);
    this.reload(config, tls);
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
      if ((pool.db.name === db || pool.user === user) && pool.wantsServer) pool.dispatch();
    }
  }

  serverIdle(db: string, user: string): void {
    // each transaction's release comes here: only pools held back at a shared limit are looked at
    if (this.heldBack.size === 0) return;
    for (const pool of [...this.heldBack]) {
      if (pool.db.name !== db && pool.user !== user) continue;
      this.heldBack.delete(pool);
      if (pool.wantsServer) pool.dispatch();
    }
  }

  evictIdleServer(requester: Pool, sameDatabase: boolean): void {
    let victim: ServerConnection | undefined;
    for (const pool of this.pools.values()) {
      if (pool === requester) continue;
      if (sameDatabase ? pool.db.name !== requester.db.name : pool.user !== requester.user) continue;
      // the longest idle first: the front of the list, which is kept in the order servers came back
      const oldest = pool.idle[0];
      if (oldest !== undefined && (victim === undefined || oldest.lastActivity < victim.lastActivity)) {
        victim = oldest;
      }
    }
    if (victim === undefined) this.heldBack.add(requester);
    else victim.close("evicted");
  }

  // ---- control ----

  /**
   * SIGHUP / RELOAD: new settings apply to every pool. A pool whose [databases] entry changed
   * opens its next servers as the entry now says, and replaces those it has when the change asks for
   * it (Pool.retarget); a pool whose entry is gone loses its clients and servers, as in PgBouncer.
   * `tls`: the contexts loading already built from `config`'s files, not read a second time.
   */
  reload(config: PoolerConfig, tls: TlsSetup = this.tlsFor(config)): void {
    this.tls = tls;
    const tlsChanged = tlsSettingsChanged(config, this.config);
    const before = new Map([...this.autoDatabases, ...this.config.databases]);
    const lostForcedUser = this.keepForcedUsers(config);
    this.config = config;
    this.authFile.read(config);
    this.autoDatabases.clear();
    this.autoDatabaseUnusedSince.clear();
    for (const [key, pool] of this.pools) {
      const db = this.currentDatabase(pool.db);
      if (db === undefined) {
        this.dropPool(key, pool, "database removed");
        continue;
      }
      const forced = forcedCredentials(db);
      // the pool of the entry's forced user= follows a new one, as PgBouncer renames its forced
      // user: its clients' next servers log in as the entry now says, not as the user it dropped
      // (a pool of that user's own logins stays beside it, as PgBouncer's two)
      const follows = forced !== null && forced.user !== pool.user && key === poolKey(db.name, null);
      if (follows) this.metrics?.forget(pool);
      pool.retarget(db, forced?.user === pool.user || follows ? forced : null, lostForcedUser.has(db.name));
      if (follows) this.metrics?.observe(pool);
    }
    // a removed database's PAUSE, KILL and DISABLE go with it, as PgBouncer frees it: one of the same
    // name made up from "*" (or added back) starts afresh, where it would wait for a RESUME forever
    for (const flagged of [this.pausedDbs, this.disabledDbs]) {
      for (const name of flagged) {
        const db = before.get(name);
        if (db !== undefined && this.currentDatabase(db) === undefined) flagged.delete(name);
      }
    }
    this.settingsChanged(tlsChanged);
    for (const listener of this.reloadListeners) listener(config);
    this.log.info("configuration reloaded");
  }

  /**
   * An entry whose user= is gone keeps its forced login, as PgBouncer 1.18 does ("losing forced user
   * not supported, keeping old setting", its SHOW DATABASES' force_user kept): its clients run as
   * that user until a restart, none as itself beside them. Returns the entries that lost it at this
   * RELOAD, whose servers are replaced as for a changed entry: once, where PgBouncer replaces them at
   * every RELOAD while the file lacks user=.
   */
  private keepForcedUsers(next: PoolerConfig): Set<string> {
    const lost = new Set<string>();
    for (const [name, db] of next.databases) {
      const old = this.config.databases.get(name);
      // "*" is no database of its own (PgBouncer's autodb_connstr): those it made keep it, below
      if (name === "*" || db.user || !old?.user) continue;
      const kept = { ...db, user: old.user, password: old.password };
      next.databases.set(name, kept);
      this.keptForcedUsers.add(kept);
      if (!this.keptForcedUsers.has(old)) lost.add(name);
      this.log.warn({ database: name }, FORCED_USER_KEPT);
    }
    this.keepAutoForcedUsers(next, lost);
    return lost;
  }

  /**
   * A "*" that no longer forces a user leaves it to the auto-databases made up under it, as PgBouncer
   * 1.18 makes each from "*"'s connection string and keeps their forced user when it changes: a
   * database made up since logs in as its clients, where "*" kept as an entry would force it on
   * them. Its warning comes once for each, as PgBouncer's (at a RELOAD that changes "*").
   */
  private keepAutoForcedUsers(next: PoolerConfig, lost: Set<string>): void {
    const kept = new Map<string, DatabaseDef>();
    const fallback = next.databases.get("*");
    if (fallback !== undefined && !fallback.user) {
      for (const [name, auto] of this.autoDatabases) {
        if (!auto.user || next.databases.has(name)) continue;
        kept.set(name, auto);
        if (this.keptForcedUsers.has(auto)) continue;
        lost.add(name);
        this.log.warn({ database: name }, FORCED_USER_KEPT);
      }
    }
    this.autoForcedUsers = kept;
  }

  /**
   * Any changed TLS setting replaces every server, as RECONNECT does (PgBouncer: "for security
   * reasons"; 1.18 does it for client_tls_* too): a server opened under a weaker server_tls_* would
   * otherwise serve on until server_lifetime.
   */
  private reconnectForTls(): void {
    for (const pool of this.pools.values()) pool.reconnect();
    this.log.info("TLS settings changed: every server is replaced once released");
  }

  /**
   * The TLS contexts for `next`, its files read again (a renewed certificate is taken up). Files
   * named as before that can no longer be read (root's, once `user` has switched) keep the contexts
   * in force, as PgBouncer keeps its old TLS configuration then; a change to the settings must load.
   */
  private tlsFor(next: PoolerConfig): TlsSetup {
    try {
      return buildTls(next);
    } catch (err) {
      if (!(err instanceof ConfigError) || tlsSettingsChanged(next, this.config)) throw err;
      this.log.warn(
        { err: err.message },
        "TLS files could not be read again: the TLS configuration in force is kept",
      );
      return this.tls;
    }
  }

  /** Runs `listener` after every RELOAD or SIGHUP with the configuration now in force. */
  onReload(listener: (config: PoolerConfig) => void): void {
    this.reloadListeners.push(listener);
  }

  /** A pool whose database is no longer configured: its clients are told why, its servers closed. */
  private dropPool(key: string, pool: Pool, reason: string): void {
    for (const client of [...this.clients]) {
      if (client.pool === pool) client.refuse(SqlState.AdminShutdown, reason);
    }
    pool.closeServers(reason);
    this.forgetPool(key, pool, reason);
  }

  /** The pool, its stats and its metrics are gone (`reason` logged, if given). */
  private forgetPool(key: string, pool: Pool, reason?: string): void {
    this.pools.delete(key);
    this.poolUnusedSince.delete(pool);
    this.heldBack.delete(pool);
    this.metrics?.forget(pool);
    if (reason !== undefined) this.log.info({ pool: pool.name }, reason);
  }

  /** What every SET and RELOAD passes on: pools, the stats clock, the log level, TLS. */
  private settingsChanged(tlsChanged: boolean): void {
    this.refreshPoolSettings();
    this.statsPeriod.settingsChanged();
    this.log.level = logLevel(this.config.verbose);
    if (tlsChanged) this.reconnectForTls();
  }

  private refreshPoolSettings(): void {
    for (const pool of this.pools.values()) {
      const db = this.findDatabase(pool.db.name);
      if (db) pool.settings = this.poolSettings(db, pool.user);
      // as PgBouncer's, which reads the global at each packet: the servers' next reply is checked
      for (const server of pool.allServers()) server.framing.maxPacketSize = pool.settings.maxPacketSize;
      // a larger pool or a higher limit serves its waiting clients now, not at the janitor's tick
      if (pool.wantsServer) pool.dispatch();
    }
  }

  /**
   * Graceful shutdown (PgBouncer 1.23+): stop accepting, then wait, at most `timeoutMs`, for
   * transactions to finish (clients are closed as soon as they are between transactions) or, with
   * WAIT_FOR_CLIENTS, for the clients to leave on their own; then close whatever is left.
   */
  async shutdown(timeoutMs: number, waitFor: ShutdownWait = "servers"): Promise<void> {
    // a request while one waits can only hasten it, as PgBouncer's SHUTDOWN after WAIT_FOR_CLIENTS
    this.shutdownDeadline = Math.min(this.shutdownDeadline, Date.now() + timeoutMs);
    if (waitFor === "servers" && !this.waitsForServers) {
      this.waitsForServers = true;
      // as PgBouncer's SIGINT (PAUSE and SHUTDOWN): a client between transactions gets no server
      // again, or a busy one would start the next transaction and be cut off in it at the deadline
      this.pausedAll = true;
      this.applyPauses();
    }
    if (this.shuttingDown) return this.stopped;
    this.shuttingDown = true;
    this.log.info({ timeout_ms: timeoutMs, wait_for: waitFor }, "shutting down");
    this.listener?.stop();
    const busy = () => (this.waitsForServers ? this.closeIdleClients() : this.databaseClientCount());
    while (busy() > 0 && Date.now() < this.shutdownDeadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const client of [...this.clients]) client.refuse(SqlState.AdminShutdown, "pooler is shutting down");
    for (const pool of this.pools.values()) for (const s of pool.allServers()) s.close("pooler shutdown");
    this.janitor.stop();
    this.statsPeriod.stop();
    await this.metrics?.close();
    this.log.info("shut down");
    this.markStopped();
  }

  /** Clients of real databases (console sessions do not hold up WAIT_FOR_CLIENTS). */
  private databaseClientCount(): number {
    let n = 0;
    for (const client of this.clients) if (client.state !== "admin") n++;
    return n;
  }

  /**
   * Closes clients between transactions, whether they hold no server or keep an idle one (session
   * pooling, pinned); returns how many are in one still, or hold a cancel request on its way (it may
   * cancel a query the shutdown waits for). Console sessions stay to the end, as in PgBouncer: an
   * operator sees what the shutdown waits for.
   */
  private closeIdleClients(): number {
    let busy = 0;
    for (const client of [...this.clients]) {
      if (client.state === "admin") continue;
      if ((client.server === null || client.idleOnServer) && !client.holdsCancel) {
        client.refuse(SqlState.AdminShutdown, "pooler is shutting down");
      } else busy++;
    }
    return busy;
  }
}

/**
 * The pools map's key: a database and its servers' login, null for the entry's forced user=, whose
 * pool keeps its key when RELOAD names another (PgBouncer's forced user is one of its own, renamed).
 */
function poolKey(database: string, serverUser: string | null): string {
  return serverUser === null ? `${database}\u0001` : `${database}\u0000${serverUser}`;
}

/**
 * A [databases] or [users] limit or timeout overrides the global one when above 0, as in PgBouncer
 * (so a user's 0 cannot turn a global timeout off).
 */
function ownOrGlobal(own: number | undefined, global: number): number {
  return own !== undefined && own > 0 ? own : global;
}
