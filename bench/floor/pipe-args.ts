// Shared command line of the floor pipes: `node --import tsx PIPE.ts LISTEN_PORT UPSTREAM_PORT`.
// Each pipe prints "ready" once it listens, which is what measure.ts waits for.
export function pipeArgs(): { listenPort: number; upstreamPort: number } {
  const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
  if (!listenPort || !upstreamPort) throw new Error("usage: PIPE.ts LISTEN_PORT UPSTREAM_PORT");
  return { listenPort, upstreamPort };
}

export const host = "127.0.0.1";

export function ready(): void {
  console.log("ready");
}
