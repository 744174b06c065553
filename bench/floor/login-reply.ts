// Shared by the floor's two login stubs: their command line (`STUB.ts LISTEN_PORT`) and their one
// reply, sent to whatever the client's first read holds (idle-conns.mjs's startup packet).

// 'R' AuthenticationOk (length 8, code 0), 'Z' ReadyForQuery (length 5, idle)
export const WELCOME = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0, 0x5a, 0, 0, 0, 5, 0x49]);

export function stubListenPort(): number {
  const listenPort = Number(process.argv[2]);
  if (!listenPort) throw new Error("usage: STUB.ts LISTEN_PORT");
  return listenPort;
}
