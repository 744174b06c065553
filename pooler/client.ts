// One client connection: the login state machine (startup packet, SSL/GSS refusal, cancel
// requests, authentication, welcome), then routing its messages to whichever server it holds.
// The pooling decision — when a server goes back to the pool — is made here, in
// onServerChunkDone, and nowhere else.
import crypto from "node:crypto";
import type net from "node:net";
import type { DatabaseDef, PoolerConfig, UserSecret } from "./config/types.ts";
import { ClientAuth, type AuthStep } from "./client-auth.ts";
import { Block, Connection } from "./connection.ts";
import type { Logger } from "./log.ts";
import type { Pool, PoolClient } from "./pool.ts";
import { FrameScanner, ProtocolViolation, takeStartupPacket, type FrameVisitor } from "./protocol/framing.ts";
import {
  Msg,
  authenticationOk,
  backendKeyData,
  errorResponse,
  parameterStatus,
  parseStartupPacket,
  readyForQuery,
} from "./protocol/messages.ts";
import { SqlState } from "./protocol/sqlstate.ts";
import type { ServerConnection, ServerCredentials, ServerPeer } from "./server.ts";
import { paramSyncSql, trackedParameter } from "./params.ts";

export type ClientState = "login" | "idle" | "waiting" | "active" | "admin" | "closed";

/** What a client needs from the pooler around it. */
export interface ClientHost {
  readonly config: PoolerConfig;
  readonly log: Logger;
  readonly shuttingDown: boolean;
  lookupSecret(user: string, db: DatabaseDef): Promise<UserSecret | undefined>;
  findDatabase(name: string): DatabaseDef | undefined;
  poolFor(db: DatabaseDef, user: string, credentials: ServerCredentials): Pool;
  cancel(pid: number, secret: number): void;
  registerCancelKey(client: ClientConnection): void;
  clientClosed(client: ClientConnection): void;
  /** The admin console, for clients of the virtual `pgbouncer` database. */
  adminMessage(client: ClientConnection, type: number, msg: Buffer): void;
  isAdminUser(user: string): "admin" | "stats" | null;
}

/** The virtual database of the admin console. */
export const ADMIN_DB = "pgbouncer";

/** Startup parameters every client may send: forwarded, tracked, or consumed by the pooler. */
const KNOWN_STARTUP = new Set(["user", "database", "replication"]);

export class ClientConnection extends Connection implements PoolClient, ServerPeer, FrameVisitor {
  state: ClientState = "login";
  user = "";
  database = "";
  pool: Pool | null = null;
  server: ServerConnection | null = null;
  /** Parameter values this client expects its server to have (name in ParameterStatus case). */
  readonly params = new Map<string, string>();
  cancelPid = 0;
  cancelSecret = 0;
  waitStart = 0;
  /** Set when a refusal must be sent after the startup packet (max_client_conn, shutdown). */
  pendingRefusal: { code: string; message: string } | null = null;
  adminRole: "admin" | "stats" | null = null;

  private startupBuf: Buffer = Buffer.alloc(0);
  private auth: ClientAuth | null = null;
  private readonly scanner: FrameScanner;
  /** Bytes that arrived while the client had no server; sent once it gets one. */
  private queued: Buffer[] = [];
  /** Extended-protocol messages were sent since the last Sync: the server must stay linked. */
  private inBatch = false;
  private terminated = false;
  /** Start of the current query / transaction (performance.now(), ms). */
  private queryStart = 0;
  private queryWallStart = 0;
  private xactStart = 0;
  private queriesInFlight = 0;
  private readonly toServer = (slice: Buffer): void => this.server!.forward(slice, this);

  constructor(
    socket: net.Socket,
    private readonly host: ClientHost,
  ) {
    super(socket);
    this.scanner = new FrameScanner(host.config.maxPacketSize);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => this.close(`client socket error: ${err.message}`));
    socket.on("close", () => this.close("client unexpected eof"));
  }

  get log(): Logger {
    return this.host.log;
  }

  private onData(chunk: Buffer): void {
    this.lastActivity = Date.now();
    switch (this.state) {
      case "login":
        return this.onLoginData(chunk);
      case "active":
        if (this.pool) this.pool.stats.bytesReceived += chunk.length;
        return this.feed(chunk);
      case "idle":
        if (isTerminate(chunk)) return this.close("client sent Terminate");
        this.queued.push(chunk);
        this.state = "waiting";
        this.block(Block.Waiting);
        this.pool!.enqueue(this);
        return;
      case "waiting":
        this.queued.push(chunk);
        return;
      case "admin":
        return this.feedAdmin(chunk);
      case "closed":
        return;
    }
  }

  // ---- login ----

  private onLoginData(chunk: Buffer): void {
    this.startupBuf = this.startupBuf.length ? Buffer.concat([this.startupBuf, chunk]) : chunk;
    if (this.auth) return this.onAuthData();
    let taken;
    try {
      taken = takeStartupPacket(this.startupBuf, this.host.config.maxPacketSize);
    } catch (err) {
      return this.refuse(SqlState.ProtocolViolation, (err as Error).message);
    }
    if (taken === null) return;
    this.startupBuf = taken.rest;
    let packet;
    try {
      packet = parseStartupPacket(taken.packet);
    } catch (err) {
      return this.refuse(SqlState.ProtocolViolation, `invalid startup packet: ${(err as Error).message}`);
    }
    switch (packet.kind) {
      case "ssl":
      case "gssenc":
        // No TLS yet: 'N' tells the client to go on in plain text (or give up if it requires TLS).
        this.socket.write("N");
        if (this.startupBuf.length) this.onLoginData(Buffer.alloc(0));
        return;
      case "cancel":
        this.host.cancel(packet.pid, packet.secret);
        this.socket.end();
        this.state = "closed";
        return;
      case "unsupported":
        return this.refuse(
          SqlState.FeatureNotSupported,
          `unsupported frontend protocol ${packet.version >>> 16}.${packet.version & 0xffff}: server supports 3.0 to 3.0`,
        );
      case "startup":
        void this.startup(packet.params);
        return;
    }
  }

  private async startup(params: Map<string, string>): Promise<void> {
    if (this.pendingRefusal) return this.refuse(this.pendingRefusal.code, this.pendingRefusal.message);
    const user = params.get("user");
    if (!user) {
      return this.refuse(SqlState.InvalidAuthorization, "no PostgreSQL user name specified in startup packet");
    }
    this.user = user;
    this.database = params.get("database") || user;
    if (params.has("replication")) {
      return this.refuse(SqlState.FeatureNotSupported, "replication connections are not supported by the pooler");
    }
    const ignored = this.host.config.ignoreStartupParameters;
    for (const [name, value] of params) {
      const tracked = trackedParameter(name, this.host.config.trackExtraParameters);
      if (tracked) this.params.set(tracked, value);
      else if (!KNOWN_STARTUP.has(name) && !ignored.includes(name)) {
        return this.refuse(SqlState.ProtocolViolation, `unsupported startup parameter: ${name}`);
      }
    }
    const isAdmin = this.database === ADMIN_DB;
    const db = isAdmin ? undefined : this.host.findDatabase(this.database);
    if (!isAdmin && db === undefined) {
      return this.refuse(SqlState.InvalidCatalogName, `no such database: ${this.database}`);
    }
    if (isAdmin) {
      this.adminRole = this.host.isAdminUser(user);
      if (this.adminRole === null && this.host.config.authType !== "any") {
        return this.refuse(SqlState.InsufficientPrivilege, "not allowed");
      }
    }
    let secret: UserSecret | undefined;
    try {
      secret = db ? await this.host.lookupSecret(user, db) : this.host.config.authUsers.get(user);
    } catch (err) {
      return this.refuse(SqlState.ConnectionFailure, `auth_query failed: ${(err as Error).message}`);
    }
    if (this.state === "closed") return;
    this.auth = new ClientAuth(this.host.config.authType, user, secret);
    this.handleAuthStep(this.auth.start(), db);
  }

  private authDb: DatabaseDef | undefined;

  private handleAuthStep(step: AuthStep, db: DatabaseDef | undefined): void {
    this.authDb = db;
    switch (step.kind) {
      case "challenge":
        this.socket.write(step.message);
        if (this.startupBuf.length) this.onAuthData();
        return;
      case "fail":
        if (this.host.config.logPoolerErrors) {
          this.log.info({ client: this.id, user: this.user, db: this.database }, step.message);
        }
        return this.refuse(step.code, step.message);
      case "ok":
        this.auth = null;
        if (step.final) this.socket.write(step.final);
        void this.welcome(db, step.credentials);
        return;
    }
  }

  private onAuthData(): void {
    // Password messages are small and few: assemble them whole here, not on the hot path.
    while (this.auth && this.startupBuf.length >= 5) {
      const type = this.startupBuf[0]!;
      const len = this.startupBuf.readUInt32BE(1);
      if (len < 4 || len > 10000) return this.refuse(SqlState.ProtocolViolation, "invalid password packet length");
      if (this.startupBuf.length < len + 1) return;
      const msg = this.startupBuf.subarray(0, len + 1);
      this.startupBuf = this.startupBuf.subarray(len + 1);
      if (type === Msg.Terminate) return this.close("client gave up during login");
      if (type !== Msg.Password) {
        return this.refuse(SqlState.ProtocolViolation, `expected password response, got message type ${String.fromCharCode(type)}`);
      }
      this.handleAuthStep(this.auth.onPassword(msg), this.authDb);
    }
  }

  private async welcome(db: DatabaseDef | undefined, credentials: ServerCredentials): Promise<void> {
    let serverParams: Map<string, string>;
    if (db === undefined) {
      serverParams = adminWelcomeParams();
    } else {
      const forced = db.user ? { user: db.user, ...(db.password ? { password: db.password } : {}) } : credentials;
      this.pool = this.host.poolFor(db, this.user, forced);
      try {
        serverParams = await this.pool.welcomeParams();
      } catch (err) {
        const e = err as Error & { code?: string };
        return this.refuse(e.code ?? SqlState.ConnectionFailure, `server login failed: ${e.message}`);
      }
    }
    if (this.state === "closed") return;
    // Parameters the client did not choose take the server's values, so syncing later is exact.
    for (const [name, value] of serverParams) {
      if (trackedParameter(name, this.host.config.trackExtraParameters) && !this.params.has(name)) {
        this.params.set(name, value);
      }
    }
    if (!this.params.has("application_name")) this.params.set("application_name", "");
    const out: Buffer[] = [authenticationOk()];
    for (const [name, value] of serverParams) out.push(parameterStatus(name, this.params.get(name) ?? value));
    this.host.registerCancelKey(this);
    out.push(backendKeyData(this.cancelPid, this.cancelSecret), readyForQuery("I"));
    this.socket.write(Buffer.concat(out));
    this.state = db === undefined ? "admin" : "idle";
    this.pool?.clients.add(this);
    if (this.host.config.logConnections) {
      this.log.info({ client: this.id, user: this.user, db: this.database, addr: this.socket.remoteAddress }, "login");
    }
    if (this.startupBuf.length) {
      const rest = this.startupBuf;
      this.startupBuf = Buffer.alloc(0);
      this.onData(rest);
    }
  }

  newCancelKey(): void {
    this.cancelPid = crypto.randomInt(1, 0x7fffffff);
    this.cancelSecret = crypto.randomInt(0, 0x7fffffff);
  }

  // ---- linked to a server ----

  /** The pool gives this client a server. Parameters the server has wrong are SET first. */
  assign(server: ServerConnection): void {
    this.server = server;
    server.client = this;
    server.refuseTransactionBlocks = this.pool!.settings.mode === "statement";
    const sync = paramSyncSql(this.params, server.params);
    if (sync === "") return this.startForwarding();
    server.runInternal(sync).then(
      () => this.startForwarding(),
      (err: Error) => this.refuse(SqlState.ConnectionFailure, `could not set parameters on the server: ${err.message}`),
    );
  }

  private startForwarding(): void {
    if (this.state === "closed") return;
    this.state = "active";
    const queued = this.queued;
    this.queued = [];
    for (const chunk of queued) {
      this.pool!.stats.bytesReceived += chunk.length;
      this.feed(chunk);
      if (this.state !== "active") return;
    }
    this.unblock(Block.Waiting);
  }

  private feed(chunk: Buffer): void {
    try {
      this.scanner.feed(chunk, this, this.toServer);
    } catch (err) {
      if (!(err instanceof ProtocolViolation)) throw err;
      return this.refuse(SqlState.ProtocolViolation, err.message);
    }
    if (this.terminated) this.close("client sent Terminate");
  }

  mustInspect(type: number): boolean {
    return type !== Msg.CopyData;
  }

  mayRewrite(type: number): boolean {
    return type === Msg.Terminate;
  }

  /** Terminate is the pooler's business: the server connection outlives the client. */
  rewrite(): void {
    this.terminated = true;
  }

  message(type: number): void {
    switch (type) {
      case Msg.Query:
      case Msg.Sync:
      case Msg.FunctionCall:
        this.startQuery();
        this.inBatch = false;
        return;
      case Msg.Parse:
      case Msg.Bind:
      case Msg.Describe:
      case Msg.Execute:
      case Msg.Close:
      case Msg.Flush:
        this.inBatch = true;
        return;
      default:
        return; // COPY data flow: its end is announced by the server's ReadyForQuery
    }
  }

  /** When the query the server is working on started (ms since epoch), 0 when none. */
  get queryStartedAt(): number {
    return this.server && this.server.pendingReplies > 0 ? this.queryWallStart : 0;
  }

  private startQuery(): void {
    const server = this.server!;
    const now = performance.now();
    if (server.pendingReplies === 0) {
      this.queryStart = now;
      this.queryWallStart = Date.now();
    }
    if (server.pendingReplies === 0 && server.txStatus === "I") this.xactStart = now;
    server.pendingReplies++;
    this.queriesInFlight++;
  }

  /**
   * The server sent ReadyForQuery (and everything before it has been forwarded). In transaction
   * and statement pooling the server goes back to the pool here, once it owes nothing, the client
   * is between messages and outside any transaction.
   */
  onServerChunkDone(server: ServerConnection): void {
    if (server.pendingReplies > 0) return;
    this.recordStats(server);
    if (!this.scanner.atBoundary || this.inBatch) return;
    const mode = this.pool!.settings.mode;
    if (mode === "session") return;
    if (server.txStatus !== "I") {
      if (mode === "statement") {
        this.refuse(SqlState.FeatureNotSupported, "transaction blocks not allowed in statement pooling mode");
      }
      return;
    }
    this.server = null;
    this.state = "idle";
    this.pool!.release(server, false);
  }

  private recordStats(server: ServerConnection): void {
    const stats = this.pool!.stats;
    const now = performance.now();
    stats.queryCount += this.queriesInFlight;
    stats.queryTimeUs += Math.round((now - this.queryStart) * 1000);
    this.queriesInFlight = 0;
    if (server.txStatus === "I") {
      stats.xactCount++;
      stats.xactTimeUs += Math.round((now - this.xactStart) * 1000);
    }
  }

  onParameterStatus(name: string, value: string): void {
    if (trackedParameter(name, this.host.config.trackExtraParameters)) this.params.set(name, value);
  }

  onServerLost(server: ServerConnection, reason: string): void {
    this.server = null;
    if (this.state === "closed") return;
    if (server.toldClientFatal) this.close(`server closed after a FATAL: ${reason}`);
    else this.refuse(SqlState.ConnectionFailure, `server conn crashed? (${reason})`);
  }

  // ---- admin console ----

  private feedAdmin(chunk: Buffer): void {
    try {
      this.scanner.feed(chunk, this.adminVisitor, noEmit);
    } catch (err) {
      this.refuse(SqlState.ProtocolViolation, (err as Error).message);
    }
  }

  private readonly adminVisitor: FrameVisitor = {
    mustInspect: () => true,
    mayRewrite: () => true,
    message: () => undefined,
    rewrite: (type, msg) => {
      if (type === Msg.Terminate) this.close("client sent Terminate");
      else this.host.adminMessage(this, type, msg);
    },
  };

  // ---- refusals and closing ----

  /** Every refusal: a FATAL ErrorResponse with a real SQLSTATE, then a clean close. */
  refuse(code: string, message: string): void {
    if (this.state === "closed") return;
    if (this.host.config.logPoolerErrors) {
      this.log.warn({ client: this.id, user: this.user, db: this.database, code }, `closing client: ${message}`);
    }
    if (this.socket.writable) this.socket.end(errorResponse({ severity: "FATAL", code, message }));
    this.close(message);
  }

  close(reason: string): void {
    if (this.state === "closed") return;
    const wasLoggedIn = this.state !== "login";
    this.state = "closed";
    if (this.waitStart) this.pool?.dequeue(this);
    const server = this.server;
    this.server = null;
    if (server) this.returnServer(server);
    this.pool?.clients.delete(this);
    this.host.clientClosed(this);
    if (!this.socket.destroyed) {
      this.socket.end();
      this.socket.destroySoon();
    }
    if (wasLoggedIn && this.host.config.logDisconnections) {
      this.log.info({ client: this.id, user: this.user, db: this.database, reason }, "closing");
    }
  }

  /**
   * The client left while holding a server. The server is reused only if it is between messages:
   * idle ones are reset, open transactions rolled back first; a server that still owes replies or
   * holds half a message is closed rather than handed to someone else mid-pipeline.
   */
  private returnServer(server: ServerConnection): void {
    const pool = this.pool!;
    if (server.state !== "active") return;
    if (server.pendingReplies > 0 || !this.scanner.atBoundary || this.inBatch) {
      server.close("client left with a query in progress");
      pool.release(server, false);
    } else if (server.txStatus === "I") {
      pool.release(server, true);
    } else {
      pool.rollbackAndRelease(server);
    }
  }
}

function noEmit(): void {}

function isTerminate(chunk: Buffer): boolean {
  return chunk.length === 5 && chunk[0] === Msg.Terminate;
}

/** What the admin console presents itself as (PgBouncer sends the same few). */
function adminWelcomeParams(): Map<string, string> {
  return new Map([
    ["server_version", "1.25.2"],
    ["server_encoding", "UTF8"],
    ["client_encoding", "UTF8"],
    ["DateStyle", "ISO, MDY"],
    ["TimeZone", "UTC"],
    ["standard_conforming_strings", "on"],
    ["integer_datetimes", "on"],
    ["application_name", ""],
  ]);
}

