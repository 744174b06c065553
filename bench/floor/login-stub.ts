// Not a pipe: the least a Node pooler must hold per idle client. A net.Server that answers any
// startup packet with AuthenticationOk + ReadyForQuery and then keeps the socket open and read, as
// a pooler waits for the client's next query. Measured with the shared idle-conns.mjs, like
// PgBouncer and `npm run bench`'s pooler, under the pooler's own Node flags.
import net from "node:net";
import { host, ready } from "./pipe-args.ts";

const listenPort = Number(process.argv[2]);
if (!listenPort) throw new Error("usage: login-stub.ts LISTEN_PORT");
// 'R' AuthenticationOk (length 8, code 0), 'Z' ReadyForQuery (length 5, idle)
const WELCOME = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0, 0x5a, 0, 0, 0, 5, 0x49]);

net
  .createServer({ noDelay: true }, (client) => {
    client.once("data", () => {
      client.write(WELCOME);
      client.on("data", () => {});
    });
    client.on("error", () => client.destroy());
  })
  .listen(listenPort, host, ready);
