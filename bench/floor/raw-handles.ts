// Pipe 3: the libuv TCP handles that net.Socket wraps, used directly through the deprecated
// process.binding (DEP0111): onconnection, readStart/onread, writeBuffer, close. No streams at all.
// Backpressure: while a write is still queued in libuv (async), the source stops reading.
import { host, pipeArgs, ready } from "./pipe-args.ts";
import {
  TCP,
  TCPConnectWrap,
  WriteWrap,
  constants,
  kArrayBufferOffset,
  kLastWriteWasAsync,
  kReadBytesOrError,
  listenRaw,
  streamBaseState,
  type TcpHandle,
} from "./tcp-wrap.ts";

const { listenPort, upstreamPort } = pipeArgs();

function forward(from: TcpHandle, to: TcpHandle, isClosed: () => boolean, close: () => void): void {
  let queued = 0;
  const written = (status: number): void => {
    if (status < 0) close();
    else if (--queued === 0 && !isClosed()) from.readStart();
  };
  from.onread = (arrayBuffer) => {
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

listenRaw(listenPort, (client) => {
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
  if (upstream.connect(connect, host, upstreamPort)) close();
});
ready();
