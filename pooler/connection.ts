// What client and server connections share: a socket whose reading can be stopped for several
// independent reasons (waiting for a server, the other side's buffer being full, a pause), and
// writes that respect the destination's backpressure.
import { now } from "./clock.ts";
import type { FrameScanner } from "./protocol/framing.ts";

/** What a connection uses of its socket: a net.Socket's, or a client's RawSocket (client-socket.ts). */
export interface ConnSocket {
  readonly destroyed: boolean;
  readonly writable: boolean;
  readonly writableLength: number;
  readonly readableLength: number;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  write(data: Buffer | string): boolean;
  once(event: "drain" | "close", listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
  end(): unknown;
  end(data: Buffer): unknown;
  destroy(): unknown;
  setNoDelay(on: boolean): unknown;
  setKeepAlive(on: boolean, idleMs: number, intervalMs: number, count: number): unknown;
}

/** Reasons a connection's reading is paused; it resumes only when none is left. */
export const Block = {
  /** The client waits for a server (or for its server to finish a reset / parameter sync). */
  Waiting: 1,
  /** The peer it forwards to cannot take more bytes until it drains. */
  Backpressure: 2,
  /** Admin PAUSE or shutdown. */
  Paused: 4,
  /** A client logging in sent more than it can use until its lookup or welcome is done. */
  Login: 8,
  /** It does not read what the pooler answered it itself (a cached ParseComplete, a console result). */
  Unread: 16,
} as const;

let nextId = 1;

export abstract class Connection<S extends ConnSocket = ConnSocket> {
  readonly id = nextId++;
  /** clock.ts time, as every timestamp of a connection. */
  readonly connectTime = now();
  /** Last time bytes moved on this connection (for idle timeouts). */
  lastActivity = now();
  private blocked = 0;

  /**
   * Replaced when TLS starts during login: a client's RawSocket by a net.Socket over its handle,
   * then by the TLS socket over that (tls.ts).
   */
  constructor(public socket: S) {}

  /** What reads this connection's messages: null while it holds no half-received message. */
  abstract get framing(): FrameScanner | null;

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  block(reason: number): void {
    if (this.blocked === 0) this.socket.pause();
    this.blocked |= reason;
  }

  unblock(reason: number): void {
    if ((this.blocked & reason) === 0) return;
    this.blocked &= ~reason;
    if (this.blocked === 0 && !this.socket.destroyed) this.socket.resume();
  }

  /**
   * Writes to this connection. When the kernel buffer and Node's queue are full, `source` stops
   * reading until this socket drains, so memory stays bounded however fast the source produces.
   * Without a source the bytes are the pooler's own answer to this connection: then this one stops
   * reading, or a client pipelining what the pooler answers itself would grow the queue unbounded.
   */
  write(buf: Buffer, source?: Connection): void {
    if (this.socket.write(buf)) return;
    if (source === undefined) return this.blockUntilRead();
    if (source.blocked & Block.Backpressure) return;
    source.block(Block.Backpressure);
    this.drainFor = source;
    this.socket.once("drain", () => this.drained(source));
  }

  /** A bit of its own, not Backpressure: a link ending (unlinkFrom) must not lift it. */
  private blockUntilRead(): void {
    if (this.blocked & Block.Unread) return;
    this.block(Block.Unread);
    this.socket.once("drain", (this.caughtUp ??= () => this.unblock(Block.Unread)));
  }

  /** Made when first needed: most connections never need it, and there may be thousands. */
  private caughtUp: (() => void) | null = null;

  /** The source this socket's next 'drain' wakes (null once the link it served has ended). */
  private drainFor: Connection | null = null;

  private drained(source: Connection): void {
    if (this.drainFor !== source) return;
    this.drainFor = null;
    source.unblock(Block.Backpressure);
  }

  /**
   * The link between this connection and `peer` ends: neither may stay paused on the other's full
   * buffer (the server would go back to the pool unable to read), nor be woken by it later.
   */
  unlinkFrom(peer: Connection): void {
    this.forget(peer);
    peer.forget(this);
  }

  /** `source` no longer writes here: it may read again, and this socket's 'drain' is not its business. */
  private forget(source: Connection): void {
    if (this.drainFor === source) this.drainFor = null;
    source.unblock(Block.Backpressure);
  }
}
