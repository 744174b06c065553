// Pipe 1: the obvious Node code. net.Socket on both sides, 'data' → write, pause until 'drain'.
import net from "node:net";
import { host, pipeArgs, ready } from "./pipe-args.ts";

const { listenPort, upstreamPort } = pipeArgs();

function forward(from: net.Socket, to: net.Socket): void {
  from.on("data", (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on("drain", () => from.resume());
  from.on("close", () => to.destroy());
  from.on("error", () => to.destroy());
}

net
  .createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host, port: upstreamPort, noDelay: true });
    forward(client, upstream);
    forward(upstream, client);
  })
  .listen(listenPort, host, ready);
