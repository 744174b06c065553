// Accepts client sockets, enforces max_client_conn and hands each socket to a ClientConnection.
import net from "node:net";
import { ClientConnection, type ClientHost } from "./client.ts";
import type { ClientRegistry } from "./client-registry.ts";
import { SqlState } from "./protocol/sqlstate.ts";

export interface Listener {
  readonly server: net.Server;
  /** Stops accepting new connections (graceful shutdown); existing ones are untouched. */
  stop(): Promise<void>;
}

export function listen(
  host: ClientHost,
  clients: ClientRegistry,
  addr: string,
  port: number,
): Promise<Listener> {
  const server = net.createServer({ noDelay: true, keepAlive: host.config.tcpKeepalive }, (socket) => {
    const client = new ClientConnection(socket, host);
    clients.add(client);
    // Refused after the startup packet has been read, so libpq shows the message instead of a reset.
    if (host.shuttingDown) {
      client.refuseAfterStartup(SqlState.CannotConnectNow, "pooler is shutting down");
    } else if (clients.size > host.config.maxClientConn) {
      client.refuseAfterStartup(
        SqlState.TooManyConnections,
        "no more connections allowed (max_client_conn)",
        true,
      );
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: addr, port, backlog: host.config.listenBacklog }, () => {
      server.off("error", reject);
      resolve({
        server,
        stop: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
