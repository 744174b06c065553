// Accepts client sockets, enforces max_client_conn and hands each socket to a ClientConnection.
import type http from "node:http";
import net from "node:net";
import { ClientConnection, type ClientHost } from "./client.ts";
import type { ClientRegistry } from "./client-registry.ts";
import { RawSocket } from "./client-socket.ts";
import { applyKeepalive, keepaliveOf } from "./keepalive.ts";
import type { Logger } from "./log.ts";
import { SqlState } from "./protocol/sqlstate.ts";
import { acceptHandles } from "./stream-handle.ts";
import { listenUnix, UnixBindError } from "./unix-socket.ts";

export interface Listener {
  /** One per listen_addr entry and one for the Unix socket, all on the same port. */
  readonly servers: net.Server[];
  readonly port: number;
  /** The Unix socket's path, null without unix_socket_dir. */
  readonly socketPath: string | null;
  /**
   * Stops accepting new connections (graceful shutdown), and the Unix socket's file is gone;
   * existing ones are untouched. Nothing waits for them to end: a client ended in a lingering close
   * (psql at its prompt never closes its end) would hold the exit for LINGER_MS.
   */
  stop(): void;
}

/** On every listen_addr address and, with unix_socket_dir, on its Unix socket too (same port). */
export async function listen(host: ClientHost, clients: ClientRegistry): Promise<Listener> {
  const { listenAddr, listenPort, unixSocketDir, listenBacklog, soReuseport } = host.config;
  const accept = (socket: RawSocket, unixSocket: boolean): void => {
    // per socket, not as the server's options: RELOAD and SET apply to the next client
    applyKeepalive(socket, keepaliveOf(host.config));
    const client = new ClientConnection(socket, host, unixSocket);
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
  };
  // net.Server binds and listens; what it accepts is never wrapped in a net.Socket (client-socket.ts)
  const make = (unixSocket = false): net.Server => {
    const server = net.createServer();
    server.once("listening", () =>
      acceptHandles<RawSocket>(server, (handle) => accept(new RawSocket(handle), unixSocket)),
    );
    return server;
  };
  const servers =
    listenAddr.trim() === ""
      ? []
      : await bindAll(() => make(), listenAddr, listenPort, host.log, {
          backlog: listenBacklog,
          reusePort: soReuseport,
        });
  const port = servers.length > 0 ? (servers[0]!.address() as net.AddressInfo).port : listenPort;
  let socketPath: string | null = null;
  if (unixSocketDir !== "") {
    const server = make(true);
    try {
      socketPath = await listenUnix(server, unixSocketDir, port, {
        mode: host.config.unixSocketMode,
        group: host.config.unixSocketGroup,
        backlog: listenBacklog,
      });
      keepAccepting(server, host.log);
      servers.push(server);
    } catch (err) {
      // as PgBouncer: a socket that cannot be bound is a warning while TCP listens
      if (!(err instanceof UnixBindError) || servers.length === 0) {
        for (const s of servers) s.close();
        throw err;
      }
      host.log.warn({ err: err.message }, "Unix socket not available; listening on TCP only");
    }
  }
  return {
    servers,
    port,
    socketPath,
    stop: () => {
      for (const s of servers) s.close();
    },
  };
}

/**
 * What a listening server reports is an accept() that failed (EMFILE once libuv's spare descriptor
 * is gone too, ENOBUFS, EPERM): logged as PgBouncer logs it, and the server goes on accepting,
 * where an 'error' event with no listener would end the pooler.
 */
function keepAccepting(server: net.Server, log: Logger): void {
  server.on("error", (err) => log.warn({ err: err.message }, "accept failed"));
}

/**
 * listen_addr as PgBouncer reads it: a comma-separated list of addresses or host names, `*` for
 * every address (Node's dual-stack `::`, or 0.0.0.0 without IPv6). Port 0 takes a free port for
 * the first address and the same one for the others.
 */
function listenHosts(listenAddr: string): (string | undefined)[] {
  const hosts = listenAddr
    .split(",")
    .map((h) => h.trim())
    .filter((h) => h !== "");
  if (hosts.length === 0) throw new Error(`listen_addr names no address: ${JSON.stringify(listenAddr)}`);
  return hosts.map((h) => (h === "*" ? undefined : h));
}

/** A server per listen_addr entry, all on one port; none stays open if one cannot listen. */
export async function bindAll<S extends net.Server | http.Server>(
  make: () => S,
  listenAddr: string,
  port: number,
  log: Logger,
  opts: Pick<net.ListenOptions, "backlog" | "reusePort"> = {},
): Promise<S[]> {
  const servers: S[] = [];
  const hosts = listenHosts(listenAddr);
  try {
    for (const host of hosts) {
      const server = make();
      const boundPort = servers.length === 0 ? port : (servers[0]!.address() as net.AddressInfo).port;
      // beside other addresses, "::" must not also take IPv4 (as PgBouncer sets IPV6_V6ONLY)
      const ipv6Only = hosts.length > 1 && host !== undefined && net.isIPv6(host);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host, port: boundPort, ipv6Only, ...opts }, () => {
          server.off("error", reject);
          keepAccepting(server, log);
          resolve();
        });
      });
      servers.push(server);
    }
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
  return servers;
}
