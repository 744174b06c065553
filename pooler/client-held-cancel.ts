// A client's cancel request that came while the pooler ran its own query for it (the session probe, a
// settings sync, the restore of settings a RESET took away), which PostgreSQL would not have run: the pooler
// holds it (pooler.ts cancel) for the request the client sent meanwhile. ClientConnection keeps one at
// a time, sends it once that request runs on its server, and drops it when the client goes first or
// what it sent starts no request (part of a message: PostgreSQL ignores a cancel while it reads one).
import type { ServerConnection } from "./server.ts";

/**
 * How long after its request starts a held cancel is sent (sendOnceRunning): time for the backend
 * to read the command, on a loaded machine too (2 ms was enough in 8 runs of the tests under load).
 */
const HELD_CANCEL_DELAY_MS = 20;

/** What a held cancel looks at in its client when its delay is up. */
interface CancelingClient {
  readonly server: ServerConnection | null;
  /** When its request on its server started (ClientConnection.queryStartedAt); 0 when none runs. */
  readonly queryStartedAt: number;
}

export class HeldClientCancel {
  constructor(
    private readonly send: () => void,
    /** It cancels nothing: whoever waits on it is told it is done. */
    readonly drop: () => void,
  ) {}

  /**
   * The request it waited for has just been written to `server`: PostgreSQL ignores a cancel that
   * reaches the backend while it still reads the command (postgres.c: DoingCommandRead), which one
   * sent at once did in 1 run in 3 of a test under load. It goes HELD_CANCEL_DELAY_MS later, if that
   * request still runs there; one that has ended by then takes it with it, as a cancel that came late.
   */
  sendOnceRunning(client: CancelingClient, server: ServerConnection, startedAt: number): void {
    setTimeout(() => {
      if (client.server === server && client.queryStartedAt === startedAt) this.send();
      else this.drop();
    }, HELD_CANCEL_DELAY_MS);
  }
}
