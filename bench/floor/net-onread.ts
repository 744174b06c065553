// Pipe 2: net.Socket, but the upstream side reads with the documented `onread` option into one
// preallocated buffer (no Buffer and no Readable.push per read); the client side uses 'data'.
import net from "node:net";
import { host, pipeArgs, ready } from "./pipe-args.ts";

const { listenPort, upstreamPort } = pipeArgs();

net
  .createServer({ noDelay: true }, (client) => {
    let stalled = false;
    const resumeUpstream = (): void => {
      if (stalled) upstream.resume();
      stalled = false;
    };
    const upstream = net.connect({
      host,
      port: upstreamPort,
      noDelay: true,
      onread: {
        buffer: Buffer.allocUnsafe(64 * 1024),
        callback(nread: number, buffer: Uint8Array): boolean {
          // The buffer is reused by the next read, and an unfinished write still points into it:
          // stop reading until the write has been flushed.
          client.write(buffer.subarray(0, nread), resumeUpstream);
          stalled = client.writableLength > 0;
          return !stalled;
        },
      },
    });
    client.on("data", (chunk: Buffer) => {
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on("drain", () => client.resume());
    for (const socket of [client, upstream]) {
      socket.on("close", () => (socket === client ? upstream : client).destroy());
      socket.on("error", () => socket.destroy()); // 'close' follows
    }
  })
  .listen(listenPort, host, ready);
