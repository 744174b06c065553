// The admin console behind the virtual `pgbouncer` database: simple query protocol only, one
// command per query, replies and errors as PgBouncer sends them.
import type { ClientConnection } from "../client.ts";
import type { Pooler } from "../pooler.ts";
import { BodyReader, Msg, errorResponse, readyForQuery } from "../protocol/messages.ts";
import { SqlState } from "../protocol/sqlstate.ts";
import { execute } from "./commands.ts";
import { AdminError, cancelPause } from "./control.ts";

export interface AdminConsole {
  /** One complete message from an admin client (simple query protocol only, as PgBouncer). */
  message(client: ClientConnection, type: number, msg: Buffer): void;
  /** A CancelRequest with an admin client's key. */
  cancel(): void;
}

const EXTENDED_PROTOCOL: ReadonlySet<number> = new Set([Msg.Parse, Msg.Bind, Msg.Execute]);

export class SqlConsole implements AdminConsole {
  /**
   * Each session's queries run one after the other: a PAUSE that waits for servers holds back
   * the queries sent after it, as PgBouncer stops reading from that client.
   */
  private readonly queues = new WeakMap<ClientConnection, Promise<void>>();

  constructor(private readonly pooler: Pooler) {}

  message(client: ClientConnection, type: number, msg: Buffer): void {
    if (type !== Msg.Query) {
      const why = EXTENDED_PROTOCOL.has(type)
        ? "extended query protocol not supported by admin console"
        : `unsupported packet type for admin console: ${String.fromCharCode(type)}`;
      return client.refuse(SqlState.FeatureNotSupported, why);
    }
    let sql: string;
    try {
      sql = new BodyReader(msg).cstring();
    } catch {
      return client.refuse(SqlState.ProtocolViolation, "incomplete query");
    }
    const previous = this.queues.get(client) ?? Promise.resolve();
    this.queues.set(
      client,
      previous.then(() => this.run(client, sql)),
    );
  }

  cancel(): void {
    cancelPause(this.pooler);
  }

  private async run(client: ClientConnection, sql: string): Promise<void> {
    let reply: Buffer[];
    try {
      reply = await execute({ pooler: this.pooler, client, sql });
    } catch (err) {
      reply = [this.failure(err, sql)];
    }
    if (client.state !== "closed") client.write(Buffer.concat([...reply, readyForQuery("I")]));
  }

  /** Every console error, as one ErrorResponse; the session stays usable. */
  private failure(err: unknown, sql: string): Buffer {
    if (err instanceof AdminError) {
      this.pooler.log.info({ sql, code: err.code }, `admin command failed: ${err.message}`);
      return errorResponse({ severity: "ERROR", code: err.code, message: err.message });
    }
    this.pooler.log.error({ err, sql }, "admin command crashed");
    return errorResponse({
      severity: "ERROR",
      code: SqlState.InternalError,
      message: `internal error: ${(err as Error).message}`,
    });
  }
}
