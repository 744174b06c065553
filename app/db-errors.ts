// Errors that mean "the database cannot be reached right now" (the pooler or PostgreSQL is down or
// restarting), as opposed to bugs or bad data. They are worth a "try again in a moment" (503): the
// statement that failed did not run, so whatever the request was about to save was not saved —
// except when the connection is lost during COMMIT (CommitOutcomeUnknown).
import type { Prisma, PrismaClient } from "./generated/prisma/client.ts";

/**
 * SQLSTATEs of an outage: connection exceptions (class 08, the pooler's "server conn crashed?"
 * and "server login has been failing" among them), PostgreSQL shutting down or starting up
 * (57P01–57P03), and no connection slot left (53300).
 */
const OUTAGE_SQLSTATE = /^(08...|57P0[123]|53300)$/;

/** Seconds a client is asked to wait before retrying after an outage (Retry-After): a restart's length. */
export const RETRY_AFTER_SECONDS = "5";

/** Node's socket errors when the pooler itself is down or drops the connection. */
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN"]);

/**
 * Prisma's codes for an unreachable server (P1001), connect and query timeouts (P1002, P1008),
 * a closed connection (P1017) and no connection free in its pool in time (P2024).
 */
const PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);

/** @prisma/adapter-pg's names for the socket errors it recognises. */
const ADAPTER_KINDS = new Set([
  "DatabaseNotReachable",
  "ConnectionClosed",
  "SocketTimeout",
  "TooManyConnections",
]);

/**
 * node-postgres reports a connection that went away with a message and no code, and so a query that
 * had no answer within DB_QUERY_TIMEOUT (its connection is closed: the pooler or PostgreSQL drop it).
 */
const PG_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed|Query read timeout)/;

function isOutage(err: Record<string, unknown>): boolean {
  const { code, kind, message } = err;
  return (
    (typeof code === "string" &&
      (OUTAGE_SQLSTATE.test(code) || SOCKET_CODES.has(code) || PRISMA_CODES.has(code))) ||
    (typeof kind === "string" && ADAPTER_KINDS.has(kind)) ||
    (typeof message === "string" && PG_MESSAGES.test(message))
  );
}

/** Whether `err`, or anything it wraps (Prisma's driver adapter error, an Error's cause), passes `test`. */
function anyInChain(err: unknown, test: (fields: Record<string, unknown>) => boolean): boolean {
  const seen = new Set<unknown>();
  const pending = [err];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next !== "object" || next === null || seen.has(next)) continue;
    seen.add(next);
    const fields = next as Record<string, unknown>;
    if (test(fields)) return true;
    const meta = fields.meta as Record<string, unknown> | undefined;
    pending.push(fields.cause, meta?.driverAdapterError);
  }
  return false;
}

/** Whether `err`, or what it wraps, is an outage. */
export function isDatabaseUnavailable(err: unknown): boolean {
  return anyInChain(err, isOutage);
}

/** node-postgres's error for a query that had no answer within DB_QUERY_TIMEOUT. */
const QUERY_TIMED_OUT = "Query read timeout";

/**
 * Whether `err`, or what it wraps, is a query that had no answer in time. The database may be up
 * and busy (a held lock): "could not be reached" would be wrong, and a write sent on its own may
 * still be applied once the lock goes.
 */
function isQueryTimeout(err: unknown): boolean {
  return anyInChain(err, (e) => e.message === QUERY_TIMED_OUT);
}

/** What a statement is when it only reads: given no answer, nothing it sent can be applied later. */
const READ_ONLY = /^\s*(SELECT|SHOW)\b/i;

/**
 * For db.ts, which sees the statement that `err` failed: whether it is a query timeout, marked when
 * the statement only reads (a session lookup held by a paused pooler), so that the page need not
 * say that what was sent may have been saved.
 */
export function noteQueryTimeout(err: unknown, statement: string): boolean {
  if (!(err instanceof Error) || err.message !== QUERY_TIMED_OUT) return false;
  if (READ_ONLY.test(statement)) Object.assign(err, { readOnly: true });
  return true;
}

/**
 * The connection was lost while COMMIT was on its way: PostgreSQL may have committed or not, and
 * nobody can tell until it is back. Saying "not saved" could make the user save a post twice.
 */
export class CommitOutcomeUnknown extends Error {
  constructor(cause: unknown) {
    super("the connection was lost during COMMIT", { cause });
  }
}

/**
 * The transaction outlived Prisma's interactive-transaction timeout (P2028), or one of its statements
 * DB_QUERY_TIMEOUT, most often waiting for rows another transaction holds. Prisma rolled it back, or
 * its connection was closed (db.ts), which rolls it back on the server, so nothing was saved; the
 * database is up, and "could not be reached" would send the user looking for an outage that is not there.
 */
export class TransactionTimedOut extends Error {
  constructor(cause: unknown) {
    super("the transaction took too long and was rolled back", { cause });
  }
}

/** Prisma's code for a transaction that expired (or was already closed) when it was used. */
const TRANSACTION_EXPIRED = "P2028";

/**
 * prisma.$transaction, with an outage during the COMMIT reported as CommitOutcomeUnknown and a
 * statement before it that timed out as TransactionTimedOut.
 */
export async function transaction<T>(
  prisma: PrismaClient,
  work: (tx: Prisma.TransactionClient) => Promise<T>,
): Promise<T> {
  let committing = false;
  try {
    return await prisma.$transaction(async (tx) => {
      const result = await work(tx);
      committing = true;
      return result;
    });
  } catch (err) {
    if (anyInChain(err, (e) => e.code === TRANSACTION_EXPIRED) || (!committing && isQueryTimeout(err)))
      throw new TransactionTimedOut(err);
    throw committing && isDatabaseUnavailable(err) ? new CommitOutcomeUnknown(err) : err;
  }
}

/**
 * What a pooler in statement mode (ours and PgBouncer alike) answers a BEGIN with. Every write of the
 * admin is a transaction, so none can succeed until the pooler is reconfigured: PgBouncer's code for
 * it (08P01) would otherwise pass for an outage, ours (0A000) for a bug.
 */
const TRANSACTIONS_REFUSED = /transaction blocks not allowed in statement pooling mode/;

/** Why a write did not (surely) happen for the database's sake rather than the request's. */
export type SaveFailure =
  "unreachable" | "outcome unknown" | "timed out" | "no answer" | "write unanswered" | "transactions refused";

/** The SaveFailure `err` stands for; null when it is not one (a bug, bad data). */
export function saveFailure(err: unknown): SaveFailure | null {
  if (err instanceof CommitOutcomeUnknown) return "outcome unknown";
  if (err instanceof TransactionTimedOut) return "timed out";
  if (anyInChain(err, (e) => typeof e.message === "string" && TRANSACTIONS_REFUSED.test(e.message)))
    return "transactions refused";
  if (isQueryTimeout(err))
    return anyInChain(err, (e) => e.message === QUERY_TIMED_OUT && e.readOnly === true)
      ? "no answer"
      : "write unanswered";
  return isDatabaseUnavailable(err) ? "unreachable" : null;
}

/** A failure that trying again later will not mend: the site's configuration must change. */
export const needsAdministrator = (failure: SaveFailure): boolean => failure === "transactions refused";
