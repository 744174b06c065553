// A pool of server connections for one (database, user) pair: idle / active / used / login
// servers, the FIFO queue of clients waiting for one, and the limits. This is the only place where
// servers change state and move between lists.
import type net from "node:net";
import type { CancelConnection } from "./cancel-request.ts";
import { now, timerDelay } from "./clock.ts";
import type { DatabaseDef, PoolMode } from "./config/types.ts";
import type { ServerTls } from "./config/tls.ts";
import type { Logger } from "./log.ts";
import { HostList } from "./host-list.ts";
import { LoginRetry, isRestarting } from "./login-retry.ts";
import type { Keepalive } from "./keepalive.ts";
import { runConnectQuery } from "./connect-query.ts";
import {
  checkSessionAttrs,
  recheckAfterConnectQuery,
  reportedMismatch,
  SessionAttrsMismatch,
} from "./target-session.ts";
import { trackedOnly, trackedParameter } from "./params.ts";
import { StatementRegistry } from "./statements.ts";
import { md5Secret } from "./protocol/auth/md5.ts";
import { ServerConnection, ServerError, type ServerCredentials, type ServerTarget } from "./server.ts";
import { PoolStats } from "./stats.ts";
import { dialTarget } from "./unix-socket.ts";

/** What a pool needs from its client: linked, refused, and queue bookkeeping. */
export interface PoolClient {
  readonly id: number;
  /** Queued while still logging in (a server takes its startup settings first): not yet in clientCount. */
  readonly loggingIn: boolean;
  /** When the client started waiting (clock.ts ms), 0 when not waiting. */
  waitStart: number;
  /** The client has the server, once its parameters are set on it (waitStart is 0 from then on). */
  assign(server: ServerConnection): void;
  refuse(code: string, message: string): void;
  /** A NoticeResponse, between the client's messages (it is waiting, no server talks to it). */
  notice(message: string): void;
}

/** The pooler-wide view a pool needs to respect limits that span pools. */
export interface PoolRegistry {
  /** Server connections open (any state) to this database / for this user, across pools. */
  serverCount(db: string, user: string): { db: number; user: number };
  /** Another pool may be able to launch now that a shared limit has room. */
  serverSlotFreed(db: string, user: string): void;
  /** A server became idle: a pool that found nothing to evict (evictIdleServer) may evict it now. */
  serverIdle(db: string, user: string): void;
  /**
   * Closes the longest-idle server of another pool of the same database (`sameDatabase`) or the
   * same user, if one is idle, to make room under max_db_connections / max_user_connections.
   */
  evictIdleServer(requester: Pool, sameDatabase: boolean): void;
}

export interface PoolSettings {
  mode: PoolMode;
  size: number;
  minSize: number;
  reserveSize: number;
  reserveTimeout: number;
  maxDbConnections: number;
  maxUserConnections: number;
  roundRobin: boolean;
  resetQuery: string;
  resetQueryAlways: boolean;
  checkQuery: string;
  checkDelay: number;
  lifetime: number;
  loginRetry: number;
  connectTimeout: number;
  /** The client timeouts (ms), the pool's user's own where [users] sets them, else the global ones. */
  queryTimeout: number;
  queryWaitTimeout: number;
  idleTransactionTimeout: number;
  transactionTimeout: number;
  clientIdleTimeout: number;
  maxPacketSize: number;
  keepalive: Keepalive;
  /** Transaction/statement pooling: per-server LRU size of protocol-level prepared statements, 0 = off. */
  maxPreparedStatements: number;
  /** Transaction/statement pooling: keep a client's server while it holds session state (else refuse it). */
  pinSessionState: boolean;
  /** track_extra_parameters: tracked besides PgBouncer's five (params.ts). */
  trackExtraParameters: readonly string[];
  /** server_tls_*: how new server connections negotiate TLS. */
  serverTls: ServerTls | null;
  /** Where a [databases] entry without host= connects. */
  unixSocketDir: string;
  /** Resolves server host names: the pooler's DNS cache. */
  lookup: net.LookupFunction;
  /** log_connections / log_disconnections: servers opened and closed are logged at info, as PgBouncer. */
  logConnections: boolean;
  logDisconnections: boolean;
}

/** The login a [databases] entry with user= forces on every client's servers; null without one. */
export function forcedCredentials(db: DatabaseDef): ServerCredentials | null {
  return db.user ? { user: db.user, ...(db.password ? { password: db.password } : {}) } : null;
}

/** Why a server closed, in PgBouncer's words where it went away on its own. */
function closeReasonOf(server: ServerConnection): string {
  if (!server.closedByServer) return server.closeReason;
  return `${server.connected ? "server conn crashed?" : "connect failed"} (${server.closeReason})`;
}

type Waiter = {
  client: PoolClient;
  /** performance.now() when it began to wait, for the stats' wait_time. */
  since: number;
  resolve: (params: Map<string, string>) => void;
  reject: (err: Error) => void;
};

export class Pool {
  /** Idle servers; the most recently used at the end (PgBouncer's LIFO unless server_round_robin). */
  readonly idle: ServerConnection[] = [];
  readonly active = new Set<ServerConnection>();
  /** Servers being reset or checked before they may be idle again. */
  readonly used = new Set<ServerConnection>();
  /** Servers free again but with a cancel request still on its way to them (SHOW POOLS' sv_being_canceled). */
  readonly beingCanceled = new Set<ServerConnection>();
  /** Cancel requests' own connections to this pool's PostgreSQL, open until it has acted (sv_active_cancel). */
  readonly cancels = new Set<CancelConnection>();
  readonly login = new Set<ServerConnection>();
  /** Servers of `used` running server_check_query, each for a waiting client. */
  private checking = 0;
  /** Clients waiting for a server, oldest first. */
  readonly waiting: PoolClient[] = [];
  /**
   * When each of them started waiting, performance.now() unrounded (clients keep whole ms for the
   * timeouts): the stats and SHOW POOLS / CLIENTS give waits in microseconds, as PgBouncer.
   */
  private readonly waitingSince: number[] = [];
  /**
   * Clients queued again (enqueue's `since`), and when their wait counts in the stats from: what
   * they waited before was counted when they got the server that died. Empty but in that rare case.
   */
  private readonly requeuedAt = new Map<PoolClient, number>();
  /** Logged-in clients of this pool (any state): counted, not listed, as nothing walks them. */
  clientCount = 0;
  readonly stats = new PoolStats();
  /** Pooler names of the clients' protocol-level prepared statements (prepared.ts). */
  readonly statements = new StatementRegistry();
  /**
   * Clients keeping their server across transactions because it holds session state that cannot
   * be replayed elsewhere (advisory locks, LISTEN, …; see ClientConnection.pinned).
   */
  pinnedClients = 0;
  paused = false;
  /**
   * Servers log in one at a time, each once the one before got in, as PgBouncer 1.18 opens them:
   * auth_user's pool, whose lookups arrive in bursts (a login storm), so that a password changed
   * meanwhile costs one failed login, not one per lookup queued.
   */
  oneLoginAtATime = false;
  /** The parameters a client sees at login, learnt from the first server (server_version, …). */
  private welcome: Map<string, string> | null = null;
  /** The tracked ones among them: what a client that did not choose a value of its own gets. */
  paramDefaults: ReadonlyMap<string, string> = new Map();
  private welcomeWaiters: Waiter[] = [];
  /** After a failed server login: when to try again, and whether clients may wait meanwhile. */
  readonly loginRetry = new LoginRetry();
  /** Which of the entry's hosts the next server dials (a list of one, usually). */
  private hosts: HostList;
  /**
   * Each host's last word since the last server that would do: it refused a server
   * (target_session_attrs), or a login to it failed. Per host, not a count: logins run side by side,
   * and two refusals by one host say nothing of the others.
   */
  private readonly hostsMissed = new Map<string, "refused" | "failed">();
  private retryTimer: NodeJS.Timeout | null = null;
  /** When a server last closed for server_lifetime (clock.ts ms), to space such closes out. */
  private lastLifetimeClose = 0;

  /** Logged-in clients not waiting for a server: SHOW POOLS' cl_active. */
  get activeClientCount(): number {
    let waitingIn = 0;
    for (const client of this.waiting) if (!client.loggingIn) waitingIn++;
    return this.clientCount - waitingIn;
  }

  constructor(
    /** Replaced by RELOAD when the [databases] entry changed (retarget). */
    public db: DatabaseDef,
    /** The servers' login: RELOAD gives it the entry's new forced user= (retarget). */
    public user: string,
    private credentials: ServerCredentials,
    public settings: PoolSettings,
    private readonly registry: PoolRegistry,
    private readonly log: Logger,
  ) {
    this.hosts = new HostList(db.host, db.loadBalanceHosts);
  }

  get name(): string {
    return `${this.db.name}/${this.user}`;
  }

  get serverCount(): number {
    return this.idle.length + this.active.size + this.used.size + this.login.size + this.beingCanceled.size;
  }

  /**
   * Nothing uses or waits for this pool: it can be dropped without anyone noticing but its stats. A
   * cancel request's connection still open is one of its servers in SHOW SERVERS and POOLS.
   */
  get unused(): boolean {
    return (
      this.clientCount === 0 &&
      this.waiting.length === 0 &&
      this.serverCount === 0 &&
      this.cancels.size === 0 &&
      this.welcomeWaiters.length === 0 &&
      this.retryTimer === null
    );
  }

  /**
   * A client's login proved `creds` against the user's current secret: new servers log in with
   * them, so a password changed since the pool's first login (auth_file RELOADed, auth_query)
   * reaches them. SCRAM pass-through keys become known only when a client logs in with SCRAM. The
   * md5 hash of the plain password the pool holds is no news, and logs in to fewer roles (not SCRAM ones).
   */
  updateCredentials(creds: ServerCredentials): void {
    const held = this.credentials.password;
    const news =
      creds.password !== undefined &&
      creds.password !== held &&
      (held === undefined || creds.password !== md5Secret(creds.user, held));
    if (creds.scramKeys || news) this.credentials = creds;
  }

  /**
   * Parameters for `client`'s login; connects a first server if none has told us yet. A client that
   * leaves meanwhile is dequeued: the promise then never settles, and no one is left to care.
   */
  welcomeParams(client: PoolClient): Promise<Map<string, string>> {
    if (this.welcome) return Promise.resolve(this.welcome);
    if (this.hopeless() && Date.now() < this.loginRetry.retryAfter) {
      const { code, message } = this.loginRetry.refusal();
      return Promise.reject(Object.assign(new Error(message), { code }));
    }
    return new Promise((resolve, reject) => {
      this.welcomeWaiters.push({ client, since: performance.now(), resolve, reject });
      this.launchWelcome();
    });
  }

  /**
   * The first server of the pool, which tells clients' logins the server's parameters. It may
   * exceed the pool's own size (there is no server to share yet) but not the limits that span pools.
   * Not while paused: PAUSE is for a database restart, and its new clients wait for RESUME (PgBouncer).
   */
  private launchWelcome(): void {
    if (this.paused || this.login.size > 0 || Date.now() < this.loginRetry.retryAfter) return;
    if (this.sharedLimitsAllow(true)) this.launch(true);
  }

  /** Logins waiting for the pool's first server, oldest first (PgBouncer's CL_WAITING_LOGIN). */
  get welcomeWaiting(): PoolClient[] {
    return this.welcomeWaiters.map((w) => w.client);
  }

  /** Clients wait for a server of this pool, or logins for its first one. */
  get wantsServer(): boolean {
    return this.waiting.length > 0 || this.welcomeWaiters.length > 0;
  }

  /**
   * A client wants a server: queue it and hand out what is available. `since`: it has waited since
   * then already, and the server it got died before it was of use; it takes its place among the
   * clients by how long they have waited, ahead of those that came after it (else a fresh client
   * would be served first, and would stop dispatch from opening the reserve server it is owed).
   */
  enqueue(client: PoolClient, since?: number): void {
    const at = performance.now();
    if (since === undefined) {
      client.waitStart = now();
      this.waiting.push(client);
      this.waitingSince.push(at);
    } else {
      client.waitStart = since;
      let i = this.waiting.findIndex((other) => other.waitStart > since);
      if (i < 0) i = this.waiting.length;
      this.waiting.splice(i, 0, client);
      // SHOW POOLS / CLIENTS give its whole wait (to the ms: waitStart is whole), the stats the rest
      this.waitingSince.splice(i, 0, Math.min(since, at));
      this.requeuedAt.set(client, at);
    }
    // one handed an idle server here and now waited 0, as PgBouncer counts it (its clock stands
    // still within an event-loop turn): else wait_time would grow with no client ever waiting
    this.dispatch(at);
  }

  /**
   * The client gave up waiting (it left, or timed out), for a server or for the pool's first one:
   * with no one left waiting, the pool dials no more (nor retries a failing login) for it.
   */
  dequeue(client: PoolClient): void {
    const w = this.welcomeWaiters.findIndex((waiter) => waiter.client === client);
    if (w >= 0) this.welcomeWaiters.splice(w, 1);
    const i = this.waiting.indexOf(client);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      this.waitingSince.splice(i, 1);
    }
    this.requeuedAt.delete(client);
    client.waitStart = 0;
  }

  /**
   * The clients queued since before `time` (a performance.now() reading). All are looked at: a
   * client queued again takes its place by its whole-ms waitStart, so the starts are in order only
   * to the millisecond.
   */
  *queuedBefore(time: number): Generator<PoolClient> {
    for (let i = 0; i < this.waiting.length; i++) if (this.waitingSince[i]! < time) yield this.waiting[i]!;
  }

  /** How long `client` has been queued here, in ms with a fraction; 0 when it is not queued. */
  waitedMs(client: PoolClient): number {
    const i = this.waiting.indexOf(client);
    return i < 0 ? 0 : performance.now() - this.waitingSince[i]!;
  }

  /** When the wait of `client`, leaving the queue, counts in the stats from. */
  private countedFrom(client: PoolClient, since: number): number {
    if (this.requeuedAt.size === 0) return since;
    const from = this.requeuedAt.get(client);
    if (from === undefined) return since;
    this.requeuedAt.delete(client);
    return from;
  }

  /**
   * Links waiting clients to idle servers, and opens servers while the limits allow. `at`: when the
   * waits of the clients linked now end (performance.now()).
   */
  dispatch(at = performance.now()): void {
    if (this.welcomeWaiters.length > 0) this.launchWelcome();
    if (this.paused) return;
    while (this.waiting.length > 0) {
      const server = this.settings.roundRobin ? this.idle[0] : this.idle.at(-1);
      if (server === undefined) break;
      const check = this.needsCheck(server);
      // one check per waiting client: with server_check_delay=0 every idle server needs one
      if (check && this.checking >= this.waiting.length) break;
      if (this.settings.roundRobin) this.idle.shift();
      else this.idle.pop();
      if (check) {
        this.check(server);
        continue;
      }
      const client = this.waiting.shift()!;
      const since = this.waitingSince.shift()!;
      this.stats.recordAssignment(at - this.countedFrom(client, since));
      // waitStart stays: the client waits until assign() has the server carry its parameters
      server.state = "active";
      this.active.add(server);
      client.assign(server);
    }
    // a server being checked, as one logging in, is on its way to a waiting client: the first
    // clients are theirs, and a new server is for the next one
    for (
      let next = this.waiting[this.login.size + this.checking];
      next !== undefined && this.canLaunch(this.reserveAllowed(next), true);
      next = this.waiting[this.login.size + this.checking]
    ) {
      this.launch(false);
    }
    this.failWaitersIfHopeless();
  }

  /**
   * server_check_delay: a server idle that long is tested before a client gets it; 0 tests it at
   * every reuse, as PgBouncer (one released and taken within the clock's millisecond too).
   */
  private needsCheck(server: ServerConnection): boolean {
    const { checkQuery, checkDelay } = this.settings;
    if (checkQuery === "") return false;
    return checkDelay === 0 ? !server.checked : now() - server.lastActivity > checkDelay;
  }

  /** Runs server_check_query ("<empty>": an empty query, 1.25's default); a failure closes the server. */
  private check(server: ServerConnection): void {
    this.housekeep(server);
    this.checking++;
    server.runInternal(this.settings.checkQuery === "<empty>" ? "" : this.settings.checkQuery).then(
      () => {
        this.checking--;
        this.used.delete(server);
        if (server.state === "closed") return;
        // handed to the waiting client without a second check; one that stays idle is checked again
        server.checked = true;
        this.makeIdle(server);
        server.checked = false;
      },
      (err: Error) => {
        this.checking--;
        server.close(`server_check_query failed: ${err.message}`);
      },
    );
  }

  /**
   * Takes a server back from its client. Session pooling (or server_reset_query_always) resets it
   * first; a server that must not be reused is closed.
   */
  release(server: ServerConnection, reset: boolean): void {
    this.active.delete(server);
    this.detach(server);
    if (server.state === "closed") return;
    if (server.closeNeeded) return server.close("close needed");
    if (this.lifeOver(server)) return this.closeForLifetime(server);
    const query = this.settings.resetQuery;
    if (!(reset || this.settings.resetQueryAlways) || query === "") {
      this.makeIdle(server);
      return;
    }
    this.housekeep(server);
    this.cancelsDone(server)
      .then(() => server.runInternal(query))
      .then(
        () => {
          this.used.delete(server);
          if (server.state === "closed") return;
          if (server.txStatus === "I") return this.makeIdle(server);
          // a reset query that opens a transaction would hand the next client a session inside it
          this.log.warn(
            { pool: this.name, query },
            "server_reset_query left a transaction open: server closed",
          );
          server.close("server_reset_query left a transaction open");
        },
        (err: Error) => {
          // Closed rather than handed on half reset (PgBouncer keeps it): a query that always fails
          // then costs every session a server login, which the operator must hear of.
          if (err instanceof ServerError && !err.fatal) {
            this.log.warn(
              { pool: this.name, query, err: err.message },
              "server_reset_query failed: server closed",
            );
          }
          server.close(`server_reset_query failed: ${err.message}`);
        },
      );
  }

  /**
   * A server its client left in a state that must not be handed on (an open transaction, session
   * state such as advisory locks or LISTEN), or in the middle of the pooler's own query for it:
   * runs `queries` one after the other (ROLLBACK, then DISCARD ALL, which cannot run in one query
   * string) once that query has ended, then releases it, with server_reset_query if `reset`. A
   * failure closes it.
   */
  cleanAndRelease(server: ServerConnection, queries: readonly string[], reset: boolean): void {
    this.active.delete(server);
    this.detach(server);
    this.housekeep(server);
    queries
      .reduce(
        (done, sql) => done.then(() => server.runInternal(sql)),
        server.ownQuerySettled().then(() => this.cancelsDone(server)),
      )
      .then(
        () => {
          this.used.delete(server);
          server.state = "active";
          this.active.add(server);
          this.release(server, reset);
        },
        (err: Error) => server.close(`${queries.join("; ")} after the client left failed: ${err.message}`),
      );
  }

  /**
   * Settles once no cancel request of its last client's is on its way to `server`: one PostgreSQL
   * has not acted on yet would cancel the pooler's reset or cleanup query instead, and the server
   * would be closed for it (PgBouncer 1.18 keeps it).
   */
  private cancelsDone(server: ServerConnection): Promise<void> {
    if (server.cancelsInFlight === 0) return Promise.resolve();
    // the client that left can no longer run its own query again (OwnQueries.retries)
    return new Promise((resolve) => (server.afterCancels = resolve));
  }

  /**
   * The server runs the pooler's own queries (check, reset, cleanup), no client waiting on it: the
   * janitor closes it if they take longer than server_connect_timeout.
   */
  private housekeep(server: ServerConnection): void {
    server.state = "used";
    server.usedSince = now();
    this.used.add(server);
  }

  /**
   * server_lifetime is over for `server` and may end it now: as PgBouncer's life_over, the pool's
   * lifetime closes are lifetime / pool_size apart, so servers opened together are not all replaced
   * (reconnected) in the same moment. A lifetime of 0 is over at once: each server serves once.
   */
  lifeOver(server: ServerConnection, at = now()): boolean {
    const { lifetime, size } = this.settings;
    if (at - server.connectTime < lifetime) return false;
    return at - this.lastLifetimeClose >= (size > 0 ? lifetime / size : 0);
  }

  closeForLifetime(server: ServerConnection): void {
    this.lastLifetimeClose = now();
    server.close("server lifetime over");
  }

  /** Ends the server's link with its client, flow control included. */
  private detach(server: ServerConnection): void {
    const client = server.client;
    server.client = null;
    if (client) server.unlinkFrom(client);
  }

  private makeIdle(server: ServerConnection): void {
    // RECONNECT / RELOAD marked it while it was being reset or checked
    if (server.closeNeeded) return server.close("close needed");
    // each release of transaction pooling comes here: only entries with target_session_attrs look
    const attrs = this.db.targetSessionAttrs;
    const changed = attrs === undefined ? null : reportedMismatch(server, attrs);
    if (changed !== null) return server.close(`no longer matches: ${changed}`);
    // PAUSE and KILL disconnect from the database: a server is closed as soon as it is free.
    if (this.paused) return server.close("pause mode");
    if (server.cancelsInFlight > 0) {
      server.state = "used";
      this.beingCanceled.add(server);
      return;
    }
    server.state = "idle";
    server.lastActivity = now();
    this.idle.push(server);
    this.dispatch();
    // Left idle: a pool held back by max_db_connections / max_user_connections evicts it now, as
    // PgBouncer's next loop does, not at the janitor's next tick (it may be busy again by then).
    if (server.state === "idle") this.registry.serverIdle(this.db.name, this.user);
  }

  /** A cancel request for `server` is done: once none is left, a server that was free is free to share. */
  cancelFinished(server: ServerConnection): void {
    if (--server.cancelsInFlight > 0) return;
    const then = server.afterCancels;
    server.afterCancels = null;
    then?.();
    if (this.beingCanceled.delete(server) && server.state !== "closed") this.makeIdle(server);
  }

  /**
   * A reserve server is opened for `client` once it has itself waited reserve_pool_timeout (0: never),
   * as PgBouncer 1.18 measured: its one login at a time goes to the oldest waiting client, so the
   * reserve serves those past the timeout and no client that came after them.
   */
  private reserveAllowed(client: PoolClient): boolean {
    const { reserveSize, reserveTimeout } = this.settings;
    return reserveSize > 0 && reserveTimeout > 0 && now() - client.waitStart >= reserveTimeout;
  }

  /**
   * Under max_db_connections or max_user_connections (per database and per user, so every pool of
   * its database or user agrees). Without either, the default, no server of another pool matters
   * here, and the registry's walks over every pool are skipped: with thousands of pools (a database
   * per tenant) they made each server's launch and close cost as much as all the pools.
   */
  private get sharesLimits(): boolean {
    return this.settings.maxDbConnections > 0 || this.settings.maxUserConnections > 0;
  }

  /** `evict`: for clients waiting (not min_pool_size), a shared limit may evict another pool's idle server. */
  canLaunch(withReserve: boolean, evict = false): boolean {
    if (this.paused || Date.now() < this.loginRetry.retryAfter) return false;
    if ((this.loginRetry.cautious || this.oneLoginAtATime) && this.login.size > 0) return false;
    const limit = this.settings.size + (withReserve ? this.settings.reserveSize : 0);
    if (this.settings.size > 0 && this.serverCount >= limit) return false;
    return this.sharedLimitsAllow(evict);
  }

  /**
   * max_db_connections and max_user_connections, which span pools. At a limit, an idle server of
   * another pool under it is evicted when `evict`, as PgBouncer does for waiting clients: its close
   * frees the slot and dispatches the pools waiting for one, this one among them, so the answer
   * here is still no.
   */
  private sharedLimitsAllow(evict: boolean): boolean {
    if (!this.sharesLimits) return true;
    const { maxDbConnections, maxUserConnections } = this.settings;
    const { db, user } = this.registry.serverCount(this.db.name, this.user);
    const dbFull = maxDbConnections > 0 && db >= maxDbConnections;
    if (!dbFull && !(maxUserConnections > 0 && user >= maxUserConnections)) return true;
    if (evict) this.registry.evictIdleServer(this, dbFull);
    return false;
  }

  /** Opens one server connection. `force` bypasses the pool size (only for the welcome server). */
  launch(force: boolean): void {
    if (!force && !this.canLaunch(true)) return;
    const host = this.hosts.pick();
    const target: ServerTarget = {
      ...dialTarget(host, this.settings.unixSocketDir, this.settings.serverTls),
      port: this.db.port,
      database: this.db.dbname ?? this.db.name,
      credentials: this.credentials,
      startupParams: this.db.connectParams,
      connectTimeout: this.settings.connectTimeout,
      maxPacketSize: this.settings.maxPacketSize,
      keepalive: this.settings.keepalive,
      lookup: this.settings.lookup,
    };
    const attemptStart = Date.now();
    const { server, ready } = ServerConnection.connect(
      target,
      (s) => this.onServerClosed(s),
      this.setUp(host),
    );
    this.login.add(server);
    this.log[this.settings.logConnections ? "info" : "debug"](
      { pool: this.name, server: server.id },
      "new server connection",
    );
    ready.then(
      () => {
        this.login.delete(server);
        this.loginRetry.succeeded();
        this.hostsMissed.clear();
        if (this.welcome === null) {
          this.welcome = new Map(server.params);
          this.paramDefaults = trackedOnly(this.welcome, this.settings.trackExtraParameters);
          for (const w of this.welcomeWaiters.splice(0)) {
            this.stats.recordWait(performance.now() - w.since);
            w.resolve(this.welcome);
          }
        }
        // a FATAL right behind its ReadyForQuery (pg_terminate_backend) closed it before this ran
        if (server.state !== "closed") this.makeIdle(server);
      },
      (failure: Error) => {
        // not there: KILL gave the login up (closeServers), which says nothing of the server
        if (!this.login.delete(server)) return;
        this.loginFailed(server, host, failure, attemptStart);
        // One target_session_attrs refused is still open. Its close dispatches: only once the
        // failure is on record, or the next login would not wait for server_login_retry.
        if (failure instanceof SessionAttrsMismatch) server.close(failure.message);
      },
    );
  }

  /** A login failed: when the next one may start, and whether the clients waiting may go on waiting. */
  private loginFailed(server: ServerConnection, host: string, failure: Error, attemptStart: number): void {
    this.hosts.failed(host);
    const err = this.sessionAttrsMissed(server, host, failure);
    if (err === null) return this.dispatch();
    const restarting = isRestarting(err, server);
    const wait = this.loginRetry.failed(err, restarting, attemptStart, this.settings.loginRetry);
    // logged once per retry step: the logins in flight when the server went away say nothing new
    if (wait !== null) {
      this.log.warn({ pool: this.name, err: err.message, retryInMs: wait }, "server login failed");
      this.retryLater(wait);
    }
    if (this.login.size === 0 && !this.loginRetry.clientsMayWait) {
      for (const w of this.welcomeWaiters.splice(0)) w.reject(err);
    }
    this.failWaitersIfHopeless();
  }

  /**
   * What a new server goes through after its login, before the pool takes it in: whether it is a
   * standby (target_session_attrs), the entry's connect_query, then whether it is read-only.
   */
  private setUp(host: string): ((server: ServerConnection) => Promise<void>) | undefined {
    const connectQuery = this.connectQuery();
    const attrs = this.db.targetSessionAttrs ?? "any";
    if (attrs === "any") return connectQuery;
    // prefer-standby: once every other host turned out not to be a standby (or is down), this one will do
    const fallback = this.hosts.names.every((h) => h === host || this.hostsMissed.has(h));
    if (connectQuery === undefined) return (server) => checkSessionAttrs(server, attrs, fallback);
    return async (server) => {
      await checkSessionAttrs(server, attrs, fallback, "recovery");
      await connectQuery(server);
      if (recheckAfterConnectQuery(attrs)) await checkSessionAttrs(server, attrs, fallback);
    };
  }

  private connectQuery(): ((server: ServerConnection) => Promise<void>) | undefined {
    const sql = this.db.connectQuery;
    if (sql === undefined) return undefined;
    const extra = this.settings.trackExtraParameters;
    const reported = (name: string): boolean => trackedParameter(name, extra) !== null;
    return (server) => runConnectQuery(server, sql, reported, this.log, this.name);
  }

  /**
   * A server target_session_attrs refused (its caller closes it) is replaced by one on the next
   * host at once (null) until every host has refused: then it is a failed login like any other, server_login_retry and all.
   */
  private sessionAttrsMissed(server: ServerConnection, host: string, err: Error): Error | null {
    const refused = err instanceof SessionAttrsMismatch;
    this.hostsMissed.set(host, refused ? "refused" : "failed");
    if (!refused) return err;
    // The servers the pool already has on this host passed the check when it was something else (a
    // standby since promoted, a primary since demoted). Nothing else rechecks them.
    const dialed = server.target.host;
    this.replaceServers((s) => s.target.host === dialed, `host changed: ${err.message}`);
    // A host whose login failed (restarting, say) may match once it is back: its failure keeps
    // server_login_retry's rules (clients wait for a restart), which this refusal must not replace.
    // prefer-standby never runs out: a login started before the other hosts had refused was not
    // allowed to fall back, and the next one, now that every host has, is.
    const preferred = this.db.targetSessionAttrs === "prefer-standby";
    if (preferred || !this.hosts.names.every((h) => this.hostsMissed.get(h) === "refused")) {
      this.log.info(
        { pool: this.name, server: server.id, reason: err.message },
        "server refused, trying the next host",
      );
      return null;
    }
    this.hostsMissed.clear();
    return new Error(`no host matches: ${err.message}`);
  }

  /**
   * The servers `there` picks are replaced, as RECONNECT does: idle ones now, busy ones when free,
   * and those still logging in when they would become idle.
   */
  private replaceServers(there: (s: ServerConnection) => boolean, reason: string): void {
    for (const s of this.idle.filter(there)) s.close(reason);
    for (const s of [...this.active, ...this.used, ...this.login, ...this.beingCanceled])
      if (there(s)) s.closeNeeded = true;
  }

  /**
   * `host` no longer resolves to `addresses` (a DNS failover, say): the servers connected to them
   * are replaced as above, as PgBouncer's tag_host_addr_dirty does.
   */
  addressesGone(host: string, addresses: readonly string[]): void {
    this.replaceServers(
      // a server still dialing has no remote address yet: the lookup it dialed with is unknown
      (s) => s.target.host === host && addresses.includes(s.socket.remoteAddress ?? ""),
      `${host} no longer resolves to ${addresses.join(", ")}`,
    );
  }

  /** Waiting clients (and the welcome) are served once the next attempt may start. */
  private retryLater(ms: number): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      // Timers run on the monotonic clock, retryAfter is Date.now(): the two tick their
      // milliseconds apart (and the wall clock may be slewed), so this can fire just before
      // retryAfter, when dispatch() would launch nothing and nothing would ever wake the pool again.
      const left = this.loginRetry.retryAfter - Date.now();
      if (left > 0) this.retryLater(left);
      else this.dispatch();
    }, timerDelay(ms));
    this.retryTimer.unref();
  }

  /** Logins fail for a reason that will not pass soon, and no server exists or is on its way. */
  private hopeless(): boolean {
    return !this.loginRetry.clientsMayWait && this.serverCount === 0;
  }

  /**
   * Clients waiting while logins fail (other than for a restart) would wait for query_wait_timeout
   * for nothing: tell them why now, as PgBouncer does.
   */
  private failWaitersIfHopeless(): void {
    if (this.waiting.length === 0 || !this.hopeless()) return;
    const { code, message } = this.loginRetry.refusal();
    this.waitingSince.length = 0;
    this.requeuedAt.clear();
    for (const client of this.waiting.splice(0)) {
      client.waitStart = 0;
      client.refuse(code, `server login failed: ${message}`);
    }
  }

  private onServerClosed(server: ServerConnection): void {
    const i = this.idle.indexOf(server);
    if (i >= 0) this.idle.splice(i, 1);
    this.active.delete(server);
    this.used.delete(server);
    this.beingCanceled.delete(server);
    // a server closed while logging in leaves `login` in its login's handler, which judges the
    // failure before another attempt may start
    if (!this.login.has(server) && server.closedByServer) this.loginRetry.lost();
    this.log[this.settings.logDisconnections ? "info" : "debug"](
      {
        pool: this.name,
        server: server.id,
        reason: closeReasonOf(server),
        age: Math.floor((now() - server.connectTime) / 1000),
      },
      "server closed",
    );
    if (this.sharesLimits) this.registry.serverSlotFreed(this.db.name, this.user);
    this.dispatch();
  }

  /**
   * RELOAD changed the [databases] entry: new servers are opened as it now says. As PgBouncer
   * 1.18's tag_database_dirty, every pool of the entry replaces its servers when the entry's place
   * (host, port, database name), forced user= (`forcedUserLost` too) or connect_query changed (and
   * target_session_attrs, which 1.18 has not), whatever login the pool's own; not for a password or
   * pool size alone: its servers are logged in already.
   */
  retarget(db: DatabaseDef, credentials: ServerCredentials | null, forcedUserLost: boolean): void {
    const moved =
      db.host !== this.db.host ||
      db.port !== this.db.port ||
      (db.dbname ?? db.name) !== (this.db.dbname ?? this.db.name);
    if (moved || db.loadBalanceHosts !== this.db.loadBalanceHosts) {
      this.hosts = new HostList(db.host, db.loadBalanceHosts);
      this.hostsMissed.clear();
    }
    // a server that matched the old target_session_attrs may not match the new one
    const setUpAnew =
      db.connectQuery !== this.db.connectQuery || db.targetSessionAttrs !== this.db.targetSessionAttrs;
    if (setUpAnew) this.hostsMissed.clear();
    const changed = moved || setUpAnew || forcedUserLost || (db.user ?? "") !== (this.db.user ?? "");
    this.db = db;
    if (credentials !== null && credentials.user !== this.user) {
      // the first server's session_authorization, is_superuser … were the old login's: the next one tells
      this.welcome = null;
      this.user = credentials.user;
    }
    if (credentials !== null) this.credentials = credentials;
    if (changed) this.reconnect();
  }

  /** Closes every idle server now and marks the others to close when they would be idle (RECONNECT). */
  reconnect(): void {
    // PgBouncer's words, for RECONNECT as for a RELOAD that moved the entry
    for (const s of [...this.idle]) s.close("database configuration changed");
    // still logging in, or free but waiting for a cancel: closed when they would become idle
    for (const s of [...this.active, ...this.used, ...this.login, ...this.beingCanceled])
      s.closeNeeded = true;
  }

  /**
   * Console PAUSE (and KILL, whose `reason` is "database removed"): nothing handed out or opened;
   * idle servers close now, busy ones when free.
   */
  pause(reason = "pause mode"): void {
    this.paused = true;
    for (const s of [...this.idle]) s.close(reason);
  }

  /** Console RESUME: queued clients get servers again. */
  resume(): void {
    this.paused = false;
    this.dispatch();
  }

  /**
   * Console KILL, once the pool's clients are gone: every server dropped now. A login cut short
   * here is not a failed one: server_login_retry would refuse the clients that come after RESUME.
   */
  closeServers(reason: string): void {
    const servers = this.allServers();
    this.login.clear();
    for (const s of servers) s.close(reason);
  }

  /**
   * An idle server its next client gets only after server_check_query: PgBouncer moves it to its
   * "used" list once idle past server_check_delay, and SHOW SERVERS / POOLS show it there.
   */
  awaitsCheck(server: ServerConnection): boolean {
    return server.state === "idle" && this.needsCheck(server);
  }

  /** All servers, for the janitor and the admin console: in PgBouncer's order, those awaiting a check after the idle. */
  allServers(): ServerConnection[] {
    const fresh: ServerConnection[] = [];
    const due: ServerConnection[] = [];
    for (const s of this.idle) (this.needsCheck(s) ? due : fresh).push(s);
    return [...this.active, ...fresh, ...due, ...this.used, ...this.beingCanceled, ...this.login];
  }
}
