// When a pool may try to log in to its server again after a failed login. PgBouncer waits
// server_login_retry after any failure and refuses clients meanwhile; a PostgreSQL restart would then
// cost up to 15 s of refusals. A server that says it is restarting (connection refused or reset, a
// connection ended without a word, or 57P0x "the database system is starting up / shutting down /
// in recovery") is instead probed with a short doubling backoff, and clients wait for it, for at
// most server_login_retry; after that, and for every other failure (a connect timeout, a wrong
// password), PgBouncer's rule applies.
import { ServerError, type ServerConnection } from "./server.ts";
import { SqlState } from "./protocol/sqlstate.ts";

const FIRST_RETRY_MS = 100;
/** One refused connection a second costs a down server nothing. */
const MAX_FAST_RETRY_MS = 1000;
/** admin_shutdown, crash_shutdown, cannot_connect_now */
const RESTART_SQLSTATES = new Set(["57P01", "57P02", "57P03"]);
const RESTART_ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "EMFILE", "ENFILE"]);

/** The server is going down or coming up (or the pooler is out of descriptors): worth probing again soon. */
export function isRestarting(err: Error, server: ServerConnection): boolean {
  if (err instanceof ServerError) return RESTART_SQLSTATES.has(err.code);
  if (server.socketError !== null) return RESTART_ERRNOS.has(server.socketError);
  // Ended without a word: a backend the postmaster had just forked when an immediate shutdown (or
  // a crash) took it down, before it could say why.
  return server.closedByServer;
}

export class LoginRetry {
  /** The last failed login; null once one succeeds. */
  error: Error | null = null;
  /** No new login before this time (ms). */
  retryAfter = 0;
  private outageStart = 0;
  private lastFailure = 0;
  private delay = 0;
  private restarting = false;
  /** A server went away on its own: the next logins may fail too, so one at a time until one works. */
  private serverLost = false;

  /**
   * Records the failure of a login started at `attemptStart` (ms). Returns the wait before the next
   * attempt, or null when the failure tells nothing new: the attempt began before the previous
   * failure was known (the burst of logins in flight when the server went away).
   */
  failed(err: Error, restarting: boolean, attemptStart: number, loginRetry: number): number | null {
    const now = Date.now();
    this.error = err;
    if (attemptStart <= this.lastFailure) return null;
    this.lastFailure = now;
    if (this.outageStart === 0) this.outageStart = now;
    this.restarting = restarting && now - this.outageStart < loginRetry;
    if (this.restarting) {
      this.delay = Math.min(
        this.delay === 0 ? FIRST_RETRY_MS : this.delay * 2,
        MAX_FAST_RETRY_MS,
        loginRetry,
      );
      this.retryAfter = now + this.delay;
    } else {
      // as PgBouncer: server_login_retry counts from the start of the failed attempt
      this.retryAfter = attemptStart + loginRetry;
    }
    return Math.max(0, this.retryAfter - now);
  }

  /** A logged-in server was closed by PostgreSQL (a FATAL, a shutdown, a crash). */
  lost(): void {
    this.serverLost = true;
  }

  succeeded(): void {
    this.serverLost = false;
    this.error = null;
    this.retryAfter = 0;
    this.outageStart = 0;
    this.lastFailure = 0;
    this.delay = 0;
    this.restarting = false;
  }

  /** Logins may fail: open one server at a time, as PgBouncer always does, not a burst. */
  get cautious(): boolean {
    return this.error !== null || this.serverLost;
  }

  /** Clients may queue for a server: logins work, or the server is restarting and may be back soon. */
  get clientsMayWait(): boolean {
    return this.error === null || this.restarting;
  }

  /** What a client refused while logins fail is told: the last failure, with PgBouncer's advice. */
  refusal(): { code: string; message: string } {
    const err = this.error ?? new Error("server login failed");
    return {
      code: err instanceof ServerError ? err.code : SqlState.ConnectionFailure,
      message: `${err.message}; server login has been failing, try again later (server_login_retry)`,
    };
  }
}
