// One connection to PostgreSQL: login (whatever authentication the server asks for), then relaying
// its replies to the linked client, and the pooler's own queries (parameter sync, reset, rollback)
// whose replies nobody else sees.
import net from "node:net";
import { now, timerDelay } from "./clock.ts";
import { tlsRequired } from "./config/index.ts";
import { sendCancelRequest, type CancelConnection, type CancelTarget } from "./cancel-request.ts";
import { Block, Connection } from "./connection.ts";
import { pinnedLookup } from "./dns-cache.ts";
import { applyKeepalive } from "./keepalive.ts";
import { FrameScanner, type FrameVisitor } from "./protocol/framing.ts";
import {
  Auth,
  bind,
  BodyReader,
  execute,
  Msg,
  parse,
  parseErrorFields,
  parseParameterStatus,
  passwordMessage,
  query,
  saslInitialResponse,
  saslResponse,
  startupMessage,
  sync,
  terminate,
  type TransactionStatus,
} from "./protocol/messages.ts";
import { SqlState } from "./protocol/sqlstate.ts";
import { isMd5Secret, md5Response } from "./protocol/auth/md5.ts";
import { SASL_MECHANISM, ScramClientSession } from "./protocol/auth/scram.ts";
import type { ServerStatements } from "./statements.ts";
import { ReadBuffer } from "./read-buffer.ts";
import { serverEndpoint, socketErrorText } from "./unix-socket.ts";
import { Expect, ReplyQueue } from "./replies.ts";
import { classify, NO_BASELINE, type ServerBaseline } from "./session-state.ts";
import { isTls, requestTls } from "./tls.ts";

export type ServerState = "login" | "idle" | "active" | "used" | "closed";

const ignore = (): void => undefined;

/** How the pooler logs in to PostgreSQL for one pool. */
export interface ServerCredentials {
  user: string;
  /** Plain password or an md5 secret ("md5" + 32 hex). */
  password?: string;
  /** Keys recovered from a client's SCRAM exchange: SCRAM pass-through, as PgBouncer does. */
  scramKeys?: { clientKey: Buffer; serverKey: Buffer };
}

export interface ServerTarget extends CancelTarget {
  database: string;
  credentials: ServerCredentials;
  /** Startup parameters sent at connect (client_encoding, application_name, …). */
  startupParams: Record<string, string>;
  connectTimeout: number;
  maxPacketSize: number;
}

/** An error the server sent (kept whole so the client sees PostgreSQL's own words). */
export class ServerError extends Error {
  constructor(
    readonly fields: Map<string, string>,
    readonly raw: Buffer,
  ) {
    super(fields.get("M") ?? "server error");
  }
  get code(): string {
    return this.fields.get("C") ?? "XX000";
  }
  /** The server closes the connection after it. */
  get fatal(): boolean {
    return fatalSeverity(this.fields);
  }
}

/** The pooler's side of the link: a client that receives this server's replies. */
export interface ServerPeer extends Connection {
  onServerChunkDone(server: ServerConnection): void;
  /** Its input waits for this server's answers (prepared.ts mustWait): they may be in now. */
  readonly stopped: boolean;
  resumeIfAnswered(server: ServerConnection): void;
  /** The client changed a reported parameter (its own SET): it is now the client's wanted value. */
  onParameterStatus(name: string, value: string): void;
  /**
   * The server is gone; `fatal`: the FATAL it sent (57P01 of a terminated backend) while the
   * pooler's own query for this client ran, which the client has not seen.
   */
  onServerLost(server: ServerConnection, reason: string, fatal: ServerError | null): void;
  /** PostgreSQL ignored the Syncs behind a COPY's Execute, or skips to the next Sync: the client's batch is open again. */
  batchResumed(): void;
  /** PostgreSQL will not answer `count` of the Syncs and Queries the client sent: they are no queries. */
  queriesSkipped(count: number): void;
  /** Ends the client with a FATAL error (its server with it, unless between transactions). */
  refuse(code: string, message: string): void;
  /** Nothing of a request is under way: no reply owed, no batch or message half sent. */
  readonly betweenRequests: boolean;
}

/** A row of an internal query's result, in text format (null for SQL NULL). */
export type Row = (string | null)[];

interface Internal {
  resolve: (rows: Row[]) => void;
  reject: (err: Error) => void;
  error: ServerError | null;
  rows: Row[];
  /** The one who waits for it to end, either way (ownQuerySettled: the cleanup after a client left). */
  settled: (() => void) | null;
}

export class ServerConnection extends Connection<net.Socket> implements FrameVisitor {
  state: ServerState = "login";
  /** When the pool last set it to run the pooler's own queries (state "used"). */
  usedSince = 0;
  /** Set while a server that just passed server_check_query is handed out (server_check_delay=0 checks each reuse). */
  checked = false;
  client: ServerPeer | null = null;
  /** The server's current values of the GUC_REPORT parameters, from its ParameterStatus messages. */
  readonly params = new Map<string, string>();
  backendPid = 0;
  backendSecret = 0;
  txStatus: TransactionStatus = "I";
  /** ReadyForQuery messages the server still owes (Query, Sync and FunctionCall each earn one). */
  pendingReplies = 0;
  /** Set when the server saw a ReadyForQuery in the chunk being processed. */
  private sawReady = false;
  /** A FATAL from the server went through to the client: the server is going away. */
  toldClientFatal = false;
  /** Statement pooling: a transaction block is an error (set by the linked client). */
  refuseTransactionBlocks = false;
  /** Set when the server must not be reused (lifetime over, RECONNECT, a config change). */
  closeNeeded = false;
  /** What this server owes the linked client, in order (in session pooling: around extended-protocol messages only). */
  readonly replies = new ReplyQueue((untilSync) => {
    this.pendingReplies--;
    this.client?.queriesSkipped(1);
    // the Query ended the client's batch, but PostgreSQL's goes on to the next Sync: not between requests
    if (untilSync) this.client?.batchResumed();
  });
  /** Protocol-level statements prepared here by the pooler (transaction and statement pooling). */
  statements: ServerStatements | null = null;
  /**
   * The session settings (SET, set_config) this server carries that are not reported by
   * ParameterStatus: name → value as pg_settings prints it. Kept exact so a client linked next gets
   * RESET what it did not set (params.ts settingsSyncSql).
   */
  settings = new Map<string, string>();
  /** Whether the role it logged in as is a superuser (is_superuser at login): the settings sync's order. */
  loginSuperuser = true;
  /** What connect_query left here: every linked client's starting point (connect-query.ts). */
  baseline: ServerBaseline = NO_BASELINE;
  // The linked client's current query and transaction, kept here rather than on the client: only a
  // linked client has them, and thousands of idle clients each holding them add up.
  /**
   * When the query the server is working on started: performance.now() ms, unrounded for the
   * stats, on the same clock as clock.ts (the janitor's query_timeout).
   */
  queryStart = 0;
  /** When the current transaction started (performance.now() ms). */
  xactStart = 0;
  /** A COPY FROM STDIN runs: PostgreSQL ignores the client's Sync and Flush until it ends. */
  copyIn = false;
  /**
   * The client sent a message other than COPY's during the COPY FROM STDIN: PostgreSQL fails the
   * COPY on it and reads what follows as usual, its Syncs included.
   */
  copyBroken = false;
  closeReason = "";
  /** The errno of the socket error that closed it (ECONNREFUSED, …): how the pool judges a failed login. */
  socketError: string | null = null;
  /** The server ended the connection (a FATAL, a crash, a shutdown), not the pooler. */
  closedByServer = false;
  /** The TCP (or Unix socket) connection was made: a failure before it is a failed connect. */
  connected = false;
  /**
   * Cancel requests forwarded for this server's backend and not yet answered (PostgreSQL closes
   * the cancel connection once it has signalled the backend): until then the server must not go
   * to another client, whose query the late cancel would hit.
   */
  cancelsInFlight = 0;
  /** Runs once none is left: the client's own query, retried after its cancel hit it (client-own-queries.ts). */
  afterCancels: (() => void) | null = null;

  private readonly scanner: FrameScanner;
  private internal: Internal | null = null;
  private scram: ScramClientSession | null = null;
  private login: { resolve: () => void; reject: (err: Error) => void } | null = null;
  /** What the scanner passes on goes to the client (a function: the reply queue is handed it too). */
  readonly pass = (slice: Buffer): void => {
    const client = this.client!;
    client.write(slice, this);
    // still queued, the slice must outlive this read: the next one goes to another buffer
    if (client.socket.writableLength > 0) this.reads.lend();
  };
  private readonly onClosed: (server: ServerConnection) => void;

  private constructor(
    socket: net.Socket,
    readonly target: ServerTarget,
    onClosed: (server: ServerConnection) => void,
    private readonly reads: ReadBuffer,
  ) {
    super(socket);
    this.scanner = new FrameScanner(target.maxPacketSize);
    this.onClosed = onClosed;
  }

  /**
   * Connects and logs in; resolves once the server said ReadyForQuery and `setUp` (connect_query)
   * has run, both within server_connect_timeout.
   */
  static connect(
    target: ServerTarget,
    onClosed: (server: ServerConnection) => void,
    setUp?: (server: ServerConnection) => Promise<void>,
  ): { server: ServerConnection; ready: Promise<void> } {
    const reads = new ReadBuffer();
    const socket = net.connect({
      ...serverEndpoint(target.host, target.port, target.lookup),
      noDelay: true,
      onread: reads.onread,
    });
    const server = new ServerConnection(socket, target, onClosed, reads);
    const loggedIn = new Promise<void>((resolve, reject) => {
      server.login = { resolve, reject };
    });
    const ready = setUp === undefined ? loggedIn : loggedIn.then(() => setUp(server));
    // Callers attach handlers after connect() returns; a synchronous failure must not go unhandled.
    ready.catch(() => undefined);
    const timer = setTimeout(() => {
      // Logged in, connect_query still running: PostgreSQL 13 would run it to its end (a lock wait:
      // for ever) for a socket no one reads, and each login retry would leave one more backend.
      if (server.login === null && server.runsOwnQuery)
        server.sendCancel(target.connectTimeout, ignore, ignore);
      server.close(`server_connect_timeout (${target.connectTimeout / 1000} s)`);
    }, timerDelay(target.connectTimeout));
    ready.finally(() => clearTimeout(timer)).catch(() => undefined);
    applyKeepalive(socket, target.keepalive);
    server.listen(socket);
    socket.on("connect", () => {
      server.connected = true;
      requestTls(socket, target.tls, target.host, (take) => (reads.take = take)).then(
        (secure) => server.start(secure),
        (err: Error) => server.close(err.message),
      );
    });
    return { server, ready };
  }

  private listen(socket: net.Socket): void {
    socket.on("error", (err: NodeJS.ErrnoException) => {
      this.socketError ??= err.code ?? null;
      this.lost(`server socket error: ${socketErrorText(err)}`);
    });
    socket.on("close", () => this.lost("server closed the connection"));
  }

  /** TLS is settled (`socket` is the TLS one, or the plain one): reading starts, the login begins. */
  private start(socket: net.Socket): void {
    if (this.state === "closed") {
      socket.destroy();
      return;
    }
    const onData = (chunk: Buffer): void => this.onData(chunk);
    if (socket !== this.socket) {
      // TLS reads the plain socket itself now; what it decrypts comes as 'data'
      this.socket = socket;
      this.listen(socket);
      socket.on("data", onData);
    } else {
      this.reads.take = onData;
    }
    socket.write(
      startupMessage({
        user: this.target.credentials.user,
        database: this.target.database,
        ...this.target.startupParams,
      }),
    );
  }

  private onData(chunk: Buffer): void {
    this.lastActivity = now();
    this.sawReady = false;
    try {
      this.scanner.feed(chunk, this);
    } catch (err) {
      this.close(`bad server protocol: ${(err as Error).message}`);
      return;
    }
    if (this.sawReady && this.client && this.internal === null) this.client.onServerChunkDone(this);
    if (this.client?.stopped === true && this.internal === null) this.client.resumeIfAnswered(this);
  }

  // ---- FrameVisitor: what the hot path reads of the server's replies ----

  /**
   * Everything but row and COPY data is read whole, however big: the reply queue must see each
   * message that completes a request (a wide RowDescription can pass 64 kB).
   */
  mustInspect(type: number): boolean {
    return type !== Msg.DataRow && type !== Msg.CopyData;
  }

  /** Row and COPY data need no bookkeeping: the message that completes their request is read whole. */
  streams(): void {}

  streamBody(slice: Buffer): void {
    this.pass(slice);
  }

  /** What the pooler may rewrite of a server's replies is small: read whole. */
  rewritesPrefix(): boolean {
    return false;
  }

  /**
   * Replies to the pooler's own queries, login traffic and anything said while unlinked stay here.
   * In statement pooling a ReadyForQuery that opens a transaction block is held back: the client
   * gets PgBouncer's error instead of a transaction it may not have.
   */
  mayRewrite(type: number): boolean {
    return (
      this.client === null ||
      this.internal !== null ||
      (type === Msg.ReadyForQuery && this.refuseTransactionBlocks) ||
      this.replies.mustSee(type)
    );
  }

  message(type: number, chunk: Buffer, start: number, end: number): void {
    this.observe(type, chunk, start, end);
    this.replies.relayed(type);
  }

  /** What the pooler learns from a reply it relays (`chunk[start, end)`). */
  private observe(type: number, chunk: Buffer, start: number, end: number): void {
    if (type === Msg.ReadyForQuery) {
      this.noteReady(chunk[start + 5]!);
      this.sawReady = true;
    } else if (type === Msg.ParameterStatus) {
      const [name, value] = parseParameterStatus(chunk.subarray(start, end));
      this.params.set(name, value);
      if (this.internal === null) this.client?.onParameterStatus(name, value);
    } else if (type === Msg.CopyInResponse) {
      this.enterCopyIn();
    } else if (type === Msg.CommandComplete && this.statements?.dropsUnanswered === true) {
      this.statements.commandCompleted(chunk.toString("latin1", start + 5, end - 1));
    } else if (type === Msg.ErrorResponse && isFatal(chunk.subarray(start, end))) {
      // The client has its FATAL (e.g. pg_terminate_backend): it must not get a second one from us.
      this.toldClientFatal = true;
    }
    if (this.copyIn && (type === Msg.CommandComplete || type === Msg.ErrorResponse))
      this.copyEnded(chunk, start, end);
  }

  private copyEnded(chunk: Buffer, start: number, end: number): void {
    this.copyIn = false;
    if (chunk[start] !== Msg.ErrorResponse) return;
    // PostgreSQL read the client's next message only to fail the COPY with 08P01, and never does
    // it. Any other error ended the COPY before that message arrived: it runs, and is owed.
    if (parseErrorFields(chunk.subarray(start, end)).get("C") === SqlState.ProtocolViolation)
      this.replies.consumedByCopy();
  }

  /** The client sent a message other than COPY's during COPY FROM STDIN: PostgreSQL fails the COPY on it. */
  copyInterrupted(): void {
    this.copyBroken = true;
  }

  /**
   * The Syncs sent behind the COPY's Execute (or Query) before the CopyInResponse came get no
   * ReadyForQuery (libpq's PQexecParams sends one at once): they are not owed. They are those the
   * reply queue holds right behind that request, whatever the client pipelined behind them.
   */
  private enterCopyIn(): void {
    // an Execute's batch goes on through the Syncs ignored
    const byExecute = this.replies.headIs(Expect.Execute);
    const ignored = this.replies.ignoreSyncs();
    // The client's CopyDone (or CopyFail), or a message that breaks the COPY, may have gone already:
    // then a Sync it sends from here on is answered, not ignored.
    const fate = this.replies.copyFate();
    this.copyIn = fate !== "ended";
    this.copyBroken = fate === "broken";
    this.pendingReplies -= ignored;
    this.client?.queriesSkipped(ignored);
    if (ignored > 0 && byExecute && !this.replies.syncQueued()) this.client?.batchResumed();
  }

  private noteReady(status: number): void {
    this.txStatus = String.fromCharCode(status) as TransactionStatus;
    this.pendingReplies--;
  }

  rewrite(type: number, msg: Buffer): void {
    if (this.state === "login") return this.loginMessage(type, msg);
    if (this.client !== null && this.internal === null) {
      this.observe(type, msg, 0, msg.length);
      // a FATAL is the backend's last word, not an error of the head request's that the pooler
      // words its own way (PIN_SESSION_STATE=off's refusal): the client gets it as sent
      if (type === Msg.ErrorResponse && this.toldClientFatal) return this.pass(msg);
      // statement pooling's ReadyForQuery (see mayRewrite): held back when a transaction started
      const held = type === Msg.ReadyForQuery && this.refuseTransactionBlocks && this.txStatus !== "I";
      this.replies.reply(type, msg, held ? dropReply : this.pass);
      return;
    }
    switch (type) {
      case Msg.ParameterStatus: {
        const [name, value] = parseParameterStatus(msg);
        this.params.set(name, value);
        // The server's spelling of a value the pooler just SET (e.g. "iso" → "ISO, MDY") becomes
        // the client's, so the next link does not SET it again.
        this.client?.onParameterStatus(name, value);
        return;
      }
      case Msg.ErrorResponse: {
        const err = new ServerError(parseErrorFields(msg), Buffer.from(msg));
        if (this.internal) this.internal.error ??= err;
        else if (err.fatal) this.lost(`server said: ${err.message}`);
        return;
      }
      case Msg.DataRow:
        this.internal?.rows.push(readRow(msg));
        return;
      case Msg.NotificationResponse:
        // a LISTENing client's notification, arriving while the pooler runs its own query
        if (this.client !== null) this.pass(msg);
        return;
      case Msg.ReadyForQuery: {
        this.noteReady(msg[5]!);
        const done = this.internal;
        if (done === null) return;
        this.internal = null;
        if (done.error) done.reject(done.error);
        else done.resolve(done.rows);
        done.settled?.();
        return;
      }
      default:
        // notices of the pooler's own queries, anything said while no client is linked: nobody to tell
        return;
    }
  }

  // ---- login ----

  private loginMessage(type: number, msg: Buffer): void {
    try {
      switch (type) {
        case Msg.Authentication:
          return this.authenticate(msg);
        case Msg.ParameterStatus: {
          const [name, value] = parseParameterStatus(msg);
          this.params.set(name, value);
          if (name === "is_superuser") this.loginSuperuser = value === "on";
          return;
        }
        case Msg.BackendKeyData:
          this.backendPid = msg.readInt32BE(5);
          this.backendSecret = msg.readInt32BE(9);
          return;
        case Msg.ErrorResponse:
          return this.failLogin(new ServerError(parseErrorFields(msg), Buffer.from(msg)));
        case Msg.ReadyForQuery:
          this.txStatus = "I";
          this.state = "idle";
          this.login?.resolve();
          this.login = null;
          return;
        default:
          return; // NoticeResponse, NegotiateProtocolVersion: nothing to do
      }
    } catch (err) {
      this.failLogin(err as Error);
    }
  }

  private authenticate(msg: Buffer): void {
    const r = new BodyReader(msg);
    const code = r.int32();
    const creds = this.target.credentials;
    const password = creds.password;
    switch (code) {
      case Auth.Ok:
        // Mid-SCRAM, the server's signature is what proves it holds the password: it may not skip it.
        if (this.scram !== null) {
          throw new Error(
            "server sent AuthenticationOk before its SCRAM signature (AuthenticationSASLFinal)",
          );
        }
        return;
      case Auth.CleartextPassword:
        if (password === undefined || isMd5Secret(password)) {
          throw new Error("server asked for a cleartext password, but the pooler has none for this user");
        }
        this.socket.write(passwordMessage(password));
        return;
      case Auth.MD5Password:
        if (password === undefined) {
          throw new Error(
            "server asked for md5 authentication, but the pooler has no password for this user",
          );
        }
        this.socket.write(passwordMessage(md5Response(creds.user, password, r.bytes(4))));
        return;
      case Auth.SASL: {
        const mechanisms: string[] = [];
        for (let m = r.cstring(); m !== ""; m = r.cstring()) mechanisms.push(m);
        if (!mechanisms.includes(SASL_MECHANISM)) {
          throw new Error(`server offers no supported SASL mechanism (${mechanisms.join(", ")})`);
        }
        const secret =
          creds.scramKeys ?? (password !== undefined && !isMd5Secret(password) ? password : undefined);
        if (secret === undefined) {
          throw new Error(
            "server asked for SCRAM-SHA-256, but the pooler has neither the plain password nor the client's SCRAM keys",
          );
        }
        this.scram = new ScramClientSession(secret);
        this.socket.write(saslInitialResponse(SASL_MECHANISM, this.scram.clientFirst()));
        return;
      }
      case Auth.SASLContinue:
        // The server waits for our answer, so nothing else arrives while PBKDF2 runs.
        this.scram!.handleServerFirst(r.rest().toString("utf8")).then(
          (response) => {
            if (this.state !== "closed") this.socket.write(saslResponse(response));
          },
          (err: Error) => this.failLogin(err),
        );
        return;
      case Auth.SASLFinal:
        this.scram!.verifyServerFinal(r.rest().toString("utf8"));
        this.scram = null;
        return;
      default:
        throw new Error(`server asked for an unsupported authentication method (code ${code})`);
    }
  }

  private failLogin(err: Error): void {
    this.login?.reject(err);
    this.login = null;
    this.close(`login failed: ${err.message}`);
  }

  /**
   * Asks PostgreSQL to cancel what this server's backend runs, on a connection of its own (over TLS
   * too when this one uses it, or the mode requires it: a server may accept only TLS); `done` once that
   * connection has closed, or after `timeoutMs`.
   */
  sendCancel(timeoutMs: number, failed: (err: Error) => void, done: () => void): CancelConnection {
    const key = { pid: this.backendPid, secret: this.backendSecret };
    // To the address this server is connected to: a host name may stand for several PostgreSQL
    // servers (DNS round robin), and looking it up again gives the next one, which would ignore
    // a key it never gave out.
    const { remoteAddress, remoteFamily } = this.socket;
    const lookup =
      remoteAddress === undefined
        ? this.target.lookup
        : pinnedLookup(remoteAddress, remoteFamily === "IPv6" ? 6 : 4);
    // A server that refused TLS where the mode allows that gets its cancel in plain text, as
    // PgBouncer sends every cancel: asking again would cost a round trip before the cancel leaves.
    const plain = this.target.tls !== null && !tlsRequired(this.target.tls.mode) && !isTls(this.socket);
    return sendCancelRequest(
      { ...this.target, lookup, tls: plain ? null : this.target.tls },
      key,
      timeoutMs,
      {
        failed,
        done,
      },
    );
  }

  // ---- the pooler's own queries ----

  /**
   * Runs SQL whose replies the pooler consumes (parameter sync, reset query, ROLLBACK). Rejects with
   * the server's error, if any; the server is usable afterwards either way unless it closed. Its
   * callers go on with the server: one lost after the ReadyForQuery, in the same read (a message
   * behind it refused), rejects too, or they would link it to a client or put it back in the pool.
   */
  runInternal(sql: string): Promise<void> {
    return this.queryInternal(sql).then(() => {
      if (this.state === "closed") throw new Error(`server closed: ${this.closeReason}`);
      // The reset query (or the pooler's own DISCARD ALL) wiped what the pooler knows is here.
      const effect = classify(sql);
      if (effect.dropsStatements) this.statements?.clear();
      if (effect.resetsSettings) this.settings.clear();
    });
  }

  /**
   * As runInternal, resolving with the rows of the result (the session-state probe, auth_query).
   * With `params`, sent as one extended-protocol round trip with $1… bound to them.
   */
  queryInternal(sql: string, params?: readonly string[]): Promise<Row[]> {
    if (this.state === "closed") return Promise.reject(new Error(`server closed: ${this.closeReason}`));
    if (this.internal) return Promise.reject(new Error("internal query already running"));
    return new Promise<Row[]>((resolve, reject) => {
      this.internal = { resolve, reject, error: null, rows: [], settled: null };
      this.pendingReplies++;
      this.socket.write(
        params === undefined
          ? query(sql)
          : Buffer.concat([parse("", sql), bind("", "", params), execute(), sync()]),
      );
    });
  }

  /**
   * Replies the server still owes its client, not counting the one owed to the pooler's own query
   * (a session probe or a settings sync runs while the client waits).
   */
  get owedToClient(): number {
    return this.pendingReplies - (this.internal === null ? 0 : 1);
  }

  get framing(): FrameScanner {
    return this.scanner;
  }

  /** The pooler's own query (a probe, a settings sync, a reset) is running on it. */
  get runsOwnQuery(): boolean {
    return this.internal !== null;
  }

  /** Resolves once the pooler's own query now running has ended, either way (at once if none). */
  ownQuerySettled(): Promise<void> {
    const internal = this.internal;
    if (internal === null) return Promise.resolve();
    return new Promise((resolve) => (internal.settled = resolve));
  }

  /** Bytes from the linked client. */
  forward(buf: Buffer, from: Connection): void {
    this.write(buf, from);
  }

  private lost(reason: string): void {
    if (this.state !== "closed") this.closedByServer = true;
    this.close(reason);
  }

  close(reason: string): void {
    if (this.state === "closed") return;
    const wasLogin = this.state === "login";
    this.state = "closed";
    this.closeReason = reason;
    if (!this.socket.destroyed) {
      if (!wasLogin && this.socket.writable) this.socket.end(terminate());
      this.socket.destroySoon();
    }
    this.unblock(Block.Backpressure | Block.Waiting | Block.Paused);
    if (this.login) {
      this.login.reject(new Error(reason));
      this.login = null;
    }
    const internal = this.internal;
    // a FATAL the server sent before closing (57P01 of a terminated backend) says why: whoever
    // waits for the query tells a lost server from one refusing logins by it (login-retry.ts)
    const fatal = internal?.error?.fatal ? internal.error : null;
    if (internal) {
      this.internal = null;
      internal.reject(fatal ?? new Error(reason));
      internal.settled?.();
    }
    this.statements?.clear();
    this.replies.clear();
    const client = this.client;
    this.client = null;
    client?.onServerLost(this, reason, fatal);
    this.onClosed(this);
  }
}

function dropReply(): void {}

function readRow(msg: Buffer): Row {
  const r = new BodyReader(msg);
  const row: Row = [];
  for (let n = r.int16(); n > 0; n--) {
    const len = r.int32();
    row.push(len < 0 ? null : r.bytes(len).toString("utf8"));
  }
  return row;
}

function isFatal(msg: Buffer): boolean {
  return fatalSeverity(parseErrorFields(msg));
}

/** 'V' is the severity PostgreSQL never translates; 'S' may be localized. */
function fatalSeverity(fields: Map<string, string>): boolean {
  const severity = fields.get("V") ?? fields.get("S");
  return severity === "FATAL" || severity === "PANIC";
}
