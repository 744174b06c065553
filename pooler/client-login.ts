// A client's login, from its first byte until it is authenticated: the startup packet, an SSLRequest,
// GSSENCRequest or direct TLS handshake, a CancelRequest, the startup parameters, the hba decision,
// the secret's lookup (auth_file, auth_query) and the password exchange. Then the client welcomes
// itself (ClientConnection.welcome): what follows needs its pool.
import type net from "node:net";
import type { HeldCancel } from "./cancel-request.ts";
import { ClientAuth, decideAuth, type AuthStep } from "./client-auth.ts";
import type { ClientHost, ClientState } from "./client.ts";
import type { ClientLimit } from "./client-limits.ts";
import type { ClientSocket } from "./client-socket.ts";
import type { DatabaseDef, UserSecret } from "./config/types.ts";
import { ALPN_POSTGRESQL, tlsRequired, type ClientTls } from "./config/tls.ts";
import { Block } from "./connection.ts";
import { parseStartupOptions } from "./params.ts";
import type { Logger } from "./log.ts";
import { takeStartupPacket } from "./protocol/framing.ts";
import { Msg, parseStartupPacket } from "./protocol/messages.ts";
import { SqlState } from "./protocol/sqlstate.ts";
import type { ServerCredentials } from "./server.ts";
import { acceptTls, isTls, verifiedCertName } from "./tls.ts";

/** The virtual database of the admin console. */
export const ADMIN_DB = "pgbouncer";

/** PgBouncer's MAX_USERNAME, its NUL included. */
const MAX_USERNAME = 128;
/** Startup parameters the pooler consumes itself; the others are settings (or `options` holding some). */
const KNOWN_STARTUP = new Set(["user", "database", "replication"]);
/** What a logging-in client may send ahead of its login's steps before the pooler stops reading. */
const LOGIN_READ_AHEAD = 64 * 1024;
/** The content type of a TLS handshake record, a ClientHello's first byte. */
const TLS_HANDSHAKE_RECORD = 0x16;
const NOTHING = Buffer.alloc(0);

/** What the login reads and sets of its client (ClientConnection). */
export interface LoginClient {
  readonly id: number;
  readonly host: ClientHost;
  /** Came through unix_socket_dir: no TLS is offered or required there, as in PgBouncer. */
  readonly unixSocket: boolean;
  readonly socket: ClientSocket;
  readonly addr: string;
  readonly state: ClientState;
  readonly log: Logger;
  user: string;
  database: string;
  adminRole: "admin" | "stats" | null;
  block(reason: number): void;
  unblock(reason: number): void;
  refuse(code: string, message: string): void;
  close(reason: string): void;
  /** A message that could not be read: the client is refused with 08P01. */
  malformed(err: Error): void;
  /** A startup parameter or `-c` option; false when the client was refused for it. */
  setAtStartup(name: string, value: string): boolean;
  /** Counts the client against its database's and user's limits: the limit it would exceed instead. */
  admit(db: DatabaseDef | undefined): ClientLimit | null;
  /** The TLS handshake reads the socket now: the net.Socket it runs on. */
  stopReadingForTls(): net.Socket;
  /** The handshake is done: the client reads and writes `secure` from now on. */
  useTlsSocket(secure: net.Socket): void;
  /** Authenticated: the client gets its pool and is welcomed (or refused). */
  welcome(db: DatabaseDef | undefined, credentials: ServerCredentials): Promise<void>;
}

/**
 * What only a client that is logging in needs, dropped once it is in: idle clients by the thousand
 * add up. (Dropped whole, the last login chunk goes too: a view of it would keep a password message.)
 */
export class ClientLogin {
  /** Bytes received and not used yet: the startup packet, password messages, what is sent ahead. */
  buf: Buffer = NOTHING;
  /** One startup packet per connection. */
  private startupTaken = false;
  /** It was a CancelRequest: ClientConnection.holdsCancel. */
  holdsCancel = false;
  /** Where that request is, while it is held (SHOW CLIENTS). */
  heldCancel: HeldCancel | null = null;
  /** An SSLRequest or GSSENCRequest was answered: direct TLS may only open a connection. */
  private encryptionAnswered = false;
  /** A TLS handshake is under way on the socket: nothing may be written to it in plaintext. */
  handshaking = false;
  private auth: ClientAuth | null = null;
  private authDb: DatabaseDef | undefined = undefined;
  /**
   * Refused once authenticated, not before, so that no one without a password learns from it: an
   * unknown database, the console to a user the auth file does not have.
   */
  private refusalOnceIn: { code: string; message: string } | null = null;
  /** Aborted when the client is closed while its secret is being looked up (auth_query). */
  lookup: AbortController | null = null;
  /** Authenticated; the welcome waits for the pool (and, with startup settings, for a server to accept them). */
  private welcoming = false;
  pendingWelcome: Buffer | null = null;
  /** A refusal to send once the startup packet is read. */
  private refusal: { code: string; message: string; sparesConsole: boolean } | null = null;
  /** The CommonName of the client certificate verified by the TLS handshake, read then and only then. */
  private certUser: string | undefined = undefined;
  /** The TLS handshake's client certificate was refused: the connection may not even cancel. */
  private certRefused = false;

  constructor(private readonly client: LoginClient) {}

  private get host(): ClientHost {
    return this.client.host;
  }

  /**
   * Refuses the client once its startup packet is read (max_client_conn, shutdown): libpq shows
   * that. `sparesConsole`: not a client of the admin console, as PgBouncer lets an operator in to
   * look at a pooler that is full.
   */
  refuseAfterStartup(code: string, message: string, sparesConsole = false): void {
    this.refusal = { code, message, sparesConsole };
  }

  /** An unexpected failure during the asynchronous login steps: that client goes, the pooler stays. */
  private failLogin(err: Error): void {
    this.client.log.error({ client: this.client.id, err: err.message }, "login failed unexpectedly");
    this.client.refuse(SqlState.ProtocolViolation, `login failed: ${err.message}`);
  }

  read(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    // Bytes sent ahead while the user is looked up, a password is checked or the welcome waits for a
    // server are kept, but no more than LOGIN_READ_AHEAD of them until they can be used: a flood is
    // left to the kernel.
    const waitingForUs = this.auth ? this.auth.busy : this.startupTaken;
    if (waitingForUs && this.buf.length >= LOGIN_READ_AHEAD) this.client.block(Block.Login);
    if (this.auth) return this.onAuthData();
    // One startup packet per connection: bytes sent while its lookup runs wait for the auth exchange.
    if (this.startupTaken) return;
    if (this.welcoming) return; // queries sent ahead of the welcome: read once logged in
    // PostgreSQL 17's direct TLS (sslnegotiation=direct): a TLS handshake record where a startup
    // packet's length would begin. As a length, that byte would mean 369 MB or more: nothing else.
    if (this.buf[0] === TLS_HANDSHAKE_RECORD && !this.encryptionAnswered && !isTls(this.client.socket)) {
      const setup = this.client.unixSocket ? null : this.host.clientTls;
      // a client speaking TLS could not read a plaintext ErrorResponse: PostgreSQL closes too
      if (setup === null) {
        this.client.log.info(
          { client: this.client.id, addr: this.client.addr },
          "direct TLS refused: TLS is not enabled",
        );
        return this.client.close("direct TLS, but TLS is not enabled");
      }
      const hello = this.buf;
      this.buf = NOTHING;
      return this.startTls(setup, hello);
    }
    let taken;
    try {
      taken = takeStartupPacket(this.buf, this.host.config.maxPacketSize);
    } catch (err) {
      return this.client.refuse(SqlState.ProtocolViolation, (err as Error).message);
    }
    if (taken === null) return;
    this.buf = taken.rest;
    let packet;
    try {
      packet = parseStartupPacket(taken.packet);
    } catch (err) {
      return this.client.refuse(
        SqlState.ProtocolViolation,
        `invalid startup packet: ${(err as Error).message}`,
      );
    }
    switch (packet.kind) {
      case "ssl":
      case "gssenc": {
        // Bytes already behind the request were sent in the clear and could be a man in the middle's
        // (CVE-2021-23214): PostgreSQL and PgBouncer refuse them, whatever the answer would be.
        const name = packet.kind === "ssl" ? "SSL" : "GSSAPI encryption";
        if (this.buf.length) {
          return this.client.refuse(
            SqlState.ProtocolViolation,
            `received unencrypted data after ${name} request`,
          );
        }
        if (packet.kind === "ssl" && isTls(this.client.socket)) {
          return this.client.refuse(SqlState.ProtocolViolation, "SSL request inside SSL");
        }
        const setup = packet.kind === "ssl" && !this.client.unixSocket ? this.host.clientTls : null;
        this.encryptionAnswered = true;
        // 'N' tells the client to go on in plain text (or give up if it requires encryption).
        if (setup === null) {
          this.client.socket.write("N");
          return;
        }
        this.client.socket.write("S");
        return this.startTls(setup, null);
      }
      case "cancel":
        // PgBouncer's handshake fails on such a certificate: nothing it sends is acted on
        if (this.certRefused) return this.client.close("cancel request: client certificate refused");
        // Closed only once the request has been acted on, as PostgreSQL and PgBouncer do: libpq
        // takes the close as that sign and sends its next query then, which a cancel still on its
        // way would hit instead. Nothing more is read meanwhile (pgx sends a Terminate).
        this.startupTaken = this.holdsCancel = true;
        this.client.block(Block.Login);
        this.heldCancel = this.host.cancel(packet.pid, packet.secret, () =>
          this.client.close("cancel request"),
        );
        return;
      case "unsupported":
        return this.client.refuse(
          SqlState.FeatureNotSupported,
          `unsupported frontend protocol ${packet.version >>> 16}.${packet.version & 0xffff}: server supports 3.0 to 3.0`,
        );
      case "startup":
        this.startupTaken = true;
        this.startup(packet.params, packet.notUtf8, packet.raw).catch((err: Error) => this.failLogin(err));
        return;
    }
  }

  /** `hello`: the start of a direct TLS handshake, already read; null after an SSLRequest. */
  private startTls(setup: ClientTls, hello: Buffer | null): void {
    const socket = this.client.stopReadingForTls();
    this.handshaking = true;
    acceptTls(socket, setup, hello).then(
      (secure) => {
        if (this.client.state === "closed") return void secure.destroy();
        this.handshaking = false;
        // Only ALPN tells a direct TLS client from a TLS client of another protocol sent to this
        // port (the acceptor refuses any other protocol it is offered). PostgreSQL 17 logs it and
        // closes, reading nothing: not even a CancelRequest.
        if (hello !== null && secure.alpnProtocol !== ALPN_POSTGRESQL) {
          const why = "received direct SSL connection request without ALPN protocol negotiation extension";
          this.client.log.info({ client: this.client.id, addr: this.client.addr }, why);
          secure.destroy();
          return this.client.close(why);
        }
        this.client.useTlsSocket(secure);
        this.certUser = verifiedCertName(secure);
        // below verify-ca a certificate is optional, but one sent must verify, as in PgBouncer; one
        // naming no user (no CommonName) still serves any authentication but cert
        const presented = setup.requestCert && Object.keys(secure.getPeerCertificate()).length > 0;
        if (presented ? !secure.authorized : setup.requireCert) {
          const why = presented ? String(secure.authorizationError) : "no certificate";
          this.client.log.info(
            { client: this.client.id, addr: this.client.addr, why },
            "client certificate refused",
          );
          this.certRefused = true;
          // PostgreSQL's words, sent once the startup packet is in so that the client shows them
          this.refuseAfterStartup(
            SqlState.InvalidAuthorization,
            "connection requires a valid client certificate",
          );
        }
      },
      (err: Error) => {
        this.client.log.info(
          { client: this.client.id, addr: this.client.addr, err: err.message },
          "TLS handshake failed",
        );
        this.client.close(`TLS handshake failed: ${err.message}`);
      },
    );
  }

  /** `raw`: the values byte for byte, as settings reach PostgreSQL (messages.ts parseStartupPacket). */
  private async startup(
    params: Map<string, string>,
    notUtf8: Set<string>,
    raw: Map<string, string>,
  ): Promise<void> {
    const refusal = this.refusal;
    const toConsole = (params.get("database") || params.get("user")) === ADMIN_DB;
    if (refusal && !(refusal.sparesConsole && toConsole))
      return this.client.refuse(refusal.code, refusal.message);
    const tls = this.host.clientTls;
    if (tls !== null && tlsRequired(tls.mode) && !isTls(this.client.socket) && !this.client.unixSocket) {
      return this.client.refuse(SqlState.InvalidAuthorization, "SSL required");
    }
    const user = params.get("user");
    if (!user) {
      return this.client.refuse(
        SqlState.InvalidAuthorization,
        "no PostgreSQL user name specified in startup packet",
      );
    }
    // PgBouncer's check and words, before the database is looked up (or made up from "*")
    if (Buffer.byteLength(user) >= MAX_USERNAME)
      return this.client.refuse(SqlState.ProtocolViolation, "username too long");
    this.client.user = user;
    this.client.database = params.get("database") || user;
    const ignored = this.host.config.ignoreStartupParameters;
    // listed there, it is dropped as any other: the client gets a normal connection, as in PgBouncer
    if (params.has("replication") && !ignored.includes("replication")) {
      return this.client.refuse(
        SqlState.FeatureNotSupported,
        "replication connections are not supported by the pooler",
      );
    }
    for (const [name, value] of raw) {
      if (KNOWN_STARTUP.has(name) || ignored.includes(name)) continue;
      if (name === "options") {
        let options: [string, string][];
        try {
          options = parseStartupOptions(value);
        } catch (err) {
          return this.client.refuse(
            SqlState.SyntaxError,
            `invalid startup options: ${(err as Error).message}`,
          );
        }
        for (const [n, v] of options) if (!this.client.setAtStartup(n, v)) return;
      } else if (!this.client.setAtStartup(name, value)) return;
    }
    const isAdmin = this.client.database === ADMIN_DB;
    // As a user name (below): decoded, "a\xe8" would be the entry or the "*" database "a\ufffd"
    const lossy = notUtf8.has(params.get("database") ? "database" : "user");
    const db = isAdmin || lossy ? undefined : this.host.findDatabase(this.client.database);
    // As PgBouncer (and PostgreSQL), a client hears that its database does not exist or is disabled
    // only once authenticated (handleAuthStep), so that no one without a password learns which names
    // exist. With no database, auth_query has none to ask: auth_file alone can let the user in.
    if (!isAdmin && db === undefined) {
      this.refusalOnceIn = {
        code: SqlState.InvalidCatalogName,
        message: `no such database: ${this.client.database}`,
      };
    }
    if (isAdmin) {
      this.client.adminRole = this.host.isAdminUser(user);
      if (this.client.adminRole === null && this.host.config.authType !== "any") {
        // PgBouncer's refusal, SQLSTATE included (its pooler errors are all 08P01). As PgBouncer 1.18,
        // at once to a user of the auth file, after the exchange (which fails but for a verified
        // certificate) to one it does not know: a refusal at once would tell console users apart.
        const notAllowed = { code: SqlState.ProtocolViolation, message: "not allowed" };
        if (this.host.config.authUsers.has(user))
          return this.client.refuse(notAllowed.code, notAllowed.message);
        this.refusalOnceIn = notAllowed;
      }
    }
    const limit = this.client.admit(db);
    if (limit !== null) {
      return this.client.refuse(SqlState.TooManyConnections, `client connections exceeded (${limit})`);
    }
    const decision = decideAuth(this.host.config, {
      unixSocket: this.client.unixSocket,
      tls: isTls(this.client.socket),
      address: this.client.socket.remoteAddress,
      database: this.client.database,
      user,
      certUser: this.certUser,
    });
    if (decision.kind === "refuse") {
      this.client.log.info(
        { client: this.client.id, user, db: this.client.database, addr: this.client.addr, why: decision.why },
        "login refused",
      );
      return this.client.refuse(SqlState.InvalidAuthorization, decision.message);
    }
    let secret: UserSecret | undefined;
    try {
      const gone = (this.lookup = new AbortController()).signal;
      // Decoded, a name that is not UTF-8 would read as another (each bad sequence as U+FFFD, so
      // "a\xe8" as "a\xe9"): PostgreSQL and PgBouncer compare the bytes, and know no such user.
      if (!notUtf8.has("user"))
        secret = db ? await this.host.lookupSecret(user, db, gone) : this.host.config.authUsers.get(user);
    } catch (err) {
      if (this.client.state === "closed") return; // the lookup was abandoned with it
      this.client.log.error(
        { client: this.client.id, user, err: (err as Error).message },
        "auth_query failed",
      );
      return this.client.refuse(SqlState.ConnectionFailure, "authentication lookup failed");
    }
    if (this.client.state === "closed") return;
    const auth = (this.auth = new ClientAuth(
      decision.authType,
      user,
      secret,
      this.host.config.scramIterations,
    ));
    this.handleAuthStep(auth.start(), db);
  }

  private handleAuthStep(step: AuthStep, db: DatabaseDef | undefined): void {
    this.authDb = db;
    switch (step.kind) {
      case "challenge":
        this.client.socket.write(step.message);
        this.client.unblock(Block.Login);
        if (this.buf.length) this.onAuthData();
        return;
      case "fail":
        if (this.host.config.logPoolerErrors) {
          this.client.log.info(
            { client: this.client.id, user: this.client.user, db: this.client.database },
            step.message,
          );
        }
        return this.client.refuse(step.code, step.message);
      case "ok":
        this.auth = null;
        if (step.final) this.client.socket.write(step.final);
        if (this.refusalOnceIn)
          return this.client.refuse(this.refusalOnceIn.code, this.refusalOnceIn.message);
        if (db !== undefined && this.host.isDisabled(db.name)) {
          return this.client.refuse(SqlState.CannotConnectNow, `database "${db.name}" is disabled`);
        }
        this.welcoming = true;
        this.client.welcome(db, step.credentials).catch((err: Error) => this.failLogin(err));
        return;
    }
  }

  private onAuthData(): void {
    // Password messages are small and few: assemble them whole here, not on the hot path. One at a
    // time: the next waits until this one's verdict is handled.
    const auth = this.auth;
    if (auth && !auth.busy && this.buf.length >= 5) {
      const type = this.buf[0]!;
      const len = this.buf.readUInt32BE(1);
      if (len < 4 || len > 10000)
        return this.client.refuse(SqlState.ProtocolViolation, "invalid password packet length");
      if (this.buf.length < len + 1) return;
      const msg = this.buf.subarray(0, len + 1);
      this.buf = this.buf.subarray(len + 1);
      if (type === Msg.Terminate) return this.client.close("client gave up during login");
      if (type !== Msg.Password) {
        return this.client.refuse(
          SqlState.ProtocolViolation,
          `expected password response, got message type ${String.fromCharCode(type)}`,
        );
      }
      auth
        .onPassword(msg)
        .then((step) => {
          if (this.client.state !== "closed") this.handleAuthStep(step, this.authDb);
        })
        // what fails in there is reading a message: a missing NUL, a short field
        .catch((err: Error) => this.client.malformed(err));
    }
  }
}
