// The kernel's view of one TCP connection of this machine, as `ss -tno` prints it: its state and
// timers, which show what options a socket was given (the keepalive timer, say).
import { execFileSync } from "node:child_process";

/**
 * The connection from local port `local` to remote port `remote`, in any state but TIME-WAIT:
 * both ports, as Linux reuses a local port towards another destination (another test's pooler).
 * Empty when there is none.
 */
export function tcpSocket(local: number, remote: number): string {
  return execFileSync("ss", ["-tnoH", "exclude", "time-wait", `sport = :${local} and dport = :${remote}`], {
    encoding: "utf8",
  });
}
