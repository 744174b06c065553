// The pooler's own queries for a client, on the server it holds, which PostgreSQL would not have run
// for it: the SET of its parameters and settings on a server it gets (ClientConnection.assign), the
// session probe after a transaction that may have changed its session (session-state.ts), and the
// settings a RESET took away brought back on a server it keeps. What the probe finds is the client's
// to decide on (ClientConnection.probed: the release decision). A cancel request of the client's
// while one runs is held (client-held-cancel.ts); one that canceled it all the same, meant for the
// client's query that had just ended, has it run again.
import type { ClientState } from "./client.ts";
import { now } from "./clock.ts";
import { Block } from "./connection.ts";
import { syncedSettings } from "./params.ts";
import { SqlState } from "./protocol/sqlstate.ts";
import { ServerError, type Row, type ServerConnection } from "./server.ts";
import type { ClientSession } from "./session-state.ts";

/** What the pooler's own queries read and set of their client (ClientConnection). */
export interface OwnQueryClient {
  state: ClientState;
  waitStart: number;
  readonly server: ServerConnection | null;
  readonly loggingIn: boolean;
  /** Cancel requests of its key sent on to its server: those since the last retry may explain a 57014. */
  readonly cancelsSent: number;
  readonly session: ClientSession | null;
  /** The session settings it replays on each server. */
  readonly settings: ReadonlyMap<string, string>;
  block(reason: number): void;
  refuse(code: string, message: string): void;
  /** Its parameters and settings are on its new server: it goes on there. */
  linked(): void;
  /** What it sent waits no more for its server. */
  startForwarding(): void;
  /** The probe's answer: whether the client keeps its server. */
  probed(server: ServerConnection, rows: Row[]): void;
}

/** Made for a client on its first own query, kept while it lives: most clients never need one. */
export class OwnQueries {
  /** The probe is running. */
  probing = false;
  /** The server assign() is setting the client's parameters on, before anything of the client's. */
  syncingOn: ServerConnection | null = null;
  /** Bringing back settings a RESET took away on the server it keeps. */
  private restoring = false;
  /** Cancel requests (OwnQueryClient.cancelsSent) that explained a 57014 of one of these queries. */
  private cancelsSpent = 0;

  constructor(private readonly client: OwnQueryClient) {}

  /** One runs on the client's server: a cancel request then waits for the request it is meant for. */
  get running(): boolean {
    return this.probing || this.syncingOn !== null || this.restoring;
  }

  /** Sets its parameters and settings (`sql`) on `server` before anything of the client's. */
  sync(server: ServerConnection, sql: string): void {
    this.syncingOn = server;
    server.runInternal(sql).then(
      () => {
        this.syncingOn = null;
        this.client.waitStart = 0;
        server.settings = syncedSettings(this.client.settings, server.baseline.settings);
        this.client.linked();
      },
      (err: Error) => {
        // lost: onServerLost queued the client again
        if (this.syncingOn !== server) return;
        // (a client logging in has no cancel key yet)
        if (!this.client.loggingIn && this.retries(server, err, () => this.sync(server, sql))) return;
        this.syncingOn = null;
        if (err instanceof ServerError) this.client.refuse(err.code, err.message);
        else
          this.client.refuse(
            SqlState.ConnectionFailure,
            `could not set parameters on the server: ${err.message}`,
          );
      },
    );
  }

  /**
   * The transaction may have changed the session: ask the server what it holds now (one internal
   * query; see session-state.ts) before deciding. The client's next messages wait meanwhile.
   */
  probe(server: ServerConnection): void {
    const client = this.client;
    client.state = "waiting";
    client.waitStart = now(); // under query_wait_timeout, as any wait for a server
    client.block(Block.Waiting);
    this.probing = true;
    server.queryInternal(client.session!.probeSql(server.baseline)).then(
      (rows) => {
        this.probing = false;
        this.client.probed(server, rows);
      },
      (err: Error) => {
        // still the pooler's own query while it waits to run again: a cancel meanwhile is held
        if (this.retries(server, err, () => this.probe(server))) return;
        this.probing = false;
        this.client.refuse(SqlState.ConnectionFailure, `could not inspect the session state: ${err.message}`);
      },
    );
  }

  /** Kept on its server: the startup (or connect_query) values a RESET took away (`sql`) come back. */
  restore(server: ServerConnection, sql: string): void {
    this.restoring = true;
    server.runInternal(sql).then(
      () => {
        this.restoring = false;
        server.settings = syncedSettings(this.client.settings, server.baseline.settings);
        this.client.startForwarding();
      },
      (err: Error) => {
        // still the pooler's own query while it waits to run again: a cancel meanwhile is held
        if (this.retries(server, err, () => this.restore(server, sql))) return;
        this.restoring = false;
        this.client.refuse(SqlState.ConnectionFailure, `could not restore settings: ${err.message}`);
      },
    );
  }

  /**
   * Whether the pooler's own query for this client on `server` was canceled by the client's own
   * cancel request, meant for its query that ended as it was sent (one that comes while the
   * pooler's query runs is held for the client's next: `running`): PostgreSQL would have kept the
   * session, so the pooler runs its query again (`again`) rather than end the client. Not before
   * the cancel is done: the postmaster signals the backend twice (its process, then its process
   * group), and a query sent meanwhile takes the second signal (1 run in 6 of a test lost its client so).
   */
  private retries(server: ServerConnection, err: Error, again: () => void): boolean {
    const client = this.client;
    if (!(err instanceof ServerError && err.code === SqlState.QueryCanceled && client.server === server)) {
      return false;
    }
    // statement_timeout cancels with 57014 too: without a cancel request of the client's to blame,
    // running the query again would time out again (a lock wait) for ever, past the client's limit
    if (this.cancelsSpent === client.cancelsSent) return false;
    this.cancelsSpent = client.cancelsSent;
    if (server.cancelsInFlight === 0) again();
    else server.afterCancels = () => client.server === server && client.state !== "closed" && again();
    return true;
  }
}
