// The libuv TCP handles that net.Socket wraps, reached through the deprecated process.binding
// (DEP0111), for the floor's raw pipe and raw login stub: no net.Socket, no streams.
import { host } from "./pipe-args.ts";

export interface WriteReq {
  handle?: TcpHandle;
  oncomplete?: (status: number) => void;
}
export interface TcpHandle {
  bind(address: string, port: number): number;
  listen(backlog: number): number;
  connect(req: object, address: string, port: number): number;
  setNoDelay(on: boolean): number;
  readStart(): number;
  readStop(): number;
  /** Reads land in `buffer` (shared by any number of handles), not in a new ArrayBuffer each. */
  useUserBuffer(buffer: Uint8Array): void;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  close(): void;
  onconnection: (status: number, handle?: TcpHandle) => void;
  /** Called with the handle as `this`; nread comes through streamBaseState, not as an argument. */
  onread: (this: TcpHandle, arrayBuffer?: ArrayBuffer) => void;
}
interface TcpWrap {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => { oncomplete?: (status: number) => void };
  constants: { SOCKET: number; SERVER: number };
}
interface StreamWrap {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
}

const binding = (process as unknown as { binding(name: string): unknown }).binding;
export const { TCP, TCPConnectWrap, constants } = binding("tcp_wrap") as TcpWrap;
export const { WriteWrap, streamBaseState, kReadBytesOrError, kArrayBufferOffset, kLastWriteWasAsync } =
  binding("stream_wrap") as StreamWrap;

function check(what: string, err: number): void {
  if (err) throw new Error(`${what} failed: libuv error ${err}`);
}

/** A raw TCP server on `port`, handing each accepted handle (noDelay on) to `accept`. */
export function listenRaw(port: number, accept: (client: TcpHandle) => void): void {
  const server = new TCP(constants.SERVER);
  server.onconnection = (status, client) => {
    if (status < 0 || !client) return;
    client.setNoDelay(true);
    accept(client);
  };
  check("bind", server.bind(host, port));
  check("listen", server.listen(511));
}
