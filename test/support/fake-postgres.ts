// A stand-in for PostgreSQL, for what a real one will not do on cue: it logs anyone in (trust, or a
// SCRAM exchange that takes any proof; refusing TLS) with the ParameterStatus messages given, and
// answers each simple Query with an empty result. Tests shape the login's end and each reply.
import net from "node:net";
import {
  Auth,
  authRequest,
  authenticationOk,
  authenticationSASL,
  backendKeyData,
  commandComplete,
  Msg,
  parameterStatus,
  readyForQuery,
  SSL_REQUEST_CODE,
} from "../../pooler/protocol/messages.ts";

export interface FakeBehaviour {
  /** Reported at login, in this order. */
  params: Record<string, string>;
  /** Bytes sent right behind the login's ReadyForQuery, then the connection ends (a FATAL, say). */
  endAfterLogin?: (connection: number) => Buffer | null;
  /** Bytes sent instead of the answer to connection `connection`'s Query, then the connection ends. */
  endOnQuery?: (sql: string, connection: number) => Buffer | null;
  /** Messages sent before a Query's CommandComplete (an asynchronous ParameterStatus, say). */
  before?: (sql: string) => Buffer[];
  /**
   * Asks for SCRAM-SHA-256 instead, takes any proof, and answers it with these bytes before
   * AuthenticationOk: a forged AuthenticationSASLFinal, or nothing (no server signature at all).
   */
  scramEnd?: Buffer;
}

export interface FakePostgres {
  server: net.Server;
  port: number;
  /** Logins so far. */
  logins(): number;
  close(): void;
}

export async function startFakePostgres(behaviour: FakeBehaviour): Promise<FakePostgres> {
  let logins = 0;
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    let loggedIn = false;
    let scramming = false;
    let serverFirst = "";
    let connection = -1;
    const welcome = (before: Buffer): void => {
      loggedIn = true;
      connection = logins;
      scramming = false;
      const hello = Buffer.concat([
        before,
        authenticationOk(),
        ...Object.entries(behaviour.params).map(([k, v]) => parameterStatus(k, v)),
        backendKeyData(1, 2),
        readyForQuery("I"),
      ]);
      const last = behaviour.endAfterLogin?.(logins) ?? null;
      logins++;
      if (last !== null) return void sock.end(Buffer.concat([hello, last]));
      sock.write(hello);
    };
    sock.on("error", () => undefined);
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!loggedIn && !scramming) {
        if (buf.length < 8 || buf.length < buf.readUInt32BE(0)) return;
        const packet = buf.subarray(0, buf.readUInt32BE(0));
        buf = buf.subarray(packet.length);
        // SSLRequest (the pooler's server TLS may try it): no, go on in plain text
        if (packet.readUInt32BE(4) === SSL_REQUEST_CODE) return void sock.write("N");
        if (behaviour.scramEnd) {
          scramming = true;
          sock.write(authenticationSASL(["SCRAM-SHA-256"]));
        } else welcome(Buffer.alloc(0));
      }
      while (buf.length >= 5 && buf.length >= 1 + buf.readUInt32BE(1)) {
        const msg = buf.subarray(0, 1 + buf.readUInt32BE(1));
        buf = buf.subarray(msg.length);
        if (scramming && msg[0] === Msg.Password) {
          // SASLInitialResponse: the client's nonce, extended; SASLResponse: the end the test chose
          const nonce = /r=([^,]*)/.exec(msg.toString("utf8"));
          if (serverFirst === "") {
            serverFirst = `r=${nonce?.[1]}fake,s=${Buffer.alloc(16).toString("base64")},i=4096`;
            sock.write(authRequest(Auth.SASLContinue, Buffer.from(serverFirst)));
          } else welcome(behaviour.scramEnd!);
        } else if (msg[0] === Msg.Terminate) sock.end();
        else if (msg[0] === Msg.Query) {
          const sql = msg.toString("utf8", 5, msg.length - 1);
          const last = behaviour.endOnQuery?.(sql, connection) ?? null;
          if (last !== null) return void sock.end(last);
          // BEGIN opens a transaction
          const status = sql.startsWith("BEGIN") ? "T" : "I";
          const before = behaviour.before?.(sql) ?? [];
          sock.write(Buffer.concat([...before, commandComplete("SELECT 0"), readyForQuery(status)]));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    logins: () => logins,
    close: () => server.close(),
  };
}
