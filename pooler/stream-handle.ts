// Node's internals that client connections rely on, and the only module that touches them.
//
// A net.Socket costs ~0.85 kB of V8 heap per idle client (the Socket, its ReadableState and
// WritableState, listeners, the cached peer address) and ~1.1 kB of garbage as it is built. Below it
// is the libuv handle net.Socket itself drives: a TCP or Pipe handle from the deprecated
// process.binding (DEP0111, documentation-only: a warning only under --pending-deprecation), with
// readStart/readStop, an `onread` called with the handle as `this` (nread in streamBaseState),
// writeBuffer with a WriteWrap, shutdown with a ShutdownWrap, close. This module reaches them as
// Node 24's lib/net.js and lib/internal/stream_base_commons.js do; client-socket.ts builds the
// client's socket on them. What a Node upgrade could break: process.binding's names and its
// allowlist, the streamBaseState slots, the callbacks' `this`, net.Server's `_handle` and its
// `onconnection(err, clientHandle)`, net.Socket's `handle` option, useUserBuffer's listener (below).
//
// Reads go to a buffer of the caller's (useUserBuffer, what net's `onread` option uses): libuv reads
// into it and `onread` gets no ArrayBuffer, only nread. The handle's stream listener
// (CustomBufferJSListener in src/stream_base.cc) keeps the buffer's bare address, not the Buffer: the
// caller keeps it alive. A Uint8Array returned by `onread` becomes that handle's buffer for its next
// read; no other handle's changes. useUserBuffer pushes a listener over Node's own for good: a
// net.Socket later made over the handle (socketOver) would read through it, where a TLS socket over
// it does not (its own listener goes on top).
import net from "node:net";
import util from "node:util";

/** Called with the request as `this`, as libuv's callbacks reach JavaScript. */
interface Request<O> {
  handle: StreamHandle<O>;
  owner: O;
  oncomplete(this: Request<O>, status: number): void;
}

export interface WriteRequest<O> extends Request<O> {
  /** Kept alive here until the write completes, as net.Socket keeps it. */
  buffer: Buffer;
  oncomplete(this: WriteRequest<O>, status: number): void;
}

/** An accepted client's libuv stream: a TCP handle, or a Pipe one on a Unix socket. */
export interface StreamHandle<O> {
  /** What the handle's callbacks, called with the handle as `this`, are for. */
  owner: O | null;
  /**
   * nread comes through readLength(), the bytes in the buffer given to useUserBuffer; a buffer
   * returned is where the next read goes.
   */
  onread: (this: StreamHandle<O>) => Uint8Array | undefined;
  /** Every read of this handle lands at the start of `buf` from now on. */
  useUserBuffer(buf: Uint8Array): void;
  readonly bytesRead: number;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteRequest<O>, data: Uint8Array): number;
  /** 1 when done at once. */
  shutdown(req: Request<O>): number;
  close(onclose: (this: StreamHandle<O>) => void): void;
  /** TCP only, as the two below. */
  getpeername?(out: Partial<net.AddressInfo>): number;
  getsockname?(out: Partial<net.AddressInfo>): number;
  setNoDelay?(on: boolean): number;
  /** Seconds, and a probe count. */
  setKeepAlive?(on: boolean, idle: number, interval?: number, count?: number): number;
}

interface StreamWrap {
  WriteWrap: new () => WriteRequest<unknown>;
  ShutdownWrap: new () => Request<unknown>;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

const binding = (process as unknown as { binding(name: string): unknown }).binding;
const { WriteWrap, ShutdownWrap, streamBaseState, kReadBytesOrError, kLastWriteWasAsync } = binding(
  "stream_wrap",
) as StreamWrap;
export const UV_EOF = (binding("uv") as { UV_EOF: number }).UV_EOF;
const UV_ENOTCONN = (binding("uv") as { UV_ENOTCONN: number }).UV_ENOTCONN;

/** The read just reported to `onread`: bytes read (> 0), 0, UV_EOF or another libuv error. */
export function readLength(): number {
  return streamBaseState[kReadBytesOrError]!;
}

/** Writes `data`: 0 when written at once, 1 when queued (then `oncomplete` follows), or a libuv error. */
export function writeBuffer<O>(
  handle: StreamHandle<O>,
  owner: O,
  data: Buffer,
  oncomplete: (this: WriteRequest<O>, status: number) => void,
): number {
  const req = new WriteWrap() as WriteRequest<O>;
  req.handle = handle;
  req.owner = owner;
  req.buffer = data;
  req.oncomplete = oncomplete;
  const err = handle.writeBuffer(req, data);
  if (err !== 0) return err;
  return streamBaseState[kLastWriteWasAsync] ? 1 : 0;
}

/** Shuts the write side once queued writes are done: 0 then `oncomplete` follows, 1 done at once, or an error. */
export function shutdown<O>(
  handle: StreamHandle<O>,
  owner: O,
  oncomplete: (this: Request<O>, status: number) => void,
): number {
  const req = new ShutdownWrap() as Request<O>;
  req.handle = handle;
  req.owner = owner;
  req.oncomplete = oncomplete;
  const err = handle.shutdown(req);
  return err === UV_ENOTCONN ? 1 : err;
}

/** A libuv error as Node's own sockets report it ("read ECONNRESET"). */
export function errnoError(err: number, syscall: string): NodeJS.ErrnoException {
  const code = util.getSystemErrorName(err);
  return Object.assign(new Error(`${syscall} ${code}`), { errno: err, code, syscall });
}

/**
 * From now on `server`'s accepted connections go to `accept` as bare handles, never wrapped in a
 * net.Socket. net.Server still binds, listens and closes; an accept that failed is its 'error', as
 * net.Server reports it. Call it once the server listens.
 */
export function acceptHandles<O>(server: net.Server, accept: (handle: StreamHandle<O>) => void): void {
  const listening = (server as unknown as { _handle: ServerHandle<O> })._handle;
  listening.onconnection = (err, handle) => {
    if (err) server.emit("error", errnoError(err, "accept"));
    else accept(handle!);
  };
}

interface ServerHandle<O> {
  onconnection: (err: number, handle?: StreamHandle<O>) => void;
}

/**
 * A net.Socket over `handle`, which must not be reading; it starts reading as an accepted one does.
 * For a TLS socket made over it at once: read through a user buffer, net.Socket would lose the bytes.
 */
export function socketOver<O>(handle: StreamHandle<O>): net.Socket {
  handle.owner = null;
  const opts = { handle, readable: true, writable: true };
  return new net.Socket(opts as unknown as net.SocketConstructorOpts);
}
