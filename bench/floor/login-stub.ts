// Not a pipe: the least a Node pooler must hold per idle client. A net.Server that answers any
// startup packet with AuthenticationOk + ReadyForQuery and then keeps the socket open and read, as
// a pooler waits for the client's next query. Measured with the shared idle-conns.mjs, like
// PgBouncer and `npm run bench`'s pooler, under the pooler's own Node flags.
import net from "node:net";
import { WELCOME, stubListenPort } from "./login-reply.ts";
import { host, ready } from "./pipe-args.ts";

net
  .createServer({ noDelay: true }, (client) => {
    client.once("data", () => {
      client.write(WELCOME);
      client.on("data", () => {});
    });
    client.on("error", () => client.destroy());
  })
  .listen(stubListenPort(), host, ready);
