// A raw client socket for tests of bad input (the fuzzer, authentication on the wire): it sends
// whatever bytes it is given, in pieces if asked, and records everything the pooler answers and
// when it closed, to be judged afterwards.
import net from "node:net";

export interface WireMessage {
  type: string;
  body: Buffer;
}

export class WireProbe {
  private chunks: Buffer[] = [];
  private size = 0;
  private waiter: (() => void) | null = null;
  closedAt = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.size += chunk.length;
      this.wake();
    });
    socket.on("close", () => {
      this.closedAt = Date.now();
      this.wake();
    });
    // a reset after the pooler closed is an ending like any other
    socket.on("error", () => undefined);
  }

  static open(port: number): Promise<WireProbe> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      socket.once("connect", () => resolve(new WireProbe(socket))).once("error", reject);
    });
  }

  get closed(): boolean {
    return this.closedAt > 0;
  }

  get received(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  send(buf: Buffer): void {
    if (!this.closed && this.socket.writable) this.socket.write(buf);
  }

  /**
   * Sends `buf` in pieces with short pauses, so the peer sees headers and bodies split; `random(n)`
   * (an integer in [0, n)) chooses the cuts and pauses.
   */
  async sendSplit(buf: Buffer, random: (n: number) => number): Promise<void> {
    let pos = 0;
    while (pos < buf.length && !this.closed) {
      const n = Math.min(buf.length - pos, 1 + random(Math.max(1, buf.length >> 1)));
      this.send(buf.subarray(pos, pos + n));
      pos += n;
      await new Promise((r) => setTimeout(r, random(4)));
    }
  }

  /**
   * Waits until the messages received (after `skip` single-byte SSL/GSS answers) satisfy `done`,
   * or the pooler closes, or `ms` pass; returns the messages received so far.
   */
  async waitUntil(done: (msgs: WireMessage[]) => boolean, ms: number, skip = 0): Promise<WireMessage[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const msgs = parseMessages(this.received, skip).messages;
      if (done(msgs) || this.closed || Date.now() >= deadline) return msgs;
      await this.wait(deadline - Date.now());
    }
  }

  /** Waits for the pooler to close the connection; false if it is still open after `ms`. */
  async waitClosed(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await this.wait(deadline - Date.now());
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, ms));
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

/** Backend messages in `buf` after `skip` single-byte answers; `rest` is an incomplete tail. */
export function parseMessages(buf: Buffer, skip = 0): { messages: WireMessage[]; rest: number } {
  const messages: WireMessage[] = [];
  let pos = Math.min(skip, buf.length);
  while (buf.length - pos >= 5) {
    const len = buf.readUInt32BE(pos + 1);
    if (len < 4 || buf.length - pos < 1 + len) break;
    messages.push({ type: String.fromCharCode(buf[pos]!), body: buf.subarray(pos + 5, pos + 1 + len) });
    pos += 1 + len;
  }
  return { messages, rest: buf.length - pos };
}
