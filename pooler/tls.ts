// TLS on the wire, on both sides of the pooler: a client's socket becomes a TLS server socket after
// its SSLRequest; a server connection asks PostgreSQL for TLS before its startup packet. Either way
// the result is a net.Socket (tls.TLSSocket extends it), so everything after login runs the same
// code with or without TLS.
import net from "node:net";
import tls from "node:tls";
import { tlsRequired, type ClientTls, type ServerTls } from "./config/index.ts";
import { sslRequest } from "./protocol/messages.ts";

/**
 * The client's TLS socket over `socket` once the handshake is done: after an SSLRequest answered
 * 'S', or with `hello`, the start of a direct TLS handshake that was read before it was recognised.
 * Rejects when it fails. Under verify-ca / verify-full, `authorized` then says whether its
 * certificate verified (the caller refuses the login if not, in words the client can show).
 */
export function acceptTls(
  socket: net.Socket,
  setup: ClientTls,
  hello: Buffer | null,
): Promise<tls.TLSSocket> {
  // bytes waiting in the socket are where the TLS socket over it starts reading (Node's initRead)
  if (hello !== null) {
    socket.pause();
    socket.unshift(hello);
  }
  const waiting = handshakesOf(setup.acceptor);
  const key = fourTuple(socket);
  return new Promise<tls.TLSSocket>((resolve, reject) => {
    // whatever ends the handshake closes the TCP socket under it, if tls.Server has not said so
    const closed = (): void =>
      settle(waiting, key)?.reject(new Error("connection closed during the handshake"));
    socket.once("close", closed);
    waiting.set(key, {
      resolve: (secure) => {
        socket.off("close", closed);
        resolve(secure);
      },
      reject: (err) => {
        socket.off("close", closed);
        reject(err);
      },
    });
    setup.acceptor.emit("connection", socket);
  });
}

interface Handshake {
  resolve(socket: tls.TLSSocket): void;
  reject(err: Error): void;
}

const handshakes = new WeakMap<tls.Server, Map<string, Handshake>>();

/** tls.Server reports a handshake it was handed with the TLS socket: its TCP four-tuple says whose. */
function handshakesOf(server: tls.Server): Map<string, Handshake> {
  let waiting = handshakes.get(server);
  if (waiting === undefined) {
    const map = (waiting = new Map<string, Handshake>());
    server.on("secureConnection", (s: tls.TLSSocket) => settle(map, fourTuple(s))?.resolve(s));
    server.on("tlsClientError", (err: Error, s: tls.TLSSocket) => settle(map, fourTuple(s))?.reject(err));
    handshakes.set(server, waiting);
  }
  return waiting;
}

function settle(waiting: Map<string, Handshake>, key: string): Handshake | undefined {
  const h = waiting.get(key);
  waiting.delete(key);
  return h;
}

function fourTuple(s: net.Socket): string {
  return `${s.localAddress}:${s.localPort}-${s.remoteAddress}:${s.remotePort}`;
}

const ANSWER_TLS = 0x53; // 'S'
const ANSWER_PLAIN = 0x4e; // 'N'

/**
 * Asks the server for TLS on a connected socket (PgBouncer: for every sslmode but disable) and
 * resolves with the socket to speak on: TLS when the server agreed, the plain one when it refused
 * and the mode allows that. Rejects with the reason the waiting client will read.
 */
export function connectTls(socket: net.Socket, setup: ServerTls | null, host: string): Promise<net.Socket> {
  return requestTls(socket, setup, host, (take) => socket.once("data", take));
}

/**
 * connectTls for a socket whose bytes do not come as 'data' events (read with net's `onread`):
 * `onAnswer` hands the next chunk read to `take`.
 */
export function requestTls(
  socket: net.Socket,
  setup: ServerTls | null,
  host: string,
  onAnswer: (take: (answer: Buffer) => void) => void,
): Promise<net.Socket> {
  if (setup === null) return Promise.resolve(socket);
  socket.write(sslRequest());
  return new Promise((resolve, reject) => {
    onAnswer((answer: Buffer) => {
      if (answer[0] !== ANSWER_TLS && answer[0] !== ANSWER_PLAIN) {
        const got = JSON.stringify(answer.subarray(0, 32).toString("latin1"));
        return reject(new Error(`server answered SSLRequest with neither S nor N: ${got}`));
      }
      // Bytes after the one-byte answer would be plaintext posing as part of the TLS session.
      if (answer.length !== 1) return reject(new Error("server sent unencrypted data after its SSL answer"));
      if (answer[0] === ANSWER_PLAIN) {
        if (!tlsRequired(setup.mode)) return resolve(socket);
        return reject(new Error(`server refused SSL (server_tls_sslmode=${setup.mode})`));
      }
      const secure = tls.connect({ socket, ...serverTlsOptions(setup, host) });
      const failed = (err: Error): void =>
        reject(new Error(`TLS handshake with the server failed: ${err.message.replace(NODE_CA_HINT, "")}`));
      secure.once("error", failed);
      secure.once("secureConnect", () => {
        secure.off("error", failed);
        resolve(secure);
      });
    });
  });
}

/** Node's advice on an unknown CA, which a pooler's operator or client cannot follow. */
const NODE_CA_HINT = /; if the root CA is installed locally, try running Node\.js with --use-system-ca$/;

/** What tls.connect needs to speak to PostgreSQL at `host` as server_tls_* say. */
function serverTlsOptions(setup: ServerTls, host: string): tls.ConnectionOptions {
  return {
    secureContext: setup.context,
    host,
    // SNI takes host names only (RFC 6066); the identity check still uses `host`
    ...(net.isIP(host) === 0 ? { servername: host } : {}),
    rejectUnauthorized: setup.verifyChain,
    ...(setup.verifyName ? {} : { checkServerIdentity: () => undefined }),
  };
}

export function isTls(socket: object): socket is tls.TLSSocket {
  return socket instanceof tls.TLSSocket;
}

/**
 * The CommonName of the client certificate the handshake just done verified, if any. Read once,
 * then: `authorized` is the last handshake's verdict, and one without a certificate (a resumed
 * session) can leave it true.
 */
export function verifiedCertName(socket: tls.TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const cn = socket.getPeerCertificate().subject?.CN;
  return typeof cn === "string" ? cn : undefined;
}

/**
 * SHOW CLIENTS / SERVERS' `tls` column, as PgBouncer prints it: protocol/cipher/key exchange, e.g.
 * "TLSv1.3/TLS_AES_256_GCM_SHA384/ECDH=X25519"; empty without TLS. Node tells the key exchange
 * group only on the client end of a session, so clients' rows show protocol/cipher.
 */
export function describeTls(socket: object): string {
  if (!isTls(socket)) return "";
  // null, despite its typing, once destroy() has dropped the TLS state (before 'close')
  const cipher = socket.getCipher() as tls.CipherNameAndProtocol | null;
  if (cipher === null) return "";
  const key = socket.getEphemeralKeyInfo();
  let exchange = "";
  if (key && "type" in key && key.type === "ECDH") exchange = `/ECDH=${String(key.name)}`;
  else if (key && "type" in key && key.type === "DH") exchange = `/DH=${String(key.size)}`;
  return `${socket.getProtocol() ?? "-"}/${cipher.name}${exchange}`;
}
