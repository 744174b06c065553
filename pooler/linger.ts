// Closing a client's socket without losing the last thing said to it.
//
// Closing a socket whose receive buffer still holds unread bytes makes the kernel send a reset,
// and a reset can make the client's kernel drop what was sent just before it — the FATAL
// ErrorResponse that explains the close (HTTP servers' "lingering close" problem). A client
// refused in the middle of sending (an oversize packet, a pipeline) is exactly that case. So our
// side ends first, then what the client still sends is read and dropped until it closes too, for
// at most LINGER_MS.
import type { ConnSocket } from "./connection.ts";

const LINGER_MS = 2000;

export function lingeringClose(socket: Pick<ConnSocket, "end" | "resume" | "destroy" | "once">): void {
  socket.end();
  socket.resume(); // whatever it still sends reaches the 'data' listeners of a closed connection
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}
