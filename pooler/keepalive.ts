// TCP keepalive on client and server sockets, as PgBouncer's tune_socket sets it: SO_KEEPALIVE with
// tcp_keepalive, then tcp_keepidle, tcp_keepintvl and tcp_keepcnt where set (0: the system's).
import { readFileSync } from "node:fs";
import type { ConnSocket } from "./connection.ts";
import type { PoolerConfig } from "./config/types.ts";

/** Whole seconds and a probe count, as the kernel takes them. */
export interface Keepalive {
  readonly enable: boolean;
  readonly idle: number;
  readonly interval: number;
  readonly count: number;
}

/** The most a socket takes (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT); above, EINVAL. */
export const KEEPALIVE_LIMITS = { idle: 32767, interval: 32767, count: 127 } as const;

/** Linux's own defaults, which PgBouncer's documentation quotes, where its sysctls cannot be read. */
const LINUX_DEFAULTS = { idle: 7200, interval: 75, count: 9 };

type KeepaliveSettings = Pick<PoolerConfig, "tcpKeepalive" | "tcpKeepidle" | "tcpKeepintvl" | "tcpKeepcnt">;

let system: typeof LINUX_DEFAULTS | undefined;

/**
 * Read once: a pooler runs in one network namespace, whose sysctls are the ones that apply. The
 * sysctls go higher than a socket takes, and libuv gives up at the first value refused.
 */
function systemKeepalive(): typeof LINUX_DEFAULTS {
  system ??= {
    idle: sysctl("time", LINUX_DEFAULTS.idle, KEEPALIVE_LIMITS.idle),
    interval: sysctl("intvl", LINUX_DEFAULTS.interval, KEEPALIVE_LIMITS.interval),
    count: sysctl("probes", LINUX_DEFAULTS.count, KEEPALIVE_LIMITS.count),
  };
  return system;
}

function sysctl(name: string, fallback: number, max: number): number {
  try {
    const n = Number(readFileSync(`/proc/sys/net/ipv4/tcp_keepalive_${name}`, "utf8").trim());
    return Number.isInteger(n) && n > 0 ? Math.min(n, max) : fallback;
  } catch {
    return fallback;
  }
}

/**
 * Every value goes to libuv explicitly, the system's where a setting is 0. libuv puts its own 1 s
 * and 10 probes where it is given none, and 60 s idle on a socket it creates to connect; each would
 * drop a silent peer after seconds, where PgBouncer leaves the kernel's two hours and more.
 */
export function keepaliveOf(c: KeepaliveSettings): Keepalive {
  if (!c.tcpKeepalive) return { enable: false, idle: 0, interval: 0, count: 0 };
  const os = systemKeepalive();
  return {
    enable: true,
    idle: c.tcpKeepidle || os.idle,
    interval: c.tcpKeepintvl || os.interval,
    count: c.tcpKeepcnt || os.count,
  };
}

/** Without tcp_keepalive the socket is left as it is, as PgBouncer leaves it. */
export function applyKeepalive(socket: Pick<ConnSocket, "setKeepAlive">, k: Keepalive): void {
  if (k.enable) socket.setKeepAlive(true, k.idle * 1000, k.interval * 1000, k.count);
}
