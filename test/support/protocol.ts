// A minimal PostgreSQL v3 client over a raw socket, for tests that must see every message: it logs
// in (cleartext, md5 or SCRAM), then sends whatever bytes it is given and hands back the replies
// one message at a time. The builders in pooler/protocol/messages.ts make the messages.
import { once } from "node:events";
import net from "node:net";
import { md5Response } from "../../pooler/protocol/auth/md5.ts";
import { SASL_MECHANISM, ScramClientSession } from "../../pooler/protocol/auth/scram.ts";
import {
  Auth,
  parseErrorFields,
  passwordMessage,
  saslInitialResponse,
  saslResponse,
  startupMessage,
  terminate,
} from "../../pooler/protocol/messages.ts";

export interface Reply {
  /** The type byte as a character: "1" ParseComplete, "E" ErrorResponse, "Z" ReadyForQuery, … */
  type: string;
  body: Buffer;
}

export class RawClient {
  private buf = Buffer.alloc(0);
  private readonly replies: Reply[] = [];
  private waiter: (() => void) | null = null;
  private closed = false;
  /** The ParameterStatus messages of the login, in order. */
  readonly parameters: [string, string][] = [];
  /** The login's BackendKeyData: what a CancelRequest for this connection carries. */
  cancelKey = { pid: 0, secret: 0 };

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 5 && this.buf.length >= 1 + this.buf.readUInt32BE(1)) {
        const len = this.buf.readUInt32BE(1);
        this.replies.push({ type: String.fromCharCode(this.buf[0]!), body: this.buf.subarray(5, 1 + len) });
        this.buf = this.buf.subarray(1 + len);
      }
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => undefined);
  }

  /**
   * Connects and logs in; the login's own messages (ParameterStatus, BackendKeyData, …) are consumed.
   * `beforePassword` runs when the pooler has asked for the password, before it is sent.
   * `packet` writes the startup packet (startupOfBytes for values that are not UTF-8).
   */
  static async connect(
    url: string,
    params: Record<string, string> = {},
    beforePassword?: () => Promise<unknown>,
    packet: (params: Record<string, string>) => Buffer = startupMessage,
  ): Promise<RawClient> {
    const u = new URL(url);
    const user = decodeURIComponent(u.username);
    const password = decodeURIComponent(u.password);
    const socket = net.connect({ host: u.hostname, port: Number(u.port) });
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const c = new RawClient(socket);
    c.send(packet({ user, database: u.pathname.slice(1), ...params }));
    let scram: ScramClientSession | null = null;
    for (;;) {
      const m = await c.next();
      if (m.type === "E") throw new Error(`login failed: ${parseErrorFields(withHeader(m)).get("M")}`);
      if (m.type === "Z") return c;
      if (m.type === "S") c.parameters.push(parameterStatusOf(m.body));
      if (m.type === "K") c.cancelKey = { pid: m.body.readInt32BE(0), secret: m.body.readInt32BE(4) };
      if (m.type !== "R") continue;
      const code = m.body.readInt32BE(0);
      if (code !== Auth.Ok && code !== Auth.SASLContinue && code !== Auth.SASLFinal) await beforePassword?.();
      if (code === Auth.CleartextPassword) c.send(passwordMessage(password));
      else if (code === Auth.MD5Password)
        c.send(passwordMessage(md5Response(user, password, m.body.subarray(4, 8))));
      else if (code === Auth.SASL) {
        scram = new ScramClientSession(password);
        c.send(saslInitialResponse(SASL_MECHANISM, scram.clientFirst()));
      } else if (code === Auth.SASLContinue)
        c.send(saslResponse(await scram!.handleServerFirst(m.body.toString("utf8", 4))));
    }
  }

  send(...messages: Buffer[]): void {
    this.socket.write(Buffer.concat(messages));
  }

  /** The next message from the peer (rejects if it closes first or `timeoutMs` passes). */
  async next(timeoutMs = 5000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length === 0) {
      if (this.closed) throw new Error("connection closed");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("no reply in time");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.replies.shift()!;
  }

  /** Replies up to and including the `count`-th ReadyForQuery. */
  async untilReady(count = 1): Promise<Reply[]> {
    const out: Reply[] = [];
    while (count > 0) {
      const m = await this.next();
      out.push(m);
      if (m.type === "Z") count--;
    }
    return out;
  }

  /** The next `count` messages. */
  async take(count: number): Promise<Reply[]> {
    const out: Reply[] = [];
    while (out.length < count) out.push(await this.next());
    return out;
  }

  /** Sends the messages and returns the replies up to the `readyCount`-th ReadyForQuery. */
  async exchange(messages: Buffer[], readyCount = 1): Promise<Reply[]> {
    this.send(...messages);
    return this.untilReady(readyCount);
  }

  /**
   * As send, resolving once the socket takes more, so a large payload (COPY) streams without piling
   * up here; true when it had to wait for that (the peer was not reading as fast).
   */
  async write(...messages: Buffer[]): Promise<boolean> {
    if (this.socket.write(Buffer.concat(messages))) return false;
    await once(this.socket, "drain");
    return true;
  }

  /**
   * The socket, for a test that reads the replies itself from now on (a slow reader of a large
   * result): this client stops collecting them. Call it when no reply is pending.
   */
  release(): net.Socket {
    this.socket.removeAllListeners("data");
    return this.socket;
  }

  /** Drops the connection without Terminate, as a crashed client would. */
  destroy(): void {
    this.socket.destroy();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.socket.end(terminate());
    await new Promise<void>((resolve) => this.socket.once("close", () => resolve()));
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

/**
 * A protocol 3.0 startup packet whose parameters are given byte for byte (latin1: one char a byte),
 * for names that are not UTF-8, which startupMessage cannot write.
 */
export function startupOfBytes(params: Record<string, string>): Buffer {
  const body = Buffer.from(
    `${Object.entries(params)
      .map(([k, v]) => `${k}\0${v}\0`)
      .join("")}\0`,
    "latin1",
  );
  const header = Buffer.alloc(8);
  header.writeInt32BE(8 + body.length);
  header.writeInt32BE(3 << 16, 4); // protocol 3.0
  return Buffer.concat([header, body]);
}

/** The message with its header again (for the parsers of messages.ts, which expect one). */
export function withHeader(m: Reply): Buffer {
  const buf = Buffer.allocUnsafe(5 + m.body.length);
  buf[0] = m.type.charCodeAt(0);
  buf.writeUInt32BE(4 + m.body.length, 1);
  m.body.copy(buf, 5);
  return buf;
}

/** ErrorResponse fields of a reply. */
export function errorOfReply(m: Reply): Map<string, string> {
  return parseErrorFields(withHeader(m));
}

/** What a client can see of a reply, as readable text to compare: every byte (an error's fields one by one). */
export function visibleReply(m: Reply): string {
  if (m.type === "E" || m.type === "N") return `${m.type} ${JSON.stringify([...errorOfReply(m)])}`;
  return `${m.type} ${JSON.stringify(m.body.toString("latin1"))}`;
}

function parameterStatusOf(body: Buffer): [string, string] {
  const [name = "", value = ""] = body.toString("utf8").split("\0");
  return [name, value];
}
