// Pipe 3: the libuv TCP handles that net.Socket wraps, used directly through the deprecated
// process.binding (DEP0111): onconnection, readStart/onread, writeBuffer, close. No streams at all.
// Backpressure: while a write is still queued in libuv (async), the source stops reading.
import { host, pipeArgs, ready } from "./pipe-args.ts";

interface WriteReq {
  handle?: TcpHandle;
  oncomplete?: (status: number) => void;
}
interface TcpHandle {
  bind(address: string, port: number): number;
  listen(backlog: number): number;
  connect(req: object, address: string, port: number): number;
  setNoDelay(on: boolean): number;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  close(): void;
  onconnection: (status: number, handle?: TcpHandle) => void;
  onread: (arrayBuffer?: ArrayBuffer) => void;
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
const { TCP, TCPConnectWrap, constants } = binding("tcp_wrap") as TcpWrap;
const { WriteWrap, streamBaseState, kReadBytesOrError, kArrayBufferOffset, kLastWriteWasAsync } = binding(
  "stream_wrap",
) as StreamWrap;
const { listenPort, upstreamPort } = pipeArgs();

function check(what: string, err: number): void {
  if (err) throw new Error(`${what} failed: libuv error ${err}`);
}

function forward(from: TcpHandle, to: TcpHandle, isClosed: () => boolean, close: () => void): void {
  let queued = 0;
  const written = (status: number): void => {
    if (status < 0) close();
    else if (--queued === 0 && !isClosed()) from.readStart();
  };
  from.onread = (arrayBuffer) => {
    // nread and the data's offset come through the shared state array, not as arguments
    const nread = streamBaseState[kReadBytesOrError]!;
    if (nread <= 0) {
      if (nread < 0) close(); // UV_EOF or an error: either way the pair is done
      return;
    }
    const req = new WriteWrap();
    req.handle = to;
    const data = new Uint8Array(arrayBuffer!, streamBaseState[kArrayBufferOffset], nread);
    if (to.writeBuffer(req, data)) return close();
    if (streamBaseState[kLastWriteWasAsync]) {
      req.oncomplete = written;
      if (queued++ === 0) from.readStop();
    }
  };
}

const server = new TCP(constants.SERVER);
server.onconnection = (status, client) => {
  if (status < 0 || !client) return;
  const upstream = new TCP(constants.SOCKET);
  let closed = false;
  const isClosed = (): boolean => closed;
  const close = (): void => {
    if (closed) return;
    closed = true;
    client.close();
    upstream.close();
  };
  const connect = new TCPConnectWrap();
  connect.oncomplete = (connectStatus) => {
    if (connectStatus < 0) return close();
    upstream.setNoDelay(true);
    forward(client, upstream, isClosed, close);
    forward(upstream, client, isClosed, close);
    if (client.readStart() || upstream.readStart()) close();
  };
  client.setNoDelay(true);
  if (upstream.connect(connect, host, upstreamPort)) close();
};
check("bind", server.bind(host, listenPort));
check("listen", server.listen(511));
ready();
