// The admin console behind the virtual `pgbouncer` database.
import type { ClientConnection } from "../client.ts";

export interface AdminConsole {
  /** One complete message from an admin client (simple query protocol only, as PgBouncer). */
  message(client: ClientConnection, type: number, msg: Buffer): void;
}
