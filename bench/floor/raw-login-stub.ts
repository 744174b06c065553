// login-stub.ts without net.Socket: what a client side on raw libuv TCP handles (DEP0111) would hold
// per idle client. Every accepted handle reads into one shared buffer through the same two onread
// functions (the handle is `this`), so a logged-in client is its handle and nothing else in JS.
import { WELCOME, stubListenPort } from "./login-reply.ts";
import { ready } from "./pipe-args.ts";
import { WriteWrap, kReadBytesOrError, listenRaw, streamBaseState, type TcpHandle } from "./tcp-wrap.ts";

const shared = Buffer.allocUnsafe(64 * 1024);

/** nread of the read just reported; the handle is closed at EOF or on an error. */
function readOrClose(handle: TcpHandle): number {
  const nread = streamBaseState[kReadBytesOrError]!;
  if (nread < 0) handle.close();
  return nread;
}

function idle(this: TcpHandle): void {
  readOrClose(this); // what a pooler would parse as the next query
}

function startup(this: TcpHandle): void {
  if (readOrClose(this) <= 0) return;
  const req = new WriteWrap();
  req.handle = this;
  // WELCOME is never freed, so an asynchronous write needs no completion callback to keep it alive
  if (this.writeBuffer(req, WELCOME)) return this.close();
  this.onread = idle;
}

listenRaw(stubListenPort(), (client) => {
  client.useUserBuffer(shared);
  client.onread = startup;
  if (client.readStart()) client.close();
});
ready();
