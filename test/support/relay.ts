// A TCP relay: every connection accepted at one address is piped to another, as a server that comes
// and goes, or sits at another address, or in another network namespace. In the test process, or as
// a program of its own (Node runs the file as it is):
//   node test/support/relay.ts <host> <port> <to host> <to port>     prints "listening" once it is
import net from "node:net";
import { pathToFileURL } from "node:url";

export interface Endpoint {
  host: string;
  port: number;
}

/**
 * `holdMs` holds the target's first answer that long: a server dialing through stays logging in.
 * While `hangUp()` says so, a connection is accepted and closed without a word, as by a backend
 * the postmaster had just forked when it went down (an immediate shutdown). `cancelDelayMs` holds
 * a CancelRequest that long before it goes on: a cancel still on its way to the backend.
 */
export function relay(
  at: Endpoint,
  to: Endpoint,
  holdMs = 0,
  hangUp: () => boolean = () => false,
  cancelDelayMs = 0,
): Promise<net.Server> {
  const server = net.createServer((c) => {
    // read what the dialer sent: unread bytes at close would make it a reset, not an end
    if (hangUp()) return void c.resume().end();
    const s = net.connect(to.port, to.host);
    if (cancelDelayMs > 0) {
      c.once("data", (first: Buffer) => {
        c.pause();
        const late = openingOf(first) === "CancelRequest" ? cancelDelayMs : 0;
        setTimeout(() => s.write(first, () => c.pipe(s)), late);
      });
    } else c.pipe(s);
    setTimeout(() => s.pipe(c), holdMs);
    c.on("error", () => s.destroy());
    s.on("error", () => c.destroy());
  });
  return new Promise((resolve) => server.listen(at.port, at.host, () => resolve(server)));
}

const OPENING_CODES: Record<number, string> = {
  80877103: "SSLRequest",
  80877102: "CancelRequest",
  80877104: "GSSENCRequest",
  196608: "StartupMessage",
};

/** What each connection through `relay` opened with, in order of arrival: "SSLRequest", "CancelRequest", … */
export function openings(relay: net.Server): string[] {
  const seen: string[] = [];
  relay.on("connection", (c: net.Socket) =>
    c.once("data", (b: Buffer) => {
      seen.push(openingOf(b));
    }),
  );
  return seen;
}

function openingOf(b: Buffer): string {
  const code = b.length >= 8 ? b.readUInt32BE(4) : -1;
  return OPENING_CODES[code] ?? b.toString("hex");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [host, port, toHost, toPort] = process.argv.slice(2);
  await relay({ host: host!, port: Number(port) }, { host: toHost!, port: Number(toPort) });
  console.log("listening");
}
