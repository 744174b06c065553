// A CancelRequest on a connection of its own, as the protocol wants: to PostgreSQL for a server's
// backend, or to a peer pooler for a key that is its own. Over TLS when the target says so: a
// server's as its own connection (a server may accept only TLS), never a peer's (peers.ts).
import net from "node:net";
import { timerDelay } from "./clock.ts";
import type { ServerTls } from "./config/tls.ts";
import { Connection } from "./connection.ts";
import { applyKeepalive, type Keepalive } from "./keepalive.ts";
import type { Pool } from "./pool.ts";
import { cancelRequest } from "./protocol/messages.ts";
import { connectTls } from "./tls.ts";
import { serverEndpoint } from "./unix-socket.ts";

export interface CancelTarget {
  /** A host, or a Unix socket directory (already resolved from unix_socket_dir). */
  host: string;
  port: number;
  tls: ServerTls | null;
  /** Resolves a host name: the pooler's DNS cache. */
  lookup: net.LookupFunction;
  /** As for server sockets: PgBouncer tunes every socket it opens alike. */
  keepalive: Keepalive;
}

/**
 * A cancel request's own connection while it is open: PgBouncer's server in state active_cancel,
 * which SHOW SERVERS lists and SHOW POOLS counts (sv_active_cancel) until the target closes it.
 */
export class CancelConnection extends Connection<net.Socket> {
  /** Where it goes (a Unix socket directory has no address of its own to show). */
  constructor(
    socket: net.Socket,
    readonly target: { host: string; port: number },
  ) {
    super(socket);
  }

  get framing(): null {
    return null;
  }
}

/** A client's CancelRequest held open until its cancel is done: SHOW CLIENTS lists it by its target. */
export interface HeldCancel {
  /** The pool whose server it cancels; null: it goes to a peer. */
  readonly pool: Pool | null;
  /** Its connection to PostgreSQL (SHOW CLIENTS' link); null: none yet, or to a peer. */
  connection: CancelConnection | null;
  /** Queued for its turn (a peer's pool_size), not on its way yet. */
  waiting: boolean;
}

export interface CancelCallbacks {
  /** The request has been written; the target closes the connection once it has acted. */
  sent?: () => void;
  failed: (err: Error) => void;
  /** The connection closed, whatever happened; after `timeoutMs` at the latest. */
  done: () => void;
}

export function sendCancelRequest(
  target: CancelTarget,
  key: { pid: number; secret: number },
  timeoutMs: number,
  { sent, failed, done }: CancelCallbacks,
): CancelConnection {
  const sock = net.connect(serverEndpoint(target.host, target.port, target.lookup), () =>
    connectTls(sock, target.tls, target.host).then(
      (s) => {
        if (s !== sock) {
          s.on("error", failed);
          conn.socket = s;
        }
        // No FIN after it, as libpq: a pooler (ours) reads one as the client giving up, and would
        // close at once rather than once it has acted, which is what the close must say.
        s.write(cancelRequest(key.pid, key.secret));
        sent?.();
      },
      (err: Error) => {
        failed(err);
        // nothing more will be sent on it: held open, it would keep its server from every client
        sock.destroy();
      },
    ),
  );
  const conn = new CancelConnection(sock, target);
  applyKeepalive(sock, target.keepalive);
  sock.on("error", failed);
  sock.setTimeout(timerDelay(timeoutMs), () => sock.destroy());
  sock.once("close", done);
  return conn;
}
