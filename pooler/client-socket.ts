// A plain client's socket on its bare libuv handle (stream-handle.ts): what the client side used of
// a net.Socket, for a fraction of its memory per idle client. It keeps net.Socket's behaviour where
// the pooler sees it: write() is false from 64 kB queued and 'drain' follows; a paused socket goes
// on reading until 64 kB wait in it (readableLength: what a client sent meanwhile); the peer's end,
// once what came before it is read, ends ours (no half-open); errors come before the close, both
// after the call that caused them.
// Events go to one owner's methods, not to listeners, so no socket holds a closure of its own.
import type net from "node:net";
import { nextBuffer, owned, readIntoShared, takeRead } from "./client-reads.ts";
import {
  errnoError,
  readLength,
  shutdown,
  socketOver,
  UV_EOF,
  writeBuffer,
  type StreamHandle,
  type WriteRequest,
} from "./stream-handle.ts";

/** A client's socket: a TLS client's is a net.Socket (tls.TLSSocket). */
export type ClientSocket = RawSocket | net.Socket;

/** What a socket tells its connection. */
export interface SocketOwner {
  /**
   * Valid until it returns when it is a view of the buffer all clients read into (client-reads.ts):
   * what is kept is copied (owned), a slice whose write stays queued is lent.
   */
  socketData(chunk: Buffer): void;
  /** The 'close' follows. */
  socketError(err: Error): void;
  socketClosed(): void;
}

/** net.Socket's highWaterMark (Node 22 and later), both ways. */
const HIGH_WATER_MARK = 64 * 1024;

const enum State {
  Reading = 1,
  Paused = 2,
  /** end() was called: nothing more may be written. */
  Ending = 4,
  ShutDown = 8,
  /** The peer's end came, and is held behind bytes read before it. */
  EofHeld = 16,
  /** The peer's end was handed on (net's 'end'): the socket closes once its own end is done. */
  PeerEnded = 32,
  Destroyed = 64,
  NeedDrain = 128,
  /** A nextTick delivers what was held. */
  Flushing = 256,
}

type Handle = StreamHandle<RawSocket>;

export class RawSocket {
  private owner: SocketOwner | null = null;
  private state = 0;
  /** Bytes of writes libuv has queued, not done yet. */
  private queued = 0;
  /** Read while paused, in order. */
  private held: Buffer[] | null = null;
  private drainWaiters: (() => void)[] | null = null;
  private closeWaiters: (() => void)[] | null = null;

  constructor(private readonly handle: Handle) {
    handle.owner = this;
    handle.onread = onRead;
    readIntoShared(handle);
  }

  /** Starts reading for `owner`, as an accepted net.Socket starts at once. */
  start(owner: SocketOwner): void {
    this.owner = owner;
    this.startReading();
  }

  get destroyed(): boolean {
    return (this.state & State.Destroyed) !== 0;
  }

  get writable(): boolean {
    return (this.state & (State.Destroyed | State.Ending)) === 0;
  }

  get writableLength(): number {
    return this.queued;
  }

  get bytesRead(): number {
    return this.handle.bytesRead;
  }

  get readableLength(): number {
    let n = 0;
    for (const chunk of this.held ?? []) n += chunk.length;
    return n;
  }

  get remoteAddress(): string | undefined {
    return this.peer()?.address;
  }

  get remotePort(): number | undefined {
    return this.peer()?.port;
  }

  get localAddress(): string | undefined {
    return this.local()?.address;
  }

  get localPort(): number | undefined {
    return this.local()?.port;
  }

  /** Read each time, not kept: an idle client would hold them for nothing. */
  private peer(): Partial<net.AddressInfo> | undefined {
    const out: Partial<net.AddressInfo> = {};
    return this.destroyed || this.handle.getpeername?.(out) !== 0 ? undefined : out;
  }

  private local(): Partial<net.AddressInfo> | undefined {
    const out: Partial<net.AddressInfo> = {};
    return this.destroyed || this.handle.getsockname?.(out) !== 0 ? undefined : out;
  }

  setNoDelay(on: boolean): void {
    if (!this.destroyed) this.handle.setNoDelay?.(on);
  }

  /** As net.Socket's: milliseconds, given to the kernel in whole seconds. */
  setKeepAlive(on: boolean, idleMs: number, intervalMs: number, count: number): void {
    if (!this.destroyed) this.handle.setKeepAlive?.(on, ~~(idleMs / 1000), ~~(intervalMs / 1000), count);
  }

  once(event: "drain" | "close", listener: () => void): void {
    if (event === "drain") (this.drainWaiters ??= []).push(listener);
    else (this.closeWaiters ??= []).push(listener);
  }

  write(data: Buffer | string): boolean {
    if (this.destroyed) return false;
    if (this.state & State.Ending) {
      this.fail(writeAfterEnd(this.state));
      return false;
    }
    const buf = typeof data === "string" ? Buffer.from(data, "latin1") : data;
    const ok = this.queued + buf.length < HIGH_WATER_MARK;
    const result = writeBuffer(this.handle, this, buf, onWritten);
    if (result < 0) {
      this.fail(errnoError(result, "write"));
      return false;
    }
    if (result === 1) this.queued += buf.length;
    if (!ok) {
      this.state |= State.NeedDrain;
      // written at once, it still answers false, as net.Socket does: its 'drain' comes next tick
      if (this.queued === 0) process.nextTick(drainIfDone, this);
    }
    return ok;
  }

  pause(): void {
    this.state |= State.Paused;
  }

  resume(): void {
    if ((this.state & State.Paused) === 0) return;
    this.state &= ~State.Paused;
    if (this.held !== null) this.flushSoon();
    else this.startReading();
  }

  /** Ends our side once what is queued is written; the socket closes when the peer's end has come too. */
  end(data?: Buffer): void {
    if (data !== undefined) this.write(data);
    if (this.state & (State.Ending | State.Destroyed)) return;
    this.state |= State.Ending;
    const result = shutdown(this.handle, this, onShutdown);
    if (result === 1) this.shutDown();
    else if (result < 0) this.fail(errnoError(result, "shutdown"));
  }

  destroy(): void {
    if (this.destroyed) return;
    this.state |= State.Destroyed;
    this.held = null;
    this.handle.close(onClose);
  }

  /**
   * The handle under a net.Socket from now on (a TLS handshake starts on it): this socket tells
   * its owner nothing more. Bytes read while paused are the new socket's first.
   */
  toNetSocket(): net.Socket {
    this.stopReading();
    this.owner = null;
    const socket = socketOver(this.handle);
    for (const chunk of (this.held ?? []).reverse()) socket.unshift(chunk);
    this.held = null;
    return socket;
  }

  // ---- from libuv ----

  read(): void {
    const nread = readLength();
    if (nread > 0) {
      const chunk = takeRead(this.handle, nread);
      if (this.destroyed || this.owner === null) return;
      if (this.held === null && (this.state & State.Paused) === 0) return this.owner.socketData(chunk);
      (this.held ??= []).push(owned(chunk));
      if (this.readableLength >= HIGH_WATER_MARK) this.stopReading();
      return;
    }
    if (nread === 0) return;
    if (nread !== UV_EOF) return this.fail(errnoError(nread, "read"));
    this.stopReading();
    // as a Readable's end: at once, paused or not, unless read bytes wait in front of it
    if (this.held === null) this.peerEnded();
    else this.state |= State.EofHeld;
  }

  written(req: WriteRequest<RawSocket>, status: number): void {
    this.queued -= req.buffer.length;
    if (this.destroyed || this.owner === null) return;
    if (status < 0) return this.fail(errnoError(status, "write"));
    this.drainIfDone();
  }

  /** net.Socket's shutdown ignores a failure too: the close that follows says it. */
  shutDown(): void {
    this.state |= State.ShutDown;
    if (this.state & State.PeerEnded) this.destroy();
  }

  closed(): void {
    const owner = this.owner;
    this.owner = null;
    this.handle.owner = null;
    owner?.socketClosed();
    const waiters = this.closeWaiters;
    this.closeWaiters = this.drainWaiters = null;
    for (const w of waiters ?? []) w();
  }

  drainIfDone(): void {
    if (this.queued !== 0 || (this.state & State.NeedDrain) === 0 || this.destroyed) return;
    this.state &= ~State.NeedDrain;
    const waiters = this.drainWaiters;
    this.drainWaiters = null;
    for (const w of waiters ?? []) w();
  }

  /** Held bytes go out one chunk at a time while the socket is not paused again, as a Readable flows. */
  flush(): void {
    this.state &= ~State.Flushing;
    while (this.held !== null && (this.state & State.Paused) === 0 && this.owner !== null) {
      const chunk = this.held.shift()!;
      if (this.held.length === 0) this.held = null;
      this.owner.socketData(chunk);
    }
    if (this.destroyed) return;
    if (this.held === null && this.state & State.EofHeld) this.peerEnded();
    // paused again or not, it reads on up to the mark, as a Readable read from does
    else if (this.readableLength < HIGH_WATER_MARK) this.startReading();
  }

  // ----

  private flushSoon(): void {
    if (this.state & State.Flushing) return;
    this.state |= State.Flushing;
    process.nextTick(flushHeld, this);
  }

  private startReading(): void {
    if (this.state & (State.Reading | State.Destroyed | State.EofHeld | State.PeerEnded)) return;
    this.state |= State.Reading;
    const err = this.handle.readStart();
    if (err) this.fail(errnoError(err, "read"));
  }

  private stopReading(): void {
    if ((this.state & State.Reading) === 0) return;
    this.state &= ~State.Reading;
    if (!this.destroyed) this.handle.readStop();
  }

  /** As net.Socket without allowHalfOpen: the peer's end ends ours, and then the socket closes. */
  private peerEnded(): void {
    this.state = (this.state & ~State.EofHeld) | State.PeerEnded;
    if (this.state & State.ShutDown) this.destroy();
    else this.end();
  }

  /** The error goes to the owner on the next tick (as net.Socket emits it), its close after. */
  private fail(err: Error): void {
    // without an owner the handle is a net.Socket's now, or closing
    if (this.destroyed || this.owner === null) return;
    const owner = this.owner;
    this.destroy();
    if (owner !== null) process.nextTick(reportError, owner, err);
  }
}

/** net.Socket's words for it. */
function writeAfterEnd(state: number): Error {
  return state & State.PeerEnded
    ? Object.assign(new Error("This socket has been ended by the other party"), { code: "EPIPE" })
    : Object.assign(new Error("write after end"), { code: "ERR_STREAM_WRITE_AFTER_END" });
}

// Shared by every socket: the handle or request they are called on leads to it.
function onRead(this: Handle): Uint8Array | undefined {
  if (this.owner !== null) this.owner.read();
  // an ownerless handle's bytes are dropped, but they landed in the shared buffer all the same
  else if (readLength() > 0) takeRead(this, readLength());
  return nextBuffer(this);
}

function onWritten(this: WriteRequest<RawSocket>, status: number): void {
  this.owner.written(this, status);
}

function onShutdown(this: { owner: RawSocket }): void {
  this.owner.shutDown();
}

function onClose(this: Handle): void {
  this.owner?.closed();
}

function drainIfDone(socket: RawSocket): void {
  socket.drainIfDone();
}

function flushHeld(socket: RawSocket): void {
  socket.flush();
}

function reportError(owner: SocketOwner, err: Error): void {
  owner.socketError(err);
}
