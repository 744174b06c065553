// One client connection: its login (client-login.ts reads it up to authentication; the welcome,
// which needs the pool, is here), then routing its messages to whichever server it holds. The pooling decision — when a server goes back to the pool — is made here, in
// onServerChunkDone (and unlink, which it calls), and nowhere else.
//
// In transaction and statement pooling the client's session is kept as if the server were its own
// (see README "What works in transaction mode"): named prepared statements are renamed and prepared
// on whichever server it gets (prepared.ts); settings it SETs or gives at startup are replayed on
// each server; state that cannot be replayed (advisory locks, LISTEN, …) pins it to its server
// while that state lives (session-state.ts). Its cold paths have modules of their own: the pooler's
// own queries for it (client-own-queries.ts), a cancel request held meanwhile (client-held-cancel.ts),
// the server it leaves behind (client-exit.ts), a console client's messages (admin/console-client.ts).
import type net from "node:net";
import { unmappedAddress } from "./address.ts";
import { AdminVisitor, adminWelcomeParams } from "./admin/console-client.ts";
import type { HeldCancel } from "./cancel-request.ts";
import type { DatabaseDef, PoolerConfig, UserSecret } from "./config/types.ts";
import type { ClientTls } from "./config/tls.ts";
import { now } from "./clock.ts";
import { HeldClientCancel } from "./client-held-cancel.ts";
import { dropServer, returnServer } from "./client-exit.ts";
import { ClientLogin, type LoginClient } from "./client-login.ts";
import { OwnQueries, type OwnQueryClient } from "./client-own-queries.ts";
import { isShared, lend, owned } from "./client-reads.ts";
import { RawSocket, type ClientSocket, type SocketOwner } from "./client-socket.ts";
import type { ClientLimit } from "./client-limits.ts";
import { Block, Connection } from "./connection.ts";
import { lingeringClose } from "./linger.ts";
import type { Logger } from "./log.ts";
import { forcedCredentials, type Pool, type PoolClient } from "./pool.ts";
import { FrameScanner, unsupportedType, type FrameVisitor } from "./protocol/framing.ts";
import {
  Msg,
  authenticationOk,
  backendKeyData,
  errorResponse,
  noticeResponse,
  parameterStatus,
  parse,
  query,
  readyForQuery,
  statementNameSpan,
} from "./protocol/messages.ts";
import { SqlState } from "./protocol/sqlstate.ts";
import type { Row, ServerConnection, ServerCredentials, ServerError, ServerPeer } from "./server.ts";
import {
  isSettingName,
  paramSyncSql,
  settingsSyncSql,
  startupParamValue,
  shared,
  trackedParameter,
  withParam,
} from "./params.ts";
import {
  dropNames,
  mustWait,
  routeStatementMessage,
  settleBeforeQuery,
  type StatementRoute,
} from "./prepared.ts";
import { ClientStatements, ServerStatements } from "./statements.ts";
import { Expect, type ExpectKind, type Special } from "./replies.ts";
import { StreamedQuery, classifySql } from "./streamed-query.ts";
import { describeTls } from "./tls.ts";
import {
  ClientSession,
  HELD_STATE_NAMES,
  NO_EFFECT,
  NO_SETTINGS,
  readProbe,
  type HeldState,
  type SessionEffect,
} from "./session-state.ts";

export type ClientState = "login" | "idle" | "waiting" | "active" | "admin" | "closed";

/** What a client needs from the pooler around it. */
export interface ClientHost {
  readonly config: PoolerConfig;
  /** client_tls_*: how SSLRequest is answered (null: 'N', TLS disabled). */
  readonly clientTls: ClientTls | null;
  readonly log: Logger;
  readonly shuttingDown: boolean;
  /** A shutdown waits for transactions to end (not WAIT_FOR_CLIENTS): a client between two is closed. */
  readonly waitsForServers: boolean;
  /** The port the pooler listens on (the Unix socket's too). */
  readonly port: number;
  lookupSecret(user: string, db: DatabaseDef, gone: AbortSignal): Promise<UserSecret | undefined>;
  findDatabase(name: string): DatabaseDef | undefined;
  /** `found` (by findDatabase) as a RELOAD since may have changed it; undefined once it is gone. */
  currentDatabase(found: DatabaseDef): DatabaseDef | undefined;
  poolFor(db: DatabaseDef, user: string, credentials: ServerCredentials): Pool;
  /**
   * A CancelRequest; `done` once it has reached PostgreSQL or a peer, or was dropped. Null when
   * it was dropped at once.
   */
  cancel(pid: number, secret: number, done: () => void): HeldCancel | null;
  clientClosed(client: ClientConnection): void;
  /** The admin console, for clients of the virtual `pgbouncer` database. */
  adminMessage(client: ClientConnection, type: number, msg: Buffer): void;
  isAdminUser(user: string): "admin" | "stats" | null;
  /** The console's DISABLE: the database refuses new clients. */
  isDisabled(database: string): boolean;
  /**
   * Counts a client logging in to `database` as `user` (`db`: its entry, none for the console);
   * the limit it would exceed instead, and then it is not counted.
   */
  admitClient(database: string, user: string, db: DatabaseDef | undefined): ClientLimit | null;
  /** An admitted client has gone. */
  clientLeft(database: string, user: string): void;
}

/** Client messages the pooler routes itself in transaction and statement pooling (see `rewrite`). */
const ROUTED = new Uint8Array(256);
for (const t of [Msg.Query, Msg.Parse, Msg.Bind, Msg.Describe, Msg.Close]) ROUTED[t] = 1;

/**
 * What a logged-in client may send (PgBouncer's list): anything else is refused on its header, as
 * PgBouncer's "unknown pkt", rather than forwarded to a server that would answer FATAL and die.
 */
const FRONTEND_TYPES = new Uint8Array(256);
for (const t of "QPBDECSHFdcfX") FRONTEND_TYPES[t.charCodeAt(0)] = 1;
/** disable_pqexec: the same without the simple protocol's Query (the console keeps it: it has no other). */
const EXTENDED_ONLY = FRONTEND_TYPES.map((allowed, type) => (type === Msg.Query ? 0 : allowed));
const pqexecRefusal = (type: number): string =>
  type === Msg.Query ? "PQexec disallowed" : unsupportedType(type);

const OWNER = Symbol("client");
/** A TLS client's socket, once its handshake is done (RawSocket gives its owner the same calls). */
type OwnedSocket = net.Socket & { [OWNER]: SocketOwner };
const NOTHING_HELD: readonly HeldState[] = [];
/** The scanner of the client scanned last, if its chunk ended on a boundary (ClientConnection.scan). */
let spareScanner: FrameScanner | null = null;
/** No chunks kept for a server; never pushed to (keep() replaces it). */
const NO_CHUNKS: Buffer[] = [];

/** Slices of one client chunk up to this many bytes in all are joined into one buffer (flushToServer). */
const JOIN_LIMIT = 16 * 1024;

/** What a routed message the pooler forwards as is will be answered with. */
const EXPECT_OF: Partial<Record<number, ExpectKind>> = {
  [Msg.Query]: Expect.Query,
  [Msg.Parse]: Expect.Parse,
  [Msg.Bind]: Expect.Bind,
  [Msg.Describe]: Expect.Describe,
  [Msg.Close]: Expect.Close,
  [Msg.Execute]: Expect.Execute,
  [Msg.Sync]: Expect.Sync,
  [Msg.FunctionCall]: Expect.FunctionCall,
};

/**
 * Stand-ins for a refused message (PIN_SESSION_STATE=off): they fail on every server, so PostgreSQL
 * itself aborts the transaction or skips to Sync exactly as for a real error; the pooler replaces
 * the error it sends. The Parse is named so that it does not drop the client's unnamed statement.
 */
const FAILING_QUERY = query("(");
const FAILING_PARSE = parse("POOLER_refused", "(");

export class ClientConnection
  extends Connection<ClientSocket>
  implements PoolClient, ServerPeer, FrameVisitor, LoginClient, OwnQueryClient, SocketOwner
{
  state: ClientState = "login";
  user = "";
  database = "";
  pool: Pool | null = null;
  server: ServerConnection | null = null;
  /**
   * The tracked parameters (params.ts) this client chose, at startup or by SET; for the others it
   * has its pool's defaults. Null until it chose one, and shared with clients that chose the same
   * once logged in: idle clients by the thousand add up.
   */
  private ownParams: ReadonlyMap<string, string> | null = null;
  /** Its reported parameters as it logged in (shared as ownParams is): what RESET takes them back to. */
  private startupParams: ReadonlyMap<string, string> | null = null;
  /** Reported parameters a RESET (or RESET ALL, DISCARD ALL: "all") covered since the last probe. */
  private resetParams: Set<string> | "all" | null = null;
  /** The cancel key, given by the ClientRegistry when the connection is accepted. */
  cancelPid = 0;
  cancelSecret = 0;
  /** Cancel requests of its key sent on to its server (OwnQueries: did one of them end its query?). */
  cancelsSent = 0;
  /** The pooler's own queries for it (client-own-queries.ts): made for its first. */
  private ownQueries: OwnQueries | null = null;
  /** A cancel request that came during the pooler's own query: sent once the client's next request starts on a server. */
  private cancelLater: HeldClientCancel | null = null;
  waitStart = 0;
  adminRole: "admin" | "stats" | null = null;
  /** Counted against max_db_client_connections / max_user_client_connections (ClientHost.admitClient). */
  private admitted = false;
  /** Until the client is in: null afterwards. */
  private login: ClientLogin | null = new ClientLogin(this);
  /**
   * Only while the client's stream is mid-message: at a boundary a scanner holds nothing, so idle
   * clients share the spare one (scan()).
   */
  private scanner: FrameScanner | null = null;
  /** A Query too big to assemble, being classified as it streams through (transaction pooling). */
  private streamedQuery: StreamedQuery | null = null;
  /** Without statement routing: the effects of the client's statements that touch the session, by name. */
  private statementEffects: Map<string, SessionEffect> | null = null;
  /** Bytes that arrived while the client had no server, or kept while `stopped`; sent once it can go on. */
  private queued: Buffer[] = NO_CHUNKS;
  /** Its input waits, from the first message in `queued`, for its server's answers (prepared.ts mustWait). */
  stopped = false;
  /** Extended-protocol messages were sent since the last Sync: the server must stay linked. */
  private inBatch = false;
  private terminated = false;
  /**
   * What the chunk being scanned sends the server, written once the whole chunk is scanned: most
   * chunks pass as one slice, kept without an array.
   */
  private outgoing: Buffer | Buffer[] | null = null;

  /** Transaction or statement pooling on the current link: messages are routed, state is tracked. */
  private pooled = false;
  /**
   * Settings and state of the session the client would have on a server of its own; null until
   * the client gives a setting or runs a statement that touches the session.
   */
  session: ClientSession | null = null;
  /**
   * How named statements are routed, the client's own among them (transaction/statement pooling
   * with max_prepared_statements); made on first use.
   */
  private route: StatementRoute | null = null;
  /** The current transaction ran SET LOCAL search_path: its Parses are not analysed under the client's own. */
  private localSearchPath = false;
  /** Unreplayable state on its server, from the last probe: while non-empty the client is pinned. */
  private held: readonly HeldState[] = NOTHING_HELD;

  constructor(
    socket: ClientSocket,
    readonly host: ClientHost,
    /** Came through unix_socket_dir: no TLS is offered or required there, as in PgBouncer. */
    readonly unixSocket: boolean,
  ) {
    super(socket);
    socket.setNoDelay(true);
    this.listen(socket);
  }

  /** The peer's address as PgBouncer prints it: "unix" for a Unix-socket client. */
  get addr(): string {
    return this.unixSocket ? "unix" : unmappedAddress(this.socket.remoteAddress ?? "");
  }

  /** `data`: false while a TLS handshake reads the socket. */
  private listen(socket: ClientSocket, data = true): void {
    if (socket instanceof RawSocket) return socket.start(this);
    // Every TLS socket shares these listeners (a closure each would weigh on every idle client).
    (socket as OwnedSocket)[OWNER] = this;
    if (data) socket.on("data", ClientConnection.onSocketData);
    socket.on("error", ClientConnection.onSocketError);
    socket.on("close", ClientConnection.onSocketClose);
  }

  private static onSocketData(this: OwnedSocket, chunk: Buffer): void {
    this[OWNER].socketData(chunk);
  }

  private static onSocketError(this: OwnedSocket, err: Error): void {
    this[OWNER].socketError(err);
  }

  private static onSocketClose(this: OwnedSocket): void {
    this[OWNER].socketClosed();
  }

  socketError(err: Error): void {
    this.close(`client socket error: ${err.message}`);
  }

  socketClosed(): void {
    this.close("client unexpected eof");
  }

  get log(): Logger {
    return this.host.log;
  }

  get framing(): FrameScanner | null {
    return this.scanner;
  }

  /**
   * Whatever a client sends, a parse error (a missing NUL, a short field) must cost that client its
   * connection, never the pooler its process: it is answered as the protocol violation it is.
   */
  socketData(chunk: Buffer): void {
    try {
      this.onData(chunk);
    } catch (err) {
      this.malformed(err as Error);
    }
    // a chunk kept for a server is usually fed to one before this returns: copied only if not
    if (this.queued !== NO_CHUNKS) this.queued = this.queued.map(owned);
  }

  malformed(err: Error): void {
    this.log.warn({ client: this.id, err: err.message }, "malformed client input");
    this.refuse(SqlState.ProtocolViolation, `invalid message: ${err.message}`);
  }

  private onData(chunk: Buffer): void {
    this.lastActivity = now();
    switch (this.state) {
      case "login":
        // what the login keeps is kept whole (a password message among it): a copy, once per client
        return this.login!.read(owned(chunk));
      case "active":
        if (this.stopped) return this.keep(chunk);
        if (this.pool) this.pool.stats.bytesReceived += chunk.length;
        this.feed(chunk);
        this.dropCancelIfNothingSent();
        return this.releaseIfOwedNothing();
      case "idle":
        if (isTerminate(chunk)) return this.close("client close request");
        this.keep(chunk);
        this.state = "waiting";
        this.pool!.enqueue(this);
        // Most of the time an idle server was there and the chunk has gone already: pausing the
        // socket and resuming it at once would only cost the event loop a tick.
        if (this.state === "waiting") this.block(Block.Waiting);
        return;
      case "waiting":
        this.keep(chunk);
        return;
      case "admin":
        return this.feedAdmin(owned(chunk));
      case "closed":
        return;
    }
  }

  // ---- login: what ClientLogin asks of its client ----

  /** See ClientLogin.refuseAfterStartup. */
  refuseAfterStartup(code: string, message: string, sparesConsole = false): void {
    this.login!.refuseAfterStartup(code, message, sparesConsole);
  }

  admit(db: DatabaseDef | undefined): ClientLimit | null {
    const limit = this.host.admitClient(this.database, this.user, db);
    this.admitted = limit === null;
    return limit;
  }

  stopReadingForTls(): net.Socket {
    if (!(this.socket instanceof RawSocket)) return this.socket.off("data", ClientConnection.onSocketData);
    const socket = (this.socket = this.socket.toNetSocket());
    this.listen(socket, false);
    return socket;
  }

  useTlsSocket(secure: net.Socket): void {
    this.socket = secure;
    this.listen(secure);
  }

  /**
   * A startup parameter or `-c` option: a reported parameter, or any other setting PostgreSQL could
   * accept (replayed with set_config on every server; an unknown or invalid one is refused before
   * the login completes, see `welcome`, as PostgreSQL does). False when the client was refused.
   */
  setAtStartup(name: string, value: string): boolean {
    const tracked = trackedParameter(name, this.host.config.trackExtraParameters);
    if (tracked) this.setParam(tracked, startupParamValue(tracked, value));
    else if (isSettingName(name))
      (this.session ??= new ClientSession()).setAtStartup(name.toLowerCase(), value);
    else {
      this.refuse(SqlState.ProtocolViolation, `unsupported startup parameter: ${name}`);
      return false;
    }
    return true;
  }

  async welcome(found: DatabaseDef | undefined, credentials: ServerCredentials): Promise<void> {
    let serverParams: Map<string, string>;
    // RELOAD may have changed or removed the entry while the client was authenticating
    const db = found && this.host.currentDatabase(found);
    if (found !== undefined && db === undefined) {
      return this.refuse(SqlState.AdminShutdown, "database removed");
    }
    if (db === undefined) {
      serverParams = adminWelcomeParams();
    } else {
      this.pool = this.host.poolFor(db, this.user, forcedCredentials(db) ?? credentials);
      // The names as the database and pool hold them, not copies from each startup packet.
      if (db.name === this.database) this.database = db.name;
      if (this.pool.user === this.user) this.user = this.pool.user;
      // a wait for the pool's first server, under query_wait_timeout as PgBouncer's CL_WAITING_LOGIN
      this.waitStart = now();
      try {
        serverParams = await this.pool.welcomeParams(this);
      } catch (err) {
        const e = err as Error & { code?: string };
        return this.refuse(e.code ?? SqlState.ConnectionFailure, `server login failed: ${e.message}`);
      } finally {
        this.waitStart = 0;
      }
    }
    if (this.state === "closed") return;
    // application_name_add_host: PgBouncer's " - host:port" suffix, so server logs show the real client
    if (this.host.config.applicationNameAddHost) {
      const appName = this.ownParams?.get("application_name") ?? serverParams.get("application_name") ?? "";
      const port = this.unixSocket ? this.host.port : this.socket.remotePort;
      this.setParam("application_name", `${appName} - ${this.addr}:${port}`);
    }
    if (this.ownParams) this.ownParams = this.startupParams = shared(this.ownParams);
    const out: Buffer[] = [authenticationOk()];
    for (const [name, value] of serverParams)
      out.push(parameterStatus(name, this.ownParams?.get(name) ?? value));
    out.push(backendKeyData(this.cancelPid, this.cancelSecret));
    const notice = this.host.config.loginNotifyMessage;
    if (notice !== "") out.push(poolerNotice(notice));
    out.push(readyForQuery("I"));
    if (db !== undefined && this.settings.size > 0) {
      // PostgreSQL refuses an unknown setting or a bad value at login: so do we, by having a server
      // take them (assign) before the client hears it is in.
      this.login!.pendingWelcome = Buffer.concat(out);
      this.pool!.enqueue(this);
      return;
    }
    this.enter(Buffer.concat(out), db === undefined ? "admin" : "idle");
  }

  private enter(welcome: Buffer, state: "admin" | "idle" | "active"): void {
    this.socket.write(welcome);
    const rest = this.login!.buf;
    this.login = null;
    this.state = state;
    if (this.pool) this.pool.clientCount++;
    if (this.host.config.logConnections) {
      this.log.info(
        {
          client: this.id,
          user: this.user,
          db: this.database,
          addr: this.addr,
          tls: describeTls(this.socket) || "no",
        },
        "login",
      );
    }
    if (state === "active") this.unlinkIfDone(this.server!);
    this.unblock(Block.Login);
    if (rest.length) this.onData(rest);
  }

  // ---- linked to a server ----

  /**
   * The pool gives this client a server. Parameters and settings the server has wrong are set
   * first; a failure there refuses the client with PostgreSQL's error (at login, for startup
   * settings: PostgreSQL refuses those at connect too).
   */
  assign(server: ServerConnection): void {
    const pool = this.pool!;
    this.server = server;
    server.client = this;
    // One whose named statements the pooler routes stays transaction-pooled after a switch to
    // session pooling: unrouted, they would reach a server that knows them by the pooler's names.
    this.pooled = pool.settings.mode !== "session" || this.preparedStatementCount > 0;
    server.refuseTransactionBlocks = pool.settings.mode === "statement";
    const sync = this.syncSql(server);
    if (sync === "") {
      this.waitStart = 0;
      return this.linked();
    }
    // The client still waits (for the SET): query_wait_timeout, counted from its wait's start, covers
    // this too, so neither a server that stops answering nor servers that keep dying here hold it forever.
    this.ownQueriesOf().sync(server, sync);
  }

  private ownQueriesOf(): OwnQueries {
    return (this.ownQueries ??= new OwnQueries(this));
  }

  /**
   * What makes `server` carry this client's parameters and settings: its own, else those
   * connect_query gave the server (its baseline), else the pool's defaults. "" when it already does.
   */
  private syncSql(server: ServerConnection): string {
    return (
      paramSyncSql(this.ownParams, this.pool!.paramDefaults, server.params) +
      settingsSyncSql(
        this.settings,
        server.settings,
        server.baseline.settings,
        server.loginSuperuser,
        server.params,
      )
    );
  }

  linked(): void {
    if (this.state === "closed") return;
    const welcome = this.login?.pendingWelcome;
    if (welcome == null) return this.startForwarding();
    this.enter(welcome, "active");
  }

  /** How named statements are routed on the current link (prepared.ts); made on first use. */
  private statementRoute(server: ServerConnection, breaksCopy: boolean): StatementRoute {
    const pool = this.pool!;
    const route = (this.route ??= {
      registry: pool.statements,
      stats: pool.stats,
      client: new ClientStatements(pool.statements),
      server: (server.statements ??= new ServerStatements(pool.statements)),
      replies: server.replies,
      get capacity() {
        return pool.settings.maxPreparedStatements;
      },
      searchPath: () =>
        this.localSearchPath || this.session?.touched ? null : this.settings.get("search_path"),
      toServer: (buf) => this.pass(buf),
      // a reply made in the server's place (ParseComplete, CloseComplete) counts as sent, as the
      // server's own that PgBouncer 1.18 passes on for the same traffic
      toClient: (buf) => {
        pool.stats.bytesSent += buf.length;
        this.write(buf);
      },
      noteEffect: (effect) => this.noteEffect(effect),
      mayBeInFailedTransaction: () => {
        const server = this.server;
        return server !== null && (server.txStatus === "E" || server.owedToClient > 0);
      },
      breaksCopy,
    });
    route.server = server.statements ??= new ServerStatements(pool.statements);
    route.replies = server.replies;
    route.breaksCopy = breaksCopy;
    return route;
  }

  /** Keeps a chunk for the next server: the usual single one costs a one-element array, not a grown one. */
  private keep(chunk: Buffer): void {
    if (this.queued === NO_CHUNKS) this.queued = [chunk];
    else this.queued.push(chunk);
  }

  startForwarding(): void {
    if (this.state === "closed") return;
    this.state = "active";
    this.feedQueued();
  }

  /** What waited for a server, or for its server's answers (stopped), is fed until it stops again. */
  private feedQueued(): void {
    this.stopped = false;
    const queued = this.queued;
    this.queued = NO_CHUNKS;
    for (let i = 0; i < queued.length; i++) {
      this.pool!.stats.bytesReceived += queued[i]!.length;
      this.feed(queued[i]!);
      if (this.state !== "active") return;
      if (this.stopped) {
        while (++i < queued.length) this.keep(queued[i]!);
        return;
      }
    }
    this.unblock(Block.Waiting);
    this.dropCancelIfNothingSent();
  }

  private feed(chunk: Buffer): void {
    let at: number;
    try {
      at = this.scan(chunk, this);
    } catch (err) {
      this.outgoing = null;
      return this.refuse(SqlState.ProtocolViolation, (err as Error).message);
    }
    if (this.stopped) {
      // the held message and the rest of the chunk, counted when fed again
      if (at < chunk.length) this.keep(chunk.subarray(at));
      for (const kept of this.queued) this.pool!.stats.bytesReceived -= kept.length;
      this.block(Block.Waiting);
    }
    this.flushToServer();
    if (this.terminated) this.close("client close request");
  }

  /**
   * The client's input stopped at a named-statement message that waits for `server`'s answers
   * (prepared.ts mustWait): it goes on once they are in. (If the server goes back to the pool
   * first, what was kept goes to the next one, as what arrives without a server.)
   */
  resumeIfAnswered(server: ServerConnection): void {
    if (this.state !== "active" || this.server !== server || this.mustWait(this.queued[0]!)) return;
    this.feedQueued();
    this.releaseIfOwedNothing();
  }

  /**
   * A chunk leaves in one write. In transaction pooling Parse, Bind, … are routed one by one, so a
   * chunk can become several slices: small ones are joined (copying a few hundred bytes costs less
   * than the stream's cork and writev bookkeeping), big ones go out corked, uncopied.
   */
  private flushToServer(): void {
    const out = this.outgoing;
    const server = this.server;
    if (server === null || out === null) return;
    this.outgoing = null;
    if (!Array.isArray(out)) {
      server.forward(out, this);
      return lendIfQueued(server, out);
    }
    let total = 0;
    for (const slice of out) total += slice.length;
    if (total <= JOIN_LIMIT) return server.forward(Buffer.concat(out, total), this);
    server.socket.cork();
    for (const slice of out) server.forward(slice, this);
    server.socket.uncork();
    lendIfQueued(server, out);
  }

  /**
   * The client's scanner is its own from the first chunk that ends mid-message until a chunk ends
   * on a boundary. A scan that throws leaves it with the client, as broken as the stream.
   * Re-entrancy is safe: a client scanned while another one's scan runs finds no spare and makes one.
   */
  private scan(chunk: Buffer, visitor: FrameVisitor): number {
    let scanner = this.scanner;
    if (scanner === null) {
      const { maxPacketSize, disablePqexec } = this.host.config;
      const types = disablePqexec && this.state !== "admin" ? EXTENDED_ONLY : FRONTEND_TYPES;
      scanner =
        spareScanner?.maxPacketSize === maxPacketSize && spareScanner.types === types
          ? spareScanner
          : new FrameScanner(maxPacketSize, types, pqexecRefusal);
      spareScanner = null;
      this.scanner = scanner;
    }
    const at = scanner.feed(chunk, visitor);
    if (!scanner.atBoundary) return at;
    this.scanner = null;
    spareScanner = scanner;
    return at;
  }

  private get atBoundary(): boolean {
    return this.scanner === null || this.scanner.atBoundary;
  }

  /**
   * Nothing but what `rewrite` takes is read: a big message of any other type (a huge Query in
   * session pooling, a COPY row, a FunctionCall) streams through, its type alone tracked.
   */
  mustInspect(): boolean {
    return false;
  }

  streams(type: number): void {
    this.message(type);
  }

  /**
   * A big Query or Bind in transaction pooling (a bulk INSERT, a large parameter) streams through
   * instead of being assembled. A Bind is routed on its portal and statement names, at its start.
   * A Query is classified on the way (streamed-query.ts); unlike a whole one, it cannot be refused
   * under PIN_SESSION_STATE=off before it runs: the probe afterwards finds what it left.
   */
  rewritesPrefix(type: number, prefix: Buffer): boolean {
    if (type === Msg.Query) {
      this.track(type);
      this.server!.replies.push(EXPECT_OF[type]!);
      this.streamedQuery = new StreamedQuery();
      this.streamedQuery.feed(prefix, 5);
      this.pass(prefix);
      return true;
    }
    if (type !== Msg.Bind) return false;
    const portalEnd = prefix.indexOf(0, 5);
    // (one that must wait is read whole, to be kept)
    if (portalEnd < 0 || prefix.indexOf(0, portalEnd + 1) < 0 || this.mustWait(prefix)) return false;
    this.rewrite(type, prefix);
    return true;
  }

  streamBody(slice: Buffer, last: boolean): void {
    const sql = this.streamedQuery;
    if (sql !== null) {
      // the text ends before the message's terminating zero byte
      sql.feed(last ? slice.subarray(0, slice.length - 1) : slice);
      if (last) {
        this.streamedQuery = null;
        if (this.server !== null) this.noteEffect(sql.result(), "now");
      }
    }
    this.pass(slice);
  }

  /** Terminate always; in transaction/statement pooling also what may need rewriting or answering (ROUTED). */
  mayRewrite(type: number): boolean {
    return type === Msg.Terminate || (this.pooled && ROUTED[type] === 1);
  }

  /** The scanner's slices collect here (a method, where a callback would be a closure per client). */
  pass(slice: Buffer): void {
    const out = this.outgoing;
    if (out === null) this.outgoing = slice;
    else if (Array.isArray(out)) out.push(slice);
    else this.outgoing = [out, slice];
  }

  rewrite(type: number, msg: Buffer): void {
    // Terminate is the pooler's business: the server connection outlives the client.
    if (type === Msg.Terminate) {
      this.terminated = true;
      // not client traffic to PgBouncer's total_received either: it ends the client
      this.pool!.stats.bytesReceived -= msg.length;
      return;
    }
    if (this.mustWait(msg)) {
      this.stopped = true;
      this.queued = [msg];
      return;
    }
    const breaksCopy = this.server!.copyIn && !this.server!.copyBroken;
    this.track(type);
    const replies = this.server!.replies;
    const effect = type === Msg.Query ? classifySql(msg, 5, msg.length - 1) : parseEffect(type, msg);
    if (effect.creates !== null && !this.pool!.settings.pinSessionState) {
      const refusal = this.pinRefusal(effect.creates);
      replies.push(EXPECT_OF[type]!, { mapError: () => refusal });
      this.pass(type === Msg.Query ? FAILING_QUERY : FAILING_PARSE);
      return;
    }
    if (type !== Msg.Query && this.routesStatements()) {
      // a named Parse's effect is the routing's to note (prepared.ts): it runs at a Bind, not here
      if (type !== Msg.Parse || msg[5] === 0) this.noteEffect(effect);
      return routeStatementMessage(type, msg, this.statementRoute(this.server!, breaksCopy));
    }
    if (type === Msg.Query && this.server!.statements?.checks != null)
      settleBeforeQuery(this.statementRoute(this.server!, breaksCopy));
    const drop = this.noteEffect(
      type === Msg.Query ? effect : this.unroutedEffect(type, msg, effect),
      type === Msg.Query ? "query" : "sync",
    );
    replies.push(EXPECT_OF[type]!, drop);
    this.pass(msg);
  }

  /** Whether a client message must wait for its server's answers before it is routed (prepared.ts). */
  private mustWait(msg: Buffer): boolean {
    const type = msg[0]!;
    if (type === Msg.Query) return this.route !== null && this.dropMustWait(msg);
    if (!this.routesStatements()) return false;
    const server = this.server!;
    return mustWait(type, msg, this.statementRoute(server, server.copyIn && !server.copyBroken));
  }

  /**
   * A Query with DEALLOCATE ALL or DISCARD ALL waits for the answers to what was sent before it,
   * when they come without it (not in a COPY FROM STDIN, which it is to break off): the names it
   * keeps in case it fails (prepared.ts dropNames) are then the names, not guesses that an error
   * before it may undo.
   */
  private dropMustWait(msg: Buffer): boolean {
    const server = this.server!;
    return (
      server.replies.endsRequest() && !server.copyIn && classifySql(msg, 5, msg.length - 1).dropsStatements
    );
  }

  /**
   * Without the pooler's statement routing (max_prepared_statements = 0), a statement that touches
   * the session is remembered by name: each Bind runs it again (`set_config($1, $2, false)` with
   * other names), as the routed path re-notes its Statement's effect.
   */
  private unroutedEffect(type: number, msg: Buffer, effect: SessionEffect): SessionEffect {
    if (type !== Msg.Parse && type !== Msg.Bind) return effect;
    // most clients never prepare one: their Binds cost nothing here
    if (this.statementEffects === null && !(type === Msg.Parse && effect.touches)) return effect;
    const span = statementNameSpan(type, msg);
    const name = msg.toString("utf8", span.start, span.end);
    if (type === Msg.Bind) return this.statementEffects?.get(name) ?? effect;
    if (effect.touches) (this.statementEffects ??= new Map()).set(name, effect);
    else this.statementEffects?.delete(name);
    return effect;
  }

  /** Named statements are the pooler's when max_prepared_statements is on (or the client still has some from before it was turned off). */
  private routesStatements(): boolean {
    return this.pool!.settings.maxPreparedStatements > 0 || (this.route?.client.size ?? 0) > 0;
  }

  message(type: number): void {
    const server = this.server!;
    if (type === Msg.CopyDone || type === Msg.CopyFail) {
      // the end of the COPY running, or of one that a request sent before is to start (copyFate);
      // after another message broke the COPY off, PostgreSQL ignores it, and the COPY ends with
      // the server's error (ServerConnection.copyEnded)
      if (!server.copyIn) server.replies.copyEndSent();
      else if (!server.copyBroken) server.copyIn = false;
    } else if (server.copyIn && !server.copyBroken && (type === Msg.Sync || type === Msg.Flush)) {
      // PostgreSQL ignores Sync and Flush during COPY FROM STDIN: no reply is owed for them (once
      // another message broke the COPY off, they are read as usual)
      return;
    }
    const owedBefore = server.owedToClient;
    this.track(type);
    const expect = EXPECT_OF[type];
    if (expect === undefined) return;
    if (this.pooled) server.replies.push(expect);
    else server.replies.pushInSession(expect, owedBefore);
  }

  /** What the release decision needs to know of a client message. */
  private track(type: number): void {
    if (type !== Msg.CopyData && this.server!.copyIn) this.server!.copyInterrupted();
    switch (type) {
      case Msg.Sync:
        this.startQuery();
        this.inBatch = false;
        return;
      case Msg.Query:
      case Msg.FunctionCall:
        this.startQuery();
        this.inBatch = false;
        return;
      case Msg.Execute:
        this.beginBatch();
        return;
      case Msg.Parse:
      case Msg.Bind:
      case Msg.Describe:
      case Msg.Close:
      case Msg.Flush:
        this.beginBatch();
        return;
      default:
        return; // COPY data flow: its end is announced by the server's ReadyForQuery
    }
  }

  /**
   * `dropsUntil`: when a DEALLOCATE ALL or DISCARD ALL in it is known to have run or not (a Query's
   * reply entry is returned for it: prepared.ts dropNames).
   */
  private noteEffect(
    effect: SessionEffect,
    dropsUntil: "query" | "sync" | "now" = "sync",
  ): Special | undefined {
    if (effect.setsSearchPathLocally) this.localSearchPath = true;
    if (!effect.touches) return undefined;
    this.noteResets(effect);
    (this.session ??= new ClientSession()).note(effect);
    if (!effect.dropsStatements) return undefined;
    // DEALLOCATE ALL / DISCARD ALL: whatever the pooler had prepared on this server may be gone
    // (the statement may still fail): Close before reusing any.
    this.server!.statements?.markAllUncertain();
    if (this.route === null) return undefined;
    return dropNames(this.statementRoute(this.server!, this.route.breaksCopy), dropsUntil);
  }

  private pinRefusal(state: HeldState): Buffer {
    const mode = this.pool!.settings.mode;
    return errorResponse({
      severity: "ERROR",
      code: SqlState.FeatureNotSupported,
      message: `${HELD_STATE_NAMES[state]} is not supported in ${mode} pooling mode (PIN_SESSION_STATE=off)`,
    });
  }

  /** Named statements it has prepared through the pooler (SHOW CLIENTS' prepared_statements). */
  get preparedStatementCount(): number {
    return this.route?.client.size ?? 0;
  }

  /**
   * When the request the server is working on started (clock.ts ms, unrounded): a query, or an
   * extended-protocol batch from its first message, Sync or not yet; 0 when none.
   */
  get queryStartedAt(): number {
    const server = this.server;
    return server !== null && (server.owedToClient > 0 || this.inBatch) ? server.queryStart : 0;
  }

  /** Nothing of a request is under way on its server: no reply owed, no batch or message half sent. */
  get betweenRequests(): boolean {
    return this.queryStartedAt === 0 && this.atBoundary;
  }

  /**
   * A Query, FunctionCall or Sync goes to the server: a query, counted as it starts (as PgBouncer's).
   * One that ends a batch stands for it: the batch started, and was counted, at its first message.
   */
  private startQuery(): void {
    const server = this.server!;
    if (!this.inBatch) {
      if (server.pendingReplies === 0) this.requestStarts(server);
      this.pool!.stats.queryCount++;
    }
    server.pendingReplies++;
  }

  /** PostgreSQL will not answer `count` Syncs or Queries counted as they went (ServerPeer). */
  queriesSkipped(count: number): void {
    this.pool!.stats.queryCount -= count;
  }

  /**
   * The first message of an extended-protocol batch: timeouts count from here, and so does SHOW
   * STATS' query count (PgBouncer 1.18 counts a query at its first message, Sync or not yet).
   */
  private beginBatch(): void {
    if (this.inBatch) return;
    this.inBatch = true;
    this.pool!.stats.queryCount++;
    const server = this.server!;
    if (server.pendingReplies === 0) this.requestStarts(server);
  }

  /**
   * The server's COPY FROM STDIN ignored the Syncs sent behind its Execute, or it skipped a Query
   * behind a failed extended-protocol message: to PostgreSQL the batch goes on until the client's
   * next Sync, and until then the server is not between requests.
   */
  batchResumed(): void {
    if (this.inBatch) return;
    this.inBatch = true;
    // the Sync or Query that ended it, which stood for it in the query count, was taken back (queriesSkipped)
    this.pool!.stats.queryCount++;
  }

  private requestStarts(server: ServerConnection): void {
    const now = performance.now();
    server.queryStart = now;
    if (server.txStatus === "I") {
      server.xactStart = now;
      this.pool!.stats.xactCount++;
    }
    if (this.cancelLater !== null) {
      this.cancelLater.sendOnceRunning(this, server, now);
      this.cancelLater = null;
    }
  }

  /**
   * The server sent ReadyForQuery (and everything before it has been forwarded). In transaction
   * and statement pooling the server goes back to the pool here, once it owes nothing, the client
   * is between messages and outside any transaction.
   */
  onServerChunkDone(server: ServerConnection): void {
    // It told this client FATAL and is going away: it must not reach the pool, where the next
    // client would lose it without a word (toldClientFatal).
    if (server.toldClientFatal) return server.close("server sent FATAL");
    if (server.pendingReplies > 0) return;
    this.pool!.stats.recordRequestEnded(server);
    this.unlinkIfDone(server);
    // one keeping its server (session pooling, pinned) is not held back by the pause: left to the
    // shutdown's next look, it would have started its next transaction, to be cut off in it
    if (this.host.waitsForServers && this.idleOnServer) {
      this.refuse(SqlState.AdminShutdown, "pooler is shutting down");
    }
  }

  /** It keeps its server, where nothing runs: no request, no transaction, no pooler's own query. */
  get idleOnServer(): boolean {
    const server = this.server;
    return (
      this.state === "active" &&
      server !== null &&
      server.txStatus === "I" &&
      server.pendingReplies === 0 &&
      this.atBoundary &&
      !this.inBatch
    );
  }

  /**
   * The server's last ReadyForQuery came while the client was half-way through a message that owes
   * no reply (the CopyData after a COPY failed): the decision it put off is taken once that ends.
   */
  private releaseIfOwedNothing(): void {
    const server = this.server;
    if (this.state === "active" && server !== null && server.pendingReplies === 0) this.unlinkIfDone(server);
  }

  private unlinkIfDone(server: ServerConnection): void {
    if (!this.atBoundary || this.inBatch || !this.pooled) return;
    if (server.txStatus !== "I") {
      if (this.pool!.settings.mode === "statement") {
        this.refuse(SqlState.FeatureNotSupported, "transaction blocks not allowed in statement pooling mode");
      }
      return;
    }
    this.localSearchPath = false;
    if (this.session?.touched) return this.ownQueriesOf().probe(server);
    if (!this.pinned) this.unlink(server);
  }

  /**
   * The pooler's own query for it runs on its server (the probe, the SET of its settings), which
   * PostgreSQL would not have run: a cancel request then waits for the request it is meant for.
   */
  get runsOwnQuery(): boolean {
    return this.ownQueries?.running ?? false;
  }

  /** The session probe runs for it. */
  get probing(): boolean {
    return this.ownQueries?.probing ?? false;
  }

  /** Bytes of the client's that the pooler has not sent on yet: a request of its under way. */
  get sentMeanwhile(): boolean {
    return this.queued.length > 0 || this.socket.readableLength > 0;
  }

  /**
   * A cancel request that came while the pooler's own query ran, for the request the client sent
   * meanwhile (client-held-cancel.ts): `send` once that request starts on a server, `drop` if the
   * client goes first or what it sent starts none. One is enough for it.
   */
  cancelOnceSent(send: () => void, drop: () => void): void {
    if (this.cancelLater !== null) return drop();
    this.cancelLater = new HeldClientCancel(send, drop);
  }

  /**
   * What a held cancel waited for is all read and started no request (part of a message):
   * PostgreSQL ignores a cancel while it reads a command, so it cancels nothing.
   */
  private dropCancelIfNothingSent(): void {
    if (this.cancelLater === null || this.sentMeanwhile) return;
    this.cancelLater.drop();
    this.cancelLater = null;
  }

  /** What the probe found on `server`: the client keeps it (pinned) or gives it back. */
  probed(server: ServerConnection, rows: Row[]): void {
    if (this.state === "closed") return;
    this.waitStart = 0;
    const result = readProbe(rows, this.pool!.user, server.baseline);
    const reported = (name: string): boolean =>
      trackedParameter(name, this.host.config.trackExtraParameters) !== null;
    server.settings = this.session!.update(result, reported, server.baseline.settings);
    this.restoreParams(result.settings);
    // a setting it cannot name keeps the client on its server, for as long as it stays
    this.setHeld(this.session!.unnamedSetting ? [...result.held, "unnamed setting"] : result.held);
    if (this.pinned && !this.pool!.settings.pinSessionState) {
      // state the classifier did not see coming (created inside a function, a DO block, …)
      const what = this.held.map((h) => HELD_STATE_NAMES[h]).join(", ");
      return this.refuse(
        SqlState.FeatureNotSupported,
        `the session holds ${what}, not supported in ${this.pool!.settings.mode} pooling mode (PIN_SESSION_STATE=off)`,
      );
    }
    if (!this.pinned) return this.unlink(server);
    // between transactions, as onServerChunkDone's: what it sent meanwhile would start the next one
    if (this.host.waitsForServers) return this.refuse(SqlState.AdminShutdown, "pooler is shutting down");
    // Kept: bring back the startup (or connect_query) values a RESET took away before the client goes on.
    const sync = this.syncSql(server);
    if (sync === "") return this.startForwarding();
    this.ownQueries!.restore(server, sync);
  }

  /**
   * The connection is a CancelRequest's, held open until the cancel has been acted on (at most
   * cancel_wait_timeout): no login timeout or shutdown ends it sooner, and nothing is written on it.
   */
  get holdsCancel(): boolean {
    return this.login?.holdsCancel ?? false;
  }

  /** What a held CancelRequest is on its way to. */
  get heldCancel(): HeldCancel | null {
    return this.login?.heldCancel ?? null;
  }

  get loggingIn(): boolean {
    return this.state === "login";
  }

  /**
   * Whether the client keeps its server across transactions: its server holds session state that
   * cannot be recreated elsewhere (`pinnedState` says which). Counted in Pool.pinnedClients.
   */
  get pinned(): boolean {
    return this.held.length > 0;
  }

  get pinnedState(): readonly HeldState[] {
    return this.held;
  }

  private setHeld(held: readonly HeldState[]): void {
    const was = this.pinned;
    this.held = held;
    if (was === this.pinned) return;
    this.pool!.pinnedClients += this.pinned ? 1 : -1;
    this.log.debug({ client: this.id, server: this.server?.id, held }, this.pinned ? "pinned" : "unpinned");
  }

  /** The server goes back to the pool; what the client sent meanwhile waits for the next one. */
  private unlink(server: ServerConnection): void {
    this.server = null;
    server.statements?.released();
    this.pool!.release(server, false);
    if (this.queued.length > 0) {
      this.state = "waiting";
      this.pool!.enqueue(this);
    } else {
      this.state = "idle";
      this.unblock(Block.Waiting);
    }
  }

  /** What the server sends this client counts as sent (SHOW STATS total_sent). */
  override write(buf: Buffer, source?: Connection): void {
    if (source !== undefined && this.pool) this.pool.stats.bytesSent += buf.length;
    super.write(buf, source);
  }

  onParameterStatus(name: string, value: string): void {
    if (trackedParameter(name, this.host.config.trackExtraParameters)) {
      this.setParam(name, value);
      this.ownParams = shared(this.ownParams!);
    }
  }

  private noteResets(effect: SessionEffect): void {
    const before = this.resetParams;
    if (effect.resetsSettings) this.resetParams = "all";
    else if (before !== "all" && effect.resets.length > 0) {
      this.resetParams = new Set([...(before ?? []), ...effect.resets]);
    }
  }

  /**
   * RESET, RESET ALL or DISCARD ALL took reported parameters back to the server's own start-up
   * values, where PostgreSQL takes a session back to the client's, and where the pool's other
   * servers show what connect_query set: those a RESET covered and the probe did not find SET
   * again afterwards (`sessionSet`) are the client's startup values again, else the pool's
   * defaults. The next server sync applies them; the client hears them now, as a session of its
   * own would have kept them all along.
   */
  private restoreParams(sessionSet: ReadonlyMap<string, string>): void {
    const reset = this.resetParams;
    this.resetParams = null;
    if (reset === null) return;
    const startup = this.startupParams;
    const restore = (value: string, name: string): void => {
      const lower = name.toLowerCase();
      if (reset !== "all" && !reset.has(lower)) return;
      if (sessionSet.has(lower) || this.param(name) === value) return;
      this.setParam(name, value);
      this.write(parameterStatus(name, value));
    };
    startup?.forEach(restore);
    this.pool!.paramDefaults.forEach((value, name) => {
      if (!startup?.has(name)) restore(value, name);
    });
    if (this.ownParams !== null) this.ownParams = shared(this.ownParams);
  }

  /** The session settings to replay on each server (see `session`). */
  get settings(): ReadonlyMap<string, string> {
    return this.session?.settings ?? NO_SETTINGS;
  }

  private setParam(name: string, value: string): void {
    this.ownParams = withParam(this.ownParams, name, value);
  }

  /** A tracked parameter's value for this client (its own, or its pool's default). */
  param(name: string): string | undefined {
    return this.ownParams?.get(name) ?? this.pool?.paramDefaults.get(name);
  }

  onServerLost(server: ServerConnection, reason: string, fatal: ServerError | null): void {
    this.server = null;
    if (this.state === "closed") return;
    // nothing of the client's reached it: another server will do, as if it had died idle in the pool
    if (this.ownQueries?.syncingOn === server) {
      this.ownQueries.syncingOn = null;
      return this.pool!.enqueue(this, this.waitStart);
    }
    if (server.toldClientFatal) this.close(`server closed after a FATAL: ${reason}`);
    // its backend went while the pooler asked it about the session: PostgreSQL's own words
    else if (fatal !== null) this.endWith(fatal.raw, `server closed after a FATAL: ${fatal.message}`);
    else this.refuse(SqlState.ConnectionFailure, `server conn crashed? (${reason})`);
  }

  // ---- admin console ----

  private feedAdmin(chunk: Buffer): void {
    try {
      // Made on first use: most clients never talk to the console, and every idle client's bytes count.
      this.adminVisitor ??= new AdminVisitor(this, this.host);
      this.scan(chunk, this.adminVisitor);
    } catch (err) {
      this.refuse(SqlState.ProtocolViolation, (err as Error).message);
    }
  }

  private adminVisitor: AdminVisitor | null = null;

  // ---- refusals and closing ----

  notice(message: string): void {
    this.write(poolerNotice(message));
  }

  /**
   * Every refusal: a FATAL ErrorResponse with a real SQLSTATE, then a clean close. `closeServer`
   * closes the server it holds too, where its leaving would roll that back and keep it.
   */
  refuse(code: string, message: string, closeServer = false): void {
    if (this.state === "closed") return;
    if (this.host.config.logPoolerErrors) {
      this.log.warn(
        { client: this.id, user: this.user, db: this.database, code },
        `closing client: ${message}`,
      );
    }
    this.endWith(errorResponse({ severity: "FATAL", code, message }), message, closeServer);
  }

  /** Closes the client after a last FATAL ErrorResponse (`fatal`, whole). */
  private endWith(fatal: Buffer, reason: string, closeServer = false): void {
    // mid-handshake (client_login_timeout, say) a plaintext message would land in the TLS stream;
    // PostgreSQL writes nothing on a cancel request's connection, it closes it
    if (this.socket.writable && !this.login?.handshaking && !this.holdsCancel) this.socket.end(fatal);
    this.close(reason, closeServer);
  }

  close(reason: string, closeServer = false): void {
    if (this.state === "closed") return;
    const wasLoggedIn = this.state !== "login";
    this.state = "closed";
    this.login?.lookup?.abort();
    if (this.waitStart) this.pool?.dequeue(this);
    const server = this.server;
    this.server = null;
    if (server) {
      if (closeServer) dropServer(this.pool!, server, reason);
      else
        returnServer(this.pool!, server, {
          pooled: this.pooled,
          midRequest: !this.atBoundary || this.inBatch,
          sessionState: this.pinned || this.session?.touched === true,
        });
    }
    if (this.pinned) this.setHeld(NOTHING_HELD);
    this.cancelLater?.drop();
    this.cancelLater = null;
    this.route?.client.clear();
    if (wasLoggedIn && this.pool) this.pool.clientCount--;
    if (this.admitted) this.host.clientLeft(this.database, this.user);
    this.host.clientClosed(this);
    if (!this.socket.destroyed) lingeringClose(this.socket);
    // as PgBouncer, also a login that failed once it had named its user (a wrong password, say)
    if ((wasLoggedIn || this.user !== "") && this.host.config.logDisconnections) {
      this.log.info({ client: this.id, user: this.user, db: this.database, reason }, "closing");
    }
  }
}

/** The session effect of a Parse's SQL (Bind, Describe and Close carry none of their own). */
function parseEffect(type: number, msg: Buffer): SessionEffect {
  if (type !== Msg.Parse) return NO_EFFECT;
  const nameEnd = msg.indexOf(0, 5);
  return classifySql(msg, nameEnd + 1, msg.indexOf(0, nameEnd + 1));
}

/** Slices of the read all clients share, written to `server` and queued there, must outlive the read. */
function lendIfQueued(server: ServerConnection, sent: Buffer | Buffer[]): void {
  if (server.socket.writableLength === 0) return;
  if (Array.isArray(sent) ? sent.some(isShared) : isShared(sent)) lend(server.socket);
}

/** A NoticeResponse of the pooler's own, as PgBouncer words them (NOTICE, 00000). */
function poolerNotice(message: string): Buffer {
  return noticeResponse({ severity: "NOTICE", code: SqlState.SuccessfulCompletion, message });
}

function isTerminate(chunk: Buffer): boolean {
  return chunk.length === 5 && chunk[0] === Msg.Terminate;
}
